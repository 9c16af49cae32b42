"""The command line: ``python -m poolviz run | sweep | report``.

``run`` drives one workload through an instrumented pool and writes the trace,
a summary and three pictures; ``sweep`` repeats a closed loop over several
pool sizes; ``report`` redraws a saved trace. SQLite is the default database
(a file in the output folder), so every command works with nothing else
installed. Bad input ends with one line on stderr naming the value and exit
code 2; URLs are shown with their passwords masked.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .credentials import mask_url
from .units import duration

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) so scripts can read them."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _number(text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        wanted = "a number > 0" if positive else "a number >= 0"
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    return _number(text)


def _positive(text: str) -> float:
    return _number(text, positive=True)


def _seconds_or_none(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return _number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 or 'none', got {text!r}") from None


def _sizes(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = [_positive_int(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of positive integers like 1,2,4,8, got {text!r}"
        ) from None
    return sizes


def _add_workload_options(parser: argparse.ArgumentParser) -> None:
    from .workload import DISTRIBUTIONS, WorkloadSpec

    spec = WorkloadSpec()  # the one set of workload defaults, shared with the widgets
    parser.add_argument(
        "--url",
        help="database URL with a +pool scheme, e.g. mysql+pool://root@127.0.0.1:3306/test or "
        "postgresql+pool://postgres@127.0.0.1:5432/test (default: sqlite+pool:///OUT/poolviz.db)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=spec.workers,
        help=f"worker threads making requests (default: {spec.workers})",
    )
    parser.add_argument(
        "--requests",
        type=_positive_int,
        default=spec.requests,
        help=f"requests per worker; with --open-loop, the total number of arrivals (default: {spec.requests})",
    )
    parser.add_argument(
        "--hold-ms",
        type=_non_negative,
        default=spec.hold_ms,
        help="mean time each request holds its connection, in milliseconds: SELECT SLEEP on MariaDB/MySQL, "
        f"pg_sleep on PostgreSQL, a client-side sleep on SQLite (default: {spec.hold_ms:g})",
    )
    parser.add_argument(
        "--think-ms",
        type=_non_negative,
        default=spec.think_ms,
        help=f"mean pause between a worker's requests, in milliseconds (closed loop only; default: {spec.think_ms:g})",
    )
    parser.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default=spec.distribution,
        help="shape of the hold and think times around their means: fixed, exp (exponential) or "
        f"uniform (0 to twice the mean) (default: {spec.distribution})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds_or_none,
        default=10.0,
        help="seconds a request waits for a free connection before MaxConnectionsExceeded; 'none' fails "
        "at once when the pool is full, 0 waits forever as peewee reads it (default: 10)",
    )
    parser.add_argument(
        "--stale-timeout",
        type=_seconds_or_none,
        default=None,
        help="seconds after which the pool closes a connection instead of reusing it (default: none)",
    )
    parser.add_argument(
        "--seed",
        type=_int,
        default=spec.seed,
        help=f"seed for the random hold, think and arrival times (default: {spec.seed})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="folder for the output files, created if missing (default: out)"
    )
    parser.add_argument("--quiet", action="store_true", help="print no progress bar and no summary line")


def build_parser() -> argparse.ArgumentParser:
    """The ``poolviz`` argument parser with its ``run``, ``sweep`` and ``report`` commands."""
    parser = _Parser(
        prog="poolviz",
        description="Drive traffic through an instrumented peewee connection pool and draw what it did.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run one workload and write events.csv, summary.json and plots",
        description="Run one workload through a pool. Writes events.csv (+ events.meta.json), requests.csv, "
        "summary.json, timeline.png, occupancy.png and waits.png to --out; on MariaDB/PostgreSQL also "
        "server.csv, the server's own count of the run's sessions, sampled 5 times a second.",
    )
    _add_workload_options(run)
    run.add_argument(
        "--max-connections",
        type=_positive_int,
        default=4,
        help="the pool's limit on open connections (default: 4)",
    )
    run.add_argument(
        "--open-loop",
        action="store_true",
        help="send Poisson arrivals at --rate to --workers threads (like a web server) instead of "
        "workers that each send their next request when the last one is done",
    )
    run.add_argument("--rate", type=_positive, help="arrivals per second for --open-loop")
    run.add_argument(
        "--processes",
        type=_positive_int,
        default=None,
        help="run the workload in this many worker processes, each with its own pool of --max-connections "
        "(like gunicorn workers); their events are merged into one trace with a process column, and on "
        "MariaDB/PostgreSQL the server's own connection counts go to server.csv",
    )
    run.add_argument(
        "--duration",
        type=_positive,
        help="with --open-loop, stop arriving after this many seconds (or after --requests arrivals)",
    )

    sweep = commands.add_parser(
        "sweep",
        help="run the same closed loop for several pool sizes and write sweep.csv and sweep.png",
        description="Run one closed loop per pool size. Writes sweep.csv (measured and M/M/c-predicted "
        "figures per size) and sweep.png to --out.",
    )
    _add_workload_options(sweep)
    sweep.add_argument(
        "--sizes",
        type=_sizes,
        default=[1, 2, 4, 8],
        help="comma-separated pool sizes (max_connections) to try (default: 1,2,4,8)",
    )

    report = commands.add_parser(
        "report",
        help="redraw a saved trace: summary.json and plots",
        description="Read a trace saved by 'run' (events.csv and its events.meta.json) and write "
        "summary.json, timeline.png, occupancy.png and waits.png to --out.",
    )
    report.add_argument("trace", type=Path, help="the events CSV to read, e.g. out/events.csv")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the output files (default: a 'report' folder beside the trace)",
    )
    report.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        help="the pool's limit, for utilisation (default: the one recorded in the trace)",
    )
    report.add_argument("--quiet", action="store_true", help="print no summary line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, or 2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = {"run": _run, "sweep": _sweep, "report": _report}[args.command]
    try:
        return command(args)
    except UsageError as exc:
        print(f"poolviz {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


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
    from .workload import WorkloadSpec

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


def _check_url(args: argparse.Namespace) -> None:
    """Refuse a bad or unusable --url before anything is written: --out is created only after this."""
    from .urls import ASYNC_SCHEMES

    if args.url is None:
        return
    scheme, _, rest = args.url.partition("://")
    if scheme.lower() in ASYNC_SCHEMES:
        from .servers.reachability import reachable
        from .urls import connect

        try:
            connect(args.url)  # reads the URL; an asyncio database connects only when first used
        except (ValueError, TypeError) as exc:
            raise UsageError(f"bad --url {mask_url(args.url)!r}: {exc}") from None
        # The same server and credentials through the threaded driver: a quick, loop-free check.
        reason = reachable(scheme.lower().replace("+asyncpool", "+pool") + "://" + rest)
        if reason is not None:
            raise UsageError(f"--url {mask_url(args.url)!r} is not usable: {reason}")
        return
    _open_pool(args.url, max_connections=1).close_all()


def _url(args: argparse.Namespace, out: Path) -> str:
    return args.url if args.url is not None else f"sqlite+pool:///{out.resolve() / 'poolviz.db'}"


def _open_pool(url: str, **kwargs: Any) -> Any:
    """An instrumented pool for ``url`` after checking its server answers, or a UsageError."""
    from .servers.reachability import reachable
    from .urls import connect

    try:
        db = connect(url, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --url {mask_url(url)!r}: {exc}") from None
    reason = reachable(url)
    if reason is not None:
        db.close_all()
        shown = mask_url(url)
        # The reason may name the URL already; say it once.
        raise UsageError(
            f"--url is not usable: {reason}" if shown in reason else f"--url {shown!r} is not usable: {reason}"
        )
    return db


def _prepare_schema(url: str) -> None:
    """Create the User table through a throwaway pool, so the run's trace starts from an empty pool."""
    from .workload import ensure_schema

    prep = _open_pool(url, max_connections=1)
    try:
        ensure_schema(prep)
    except Exception as exc:  # a driver error here means the database cannot take the workload
        raise UsageError(f"cannot create the User table at {mask_url(url)!r}: {type(exc).__name__}: {exc}") from None
    finally:
        prep.close_all()


