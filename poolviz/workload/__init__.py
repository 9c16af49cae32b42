"""Realistic traffic through an instrumented pool: closed loops, open loops and pool-size sweeps.

``distributions`` (hold and think times), ``args`` (the loops' arguments,
checked once, and the draws and arrivals they make), ``results`` (what a run
returns), ``clients`` (how a request checks out, works, holds and checks in on
each pool library: peewee, a SQLAlchemy Engine, a psycopg_pool pool), ``run``
(one run's frame, shared by threads and asyncio tasks: the request record,
progress, clean-up, the result), ``loops`` (the threaded closed
and open loops), ``asyncio_loops`` (their asyncio twins, taking the same
arguments), ``processes`` (one loop per worker process), ``spec`` (one checked
closed-loop workload) and ``sweep`` (one loop per pool size). Nothing here
knows the command line: :mod:`poolviz.cli` turns its options into these calls.
"""

from __future__ import annotations

from .clients import ensure_schema
from .distributions import DISTRIBUTIONS, Distribution
from .loops import run_closed_loop, run_open_loop
from .results import CLIENT_SLEEP, RECORD_FIELDS, RequestRecord, WorkloadResult
from .run import HOLD_SQL, Progress
from .spec import WORKLOAD_FIELDS, WorkloadSpec
from .sweep import PoolFactory, sweep

__all__ = [
    "CLIENT_SLEEP",
    "DISTRIBUTIONS",
    "HOLD_SQL",
    "RECORD_FIELDS",
    "Distribution",
    "PoolFactory",
    "Progress",
    "RequestRecord",
    "WORKLOAD_FIELDS",
    "WorkloadResult",
    "WorkloadSpec",
    "ensure_schema",
    "run_closed_loop",
    "run_open_loop",
    "sweep",
]
