"""What each command does: ``run``, ``sweep`` and ``report``, from checked options to files (``follow``: cli.follow)."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..credentials import mask_url
from .follow import follow
from .output import figure, progress_bar, waits_line, write_json, write_plots
from .parser import EXIT_USAGE, build_parser
from .pools import check_library_url, limit_of, pool_settings, pool_url
from .runs import check_url, prepare_schema, run_workload, stop_on_interrupt
from .values import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, or 2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = {
        "run": _run,
        "sweep": _sweep,
        "report": _report,
        "follow": follow,
    }[args.command]
    try:
        if args.command not in ("report", "follow"):
            resolve_pool(args)
        return command(args)
    except UsageError as exc:
        print(f"poolviz {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def resolve_pool(args: argparse.Namespace) -> None:
    """Check ``--pool`` and its options (``args.pool_settings``); peewee's keep their old attributes."""
    args.pool_settings = pool_settings(args)
    if args.pool == "peewee":
        args.max_connections = args.pool_settings.get("max_connections", 4)
        args.stale_timeout = args.pool_settings.get("stale_timeout")
    # The URL the run will use, checked against the library before anything connects or is written.
    check_library_url(args, args.url if args.url is not None else "sqlite+pool:///poolviz.db")


def _prepare_out(out: Path) -> Path:
    """Create ``out`` and prove it writable, or raise a UsageError naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".poolviz-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --out {str(out)!r}: {exc.strerror or exc}") from None
    return out


def _workload(args: argparse.Namespace) -> Any:
    """The run's :class:`~poolviz.workload.WorkloadSpec`, or a UsageError naming the bad value."""
    from ..workload import WorkloadSpec

    try:
        return WorkloadSpec(
            workers=args.workers,
            requests=args.requests,
            hold_ms=args.hold_ms,
            think_ms=args.think_ms,
            distribution=args.distribution,
            seed=args.seed,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _url(args: argparse.Namespace, out: Path) -> str:
    return args.url if args.url is not None else f"sqlite+pool:///{out.resolve() / 'poolviz.db'}"


def _run(args: argparse.Namespace) -> int:
    from ..data import analysis
    from ..data.traces import save_events

    if args.open_loop and args.rate is None:
        raise UsageError("--open-loop needs --rate (arrivals per second)")
    if not args.open_loop and (args.rate is not None or args.duration is not None):
        raise UsageError("--rate and --duration only apply with --open-loop")
    spec = _workload(args)
    check_url(args)
    out = _prepare_out(args.out)
    url = _url(args, out)
    hold, think = spec.hold(), spec.think()
    stop = threading.Event()
    interactive = not args.quiet and sys.stderr.isatty()
    progress = progress_bar(sys.stderr) if interactive else None
    result = run_workload(args, url, hold, think, stop, progress, out)
    frame = result.events
    trace = save_events(frame, out / "events.csv")
    result.requests_frame().to_csv(out / "requests.csv", index=False)
    limit = args.max_connections if args.pool == "peewee" else limit_of(frame, None)
    summary = analysis.summarize(frame, limit)
    summary["url"] = mask_url(url)
    summary["library"] = str(frame.attrs.get("library", args.pool))
    summary["workload"] = result.summary()
    write_json(out / "summary.json", summary)
    write_plots(frame, out, limit)
    if not args.quiet:
        library = "" if args.pool == "peewee" else f" (--pool {args.pool})"
        print(
            f"{mask_url(url)}{library}: {result.requests} requests ({result.requests_ok} ok, {result.requests_failed} "
            f"failed) in {result.elapsed_s:.2f} s, {result.throughput_rps:.1f} req/s"
            f"{' (stopped early)' if result.stopped else ''}; {waits_line(summary)}; "
            f"wrote {trace} and more in {out}"
        )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .. import plots
    from ..workload import sweep

    spec = _workload(args)
    check_url(args)
    out = _prepare_out(args.out)
    url = _url(args, out)
    hold, think = spec.hold(), spec.think()
    prepare_schema(pool_url(url))
    settings = {k: v for k, v in args.pool_settings.items() if k != "timeout"}
    stop = threading.Event()
    progress = None if args.quiet else progress_bar(sys.stderr)
    with stop_on_interrupt(stop):
        table = sweep(
            url,
            args.sizes,
            args.workers,
            args.requests,
            hold,
            think,
            args.seed,
            progress,
            args.timeout,
            stop=stop,
            library=args.pool,
            pool_settings=settings,
        )
    table.to_csv(out / "sweep.csv", index=False)
    fig = figure(8, 4.5)
    plots.plot_sweep(table, fig.add_subplot())
    plots.save_png(fig, out / "sweep.png")
    if not args.quiet:
        print(f"{mask_url(url)}: swept sizes {','.join(map(str, table['max_connections']))}; wrote {out / 'sweep.csv'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..data import analysis
    from ..data.traces import load_events

    try:
        frame = load_events(args.trace)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    out = _prepare_out(args.out if args.out is not None else args.trace.parent / "report")
    limit = limit_of(frame, args.max_connections)
    summary = analysis.summarize(frame, limit)
    if "url" in frame.attrs:
        summary["url"] = mask_url(str(frame.attrs["url"]))
    # Traces from before other libraries were instrumented are peewee's.
    library = str(frame.attrs.get("library", "peewee"))
    summary["library"] = library
    write_json(out / "summary.json", summary)
    write_plots(frame, out, limit)
    if not args.quiet:
        print(
            f"{args.trace}: {library} pool, {summary['requests']} requests, {summary['events']} events; "
            f"{waits_line(summary)}; "
            f"wrote plots to {out}"
        )
    return 0