def progress_bar(stream: TextIO, width: int = 30) -> Callable[[int, int | None], None]:
    """A ``progress(done, total)`` callback drawing ``\\r[####....] 3/8`` on ``stream``, redrawn only on change."""
    shown: list[Any] = [None]

    def draw(done: int, total: int | None) -> None:
        if total:
            filled = min(width, done * width // total)
            state: Any = (filled, done == total)
            bar = "#" * filled + "." * (width - filled)
            text = f"\r[{bar}] {done}/{total}"
        else:
            state = done // 10
            text = f"\r{done} requests"
        if state == shown[0] and done != total:
            return
        shown[0] = state
        stream.write(text + ("\n" if total and done >= total else ""))
        stream.flush()

    return draw


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """Turn Ctrl-C into ``stop.set()`` for the block, so a run ends cleanly and still writes its files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        print("\npoolviz: stopping after the current requests…", file=sys.stderr)
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _write_plots(frame: Any, out: Path, max_connections: int | None) -> list[Path]:
    from .plots import charts as plots

    paths = []
    for name, draw in (
        ("timeline.png", plots.plot_timeline),
        ("occupancy.png", lambda f, ax: plots.plot_occupancy(f, ax=ax, max_connections=max_connections)),
        ("waits.png", plots.plot_waits),
        ("fairness.png", plots.plot_fairness),
    ):
        fig = _figure(10, 4.5)
        draw(frame, fig.add_subplot())
        plots.save_png(fig, out / name)
        paths.append(out / name)
    return paths


def _run(args: argparse.Namespace) -> int:
    from .data import analysis
    from .data.traces import save_events
    from .urls import ASYNC_SCHEMES

    if args.open_loop and args.rate is None:
        raise UsageError("--open-loop needs --rate (arrivals per second)")
    if not args.open_loop and (args.rate is not None or args.duration is not None):
        raise UsageError("--rate and --duration only apply with --open-loop")
    spec = _workload(args)
    _check_url(args)
    out = _prepare_out(args.out)
    url = _url(args, out)
    hold, think = spec.hold(), spec.think()
    stop = threading.Event()
    interactive = not args.quiet and sys.stderr.isatty()
    progress = progress_bar(sys.stderr) if interactive else None
    if url.split("://", 1)[0].lower() in ASYNC_SCHEMES:
        from .workload.asyncio_loops import run_for_cli as run_tasks

        with _stop_on_interrupt(stop):
            result = run_tasks(url, args, hold, think, stop, progress, UsageError, out)
    elif args.processes:
        from .workload.processes import run_for_cli as run_processes

        _prepare_schema(url)
        with _stop_on_interrupt(stop):
            result = run_processes(url, args, hold, think, stop, out)
    else:
        result = _run_threads(args, url, hold, think, stop, progress, out)
    frame = result.events
    trace = save_events(frame, out / "events.csv")
    result.requests_frame().to_csv(out / "requests.csv", index=False)
    summary = analysis.summarize(frame, args.max_connections)
    summary["url"] = mask_url(url)
    summary["workload"] = result.summary()
    _write_json(out / "summary.json", summary)
    _write_plots(frame, out, args.max_connections)
    if not args.quiet:
        print(
            f"{mask_url(url)}: {result.requests} requests ({result.requests_ok} ok, {result.requests_failed} "
            f"failed) in {result.elapsed_s:.2f} s, {result.throughput_rps:.1f} req/s"
            f"{' (stopped early)' if result.stopped else ''}; {_waits_line(summary)}; "
            f"wrote {trace} and more in {out}"
        )
    return 0


def _waits_line(summary: dict[str, Any]) -> str:
    """Waits as a reader needs them: the tail and the longest, who is still waiting, how evenly workers were served.

    A p95 of 0 alone hides starving workers (peewee's pool lets a releasing
    thread take its connection straight back), so the maximum and the
    per-worker checkouts always come with it.
    """
    line = (
        f"wait p95 {duration(summary['wait_p95_s'])}, p99 {duration(summary['wait_p99_s'])}, "
        f"max {duration(summary['wait_max_s'])}"
    )
    if summary["waiting_now"]:
        line += f", {summary['waiting_now']} still waiting (oldest {duration(summary['oldest_wait_s'])})"
    if summary["fair_workers"]:
        line += (
            f"; checkouts per worker {summary['fair_checkouts_min']}-{summary['fair_checkouts_max']}"
            f" (median {summary['fair_checkouts_median']:g})"
        )
    return line


def _run_threads(
    args: argparse.Namespace, url: str, hold: Any, think: Any, stop: threading.Event, progress: Any, out: Path
) -> Any:
    from .servers.view import ServerSampler
    from .workload import run_closed_loop, run_open_loop

    _prepare_schema(url)
    db = _open_pool(url, max_connections=args.max_connections, timeout=args.timeout, stale_timeout=args.stale_timeout)
    # On a server, its own count of the run's sessions goes to server.csv (as with --processes).
    sampler = None if url.startswith("sqlite") else ServerSampler(url, clock=db.events).start()
    try:
        with _stop_on_interrupt(stop):
            if args.open_loop:
                return run_open_loop(
                    db,
                    rate=args.rate,
                    duration=args.duration,
                    requests=None if args.duration is not None else args.requests,
                    threads=args.workers,
                    hold=hold,
                    seed=args.seed,
                    stop=stop,
                    progress=progress,
                    setup=False,
                )
            return run_closed_loop(db, args.workers, args.requests, hold, think, args.seed, stop, progress, setup=False)
    finally:
        db.close_all()
        if sampler is not None:
            sampler.stop()
            sampler.save(out / "server.csv")


def _sweep(args: argparse.Namespace) -> int:
    from .plots import charts as plots
    from .workload import sweep

    spec = _workload(args)
    _check_url(args)
    out = _prepare_out(args.out)
    url = _url(args, out)
    hold, think = spec.hold(), spec.think()
    _prepare_schema(url)

    def factory(size: int) -> Any:
        from .urls import connect

        return connect(url, max_connections=size, timeout=args.timeout, stale_timeout=args.stale_timeout)

    stop = threading.Event()
    progress = None if args.quiet else progress_bar(sys.stderr)
    with _stop_on_interrupt(stop):
        table = sweep(factory, args.sizes, args.workers, args.requests, hold, think, args.seed, progress, stop=stop)
    table.to_csv(out / "sweep.csv", index=False)
    fig = _figure(8, 4.5)
    plots.plot_sweep(table, fig.add_subplot())
    plots.save_png(fig, out / "sweep.png")
    if not args.quiet:
        print(f"{mask_url(url)}: swept sizes {','.join(map(str, table['max_connections']))}; wrote {out / 'sweep.csv'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .data import analysis
    from .data.traces import load_events

    try:
        frame = load_events(args.trace)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    out = _prepare_out(args.out if args.out is not None else args.trace.parent / "report")
    limit = args.max_connections or frame.attrs.get("max_connections") or None
    summary = analysis.summarize(frame, limit)
    if "url" in frame.attrs:
        summary["url"] = mask_url(str(frame.attrs["url"]))
    _write_json(out / "summary.json", summary)
    _write_plots(frame, out, limit)
    if not args.quiet:
        print(
            f"{args.trace}: {summary['requests']} requests, {summary['events']} events; {_waits_line(summary)}; "
            f"wrote plots to {out}"
        )
    return 0
