"""The ``poolviz`` argument parser: its commands, their options and how a bad value is reported."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from .follow import add_follow_command
from .pools import add_pool_options
from .values import integer, non_negative, positive, positive_int, seconds_or_none, sizes

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) so scripts can read them."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_workload_options(parser: argparse.ArgumentParser) -> None:
    from ..workload import DISTRIBUTIONS, WorkloadSpec

    spec = WorkloadSpec()  # the one set of workload defaults, shared with the widgets
    parser.add_argument(
        "--url",
        help="database URL with a +pool scheme, e.g. mysql+pool://root@127.0.0.1:3306/test or "
        "postgresql+pool://postgres@127.0.0.1:5432/test (default: sqlite+pool:///OUT/poolviz.db); "
        "with --pool sqlalchemy or psycopg the +pool is optional (postgresql://...)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=spec.workers,
        help=f"worker threads making requests (default: {spec.workers})",
    )
    parser.add_argument(
        "--requests",
        type=positive_int,
        default=spec.requests,
        help=f"requests per worker; with --open-loop, the total number of arrivals (default: {spec.requests})",
    )
    parser.add_argument(
        "--hold-ms",
        type=non_negative,
        default=spec.hold_ms,
        help="mean time each request holds its connection, in milliseconds: SELECT SLEEP on MariaDB/MySQL, "
        f"pg_sleep on PostgreSQL, a client-side sleep on SQLite (default: {spec.hold_ms:g})",
    )
    parser.add_argument(
        "--think-ms",
        type=non_negative,
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
        type=seconds_or_none,
        default=10.0,
        help="seconds a request waits for a free connection before the pool gives up (peewee's "
        "MaxConnectionsExceeded, SQLAlchemy's TimeoutError, psycopg_pool's PoolTimeout); 'none' fails "
        "at once when the pool is full, 0 waits forever as peewee reads it (default: 10)",
    )
    parser.add_argument(
        "--seed",
        type=integer,
        default=spec.seed,
        help=f"seed for the random hold, think and arrival times (default: {spec.seed})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="folder for the output files, created if missing (default: out)"
    )
    parser.add_argument("--quiet", action="store_true", help="print no progress bar and no summary line")


def build_parser() -> argparse.ArgumentParser:
    """The ``poolviz`` argument parser with its ``run``, ``sweep``, ``report`` and ``follow`` commands."""
    parser = _Parser(
        prog="poolviz",
        description="Drive traffic through an instrumented connection pool (peewee, SQLAlchemy or psycopg_pool) "
        "and draw what it did.",
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
    add_pool_options(run)
    run.add_argument(
        "--open-loop",
        action="store_true",
        help="send Poisson arrivals at --rate to --workers threads (like a web server) instead of "
        "workers that each send their next request when the last one is done",
    )
    run.add_argument("--rate", type=positive, help="arrivals per second for --open-loop")
    run.add_argument(
        "--processes",
        type=positive_int,
        default=None,
        help="run the workload in this many worker processes, each with its own pool of --max-connections "
        "(like gunicorn workers); their events are merged into one trace with a process column, and on "
        "MariaDB/PostgreSQL the server's own connection counts go to server.csv",
    )
    run.add_argument(
        "--duration",
        type=positive,
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
        type=sizes,
        default=[1, 2, 4, 8],
        help="comma-separated pool sizes to try: peewee's max_connections, SQLAlchemy's pool_size, "
        "psycopg_pool's max_size (default: 1,2,4,8)",
    )
    add_pool_options(sweep, sized=False)

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
        type=positive_int,
        default=None,
        help="the pool's limit, for utilisation (default: the one recorded in the trace)",
    )
    report.add_argument("--quiet", action="store_true", help="print no summary line")
    add_follow_command(commands)
    return parser
