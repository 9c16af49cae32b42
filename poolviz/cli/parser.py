"""The ``poolviz`` argument parser: its commands, their options and how a bad value is reported."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

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
    from ..workload import DISTRIBUTIONS, WorkloadSpec

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
