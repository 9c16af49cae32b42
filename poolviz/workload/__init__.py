"""Realistic traffic through an instrumented pool: closed loops, open loops and pool-size sweeps.

``distributions`` (hold and think times), ``results`` (what a run returns),
``run`` (one run's frame: requests, set-up, clean-up), ``loops`` (the closed
and open loops), ``spec`` (one checked closed-loop workload) and ``sweep`` (one closed loop per pool size).
"""

from __future__ import annotations

from .distributions import DISTRIBUTIONS, Distribution
from .loops import run_closed_loop, run_open_loop
from .results import CLIENT_SLEEP, RECORD_FIELDS, RequestRecord, WorkloadResult
from .run import HOLD_SQL, Progress, ensure_schema
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
