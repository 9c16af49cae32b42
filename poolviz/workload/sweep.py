"""A pool-size sweep: the same closed loop once per size, tabulated beside M/M/c's predictions."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import checks
from .distributions import Distribution
from .loops import run_closed_loop
from .results import WorkloadResult
from .run import Progress

if TYPE_CHECKING:
    import pandas as pd

PoolFactory = Callable[[int], Any]


def sweep(
    url_or_factory: str | PoolFactory,
    sizes: Sequence[int],
    workers: int,
    requests: int,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    seed: int = 0,
    progress: Progress | None = None,
    timeout: float | None = 10.0,
    stop: threading.Event | None = None,
) -> pd.DataFrame:
    """Run the same closed loop once per pool size and tabulate what each size achieved.

    ``url_or_factory`` is a ``+pool`` URL (each size gets a fresh pool with
    ``max_connections=size`` and ``timeout``) or a callable ``factory(size)``
    returning an instrumented pool. One row per size, columns
    :data:`SWEEP_COLUMNS`. ``progress(done, total)`` counts requests over the
    whole sweep.

    The prediction columns treat the pool as an M/M/c queue (``c`` = size)
    fed at the *measured* arrival rate with the *measured* mean hold. A closed
    loop is not Poisson: its workers stop arriving while they wait, so when
    the pool is the bottleneck the measured rate pins the load near ``c`` and
    M/M/c overstates the wait (it is infinite at a load of ``c`` or more).
    Read the predictions as the open-loop wait the same traffic would see.
    """
    import pandas as pd

    from ..analysis import SWEEP_COLUMNS
    from ..urls import connect

    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not sizes:
        raise ValueError(f"sizes must be a non-empty list of positive integers, got {sizes!r}")
    sizes = [checks.count("each pool size", s) for s in sizes]
    workers = checks.count("workers", workers)
    requests = checks.count("requests", requests)
    Distribution.parse(hold, "hold")
    Distribution.parse(think, "think")
    if callable(url_or_factory):
        factory: PoolFactory = url_or_factory
    elif isinstance(url_or_factory, str):
        url = url_or_factory

        def factory(size: int) -> Any:
            return connect(url, max_connections=size, timeout=timeout)

    else:
        raise TypeError(f"url_or_factory must be a URL string or a callable, got {url_or_factory!r}")

    total = len(sizes) * workers * requests
    finished = 0
    per_size: Progress | None = None
    if progress is not None:
        report = progress

        def per_size(done: int, _total: int | None) -> None:
            report(finished + done, total)

    rows = []
    for size in sizes:
        if stop is not None and stop.is_set():
            break
        db = factory(size)
        try:
            result = run_closed_loop(db, workers, requests, hold, think, seed, stop, per_size)
        finally:
            db.close_all()
        finished += result.requests
        rows.append(_sweep_row(size, workers, result))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def _sweep_row(size: int, workers: int, result: WorkloadResult) -> dict[str, Any]:
    from .. import analysis, queueing

    frame = result.events
    waits = analysis.wait_stats(frame)
    holds = frame.loc[frame["kind"] == "checkin", "duration_s"]
    mean_hold = float(holds.mean()) if len(holds) else math.nan
    arrival_rate = result.requests / result.elapsed_s if result.elapsed_s > 0 else math.nan
    predicted_p95 = predicted_prob = math.nan
    if math.isfinite(mean_hold) and mean_hold > 0 and math.isfinite(arrival_rate):
        predicted_p95 = queueing.wait_percentile(size, arrival_rate, mean_hold, 0.95)
        predicted_prob = queueing.erlang_c(size, arrival_rate * mean_hold)
    return {
        "max_connections": size,
        "workers": workers,
        "requests": result.requests,
        "throughput_rps": result.throughput_rps,
        "wait_mean_s": waits["mean_s"],
        "wait_p95_s": waits["p95_s"],
        "timeouts": int((frame["kind"] == "timeout").sum()),
        "utilisation": float(analysis.utilisation(frame, size)),
        "predicted_wait_p95_s": predicted_p95,
        "predicted_wait_prob": predicted_prob,
        "arrival_rate_rps": arrival_rate,
        "mean_hold_s": mean_hold,
        "requests_failed": result.requests_failed,
    }
