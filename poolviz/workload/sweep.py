"""A pool-size sweep: the same workload once per size, tabulated beside M/M/c's predictions."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import checks
from .clients import client_for
from .distributions import Distribution
from .loops import run_closed_loop, run_open_loop
from .results import WorkloadResult
from .run import Progress

if TYPE_CHECKING:
    import pandas as pd

PoolFactory = Callable[[int], Any]

#: The setting each pool library's size is: what a sweep varies.
SIZE_SETTINGS = {"peewee": "max_connections", "sqlalchemy": "pool_size", "psycopg": "max_size"}

# A closed loop run for ``duration`` seconds makes as many requests as it can: this caps them.
_UNLIMITED_REQUESTS = 10**9


def sweep(
    url_or_factory: str | PoolFactory,
    sizes: Sequence[int],
    workers: int,
    requests: int | None,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    seed: int = 0,
    progress: Progress | None = None,
    timeout: float | None = 10.0,
    stop: threading.Event | None = None,
    duration: float | None = None,
    rate: float | None = None,
    library: str = "peewee",
    pool_settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run the same workload once per pool size and tabulate what each size achieved.

    ``url_or_factory`` is a database URL (each size gets a fresh instrumented
    pool of ``library`` with ``pool_settings``, ``timeout`` and its size
    setting (:data:`SIZE_SETTINGS`: peewee's ``max_connections``, SQLAlchemy's
    ``pool_size``, psycopg_pool's ``max_size``) set to the size) or a callable
    ``factory(size)`` returning an instrumented pool of any library. One row
    per size, columns :data:`SWEEP_COLUMNS`.

    By default each size runs a closed loop: ``workers`` threads each making
    ``requests`` requests, pausing ``think`` between them. With ``duration``
    each size runs for that many seconds instead (``requests``, if given,
    still caps each worker), so a worker the pool leaves waiting shows up as
    few checkouts (``checkouts_per_worker_min``) and a long ``wait_max_s``.
    With ``rate`` each size runs an open loop instead: Poisson arrivals at
    ``rate`` per second served by ``workers`` threads, ``requests`` arrivals
    or ``duration`` seconds of them (``think`` must stay 0).
    ``progress(done, total)`` counts requests over the whole sweep (``total``
    is None when the sweep is timed).

    The prediction columns treat the pool as an M/M/c queue (``c`` = size)
    fed at the *measured* arrival rate with the *measured* mean hold. A closed
    loop is not Poisson: its workers stop arriving while they wait, so when
    the pool is the bottleneck the measured rate pins the load near ``c`` and
    M/M/c overstates the wait (it is infinite at a load of ``c`` or more).
    Read the predictions as the open-loop wait the same traffic would see.
    """
    import pandas as pd

    from ..data.analysis import SWEEP_COLUMNS

    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not sizes:
        raise ValueError(f"sizes must be a non-empty list of positive integers, got {sizes!r}")
    sizes = [checks.count("each pool size", s) for s in sizes]
    workers = checks.count("workers", workers)
    if requests is None and duration is None:
        raise ValueError("give requests (per worker, or arrivals with rate), duration (seconds per size), or both")
    if requests is not None:
        requests = checks.count("requests", requests)
    if duration is not None:
        duration = checks.seconds("duration", duration, positive=True)
    Distribution.parse(hold, "hold")
    think_d = Distribution.parse(think, "think")
    if rate is not None and think_d.mean != 0:
        raise ValueError(f"an open loop (rate given) has no think time; got think={think!r}")
    if callable(url_or_factory):
        factory: PoolFactory = url_or_factory
    elif isinstance(url_or_factory, str):
        factory = url_factory(url_or_factory, library, pool_settings or {}, timeout)
    else:
        raise TypeError(f"url_or_factory must be a URL string or a callable, got {url_or_factory!r}")

    total: int | None = None
    if duration is None and requests is not None:
        total = len(sizes) * (workers * requests if rate is None else requests)
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
            if rate is not None:
                result = run_open_loop(db, rate, duration, requests, workers, hold, seed, stop, per_size)
            elif duration is not None:
                result = _timed_closed_loop(db, workers, requests, hold, think, seed, stop, per_size, duration)
            else:
                # requests is set here: without duration it was required above.
                result = run_closed_loop(db, workers, requests or 0, hold, think, seed, stop, per_size)
        finally:
            client_for(db).close()
        finished += result.requests
        rows.append(_sweep_row(size, workers, result))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def url_factory(url: str, library: str, settings: Mapping[str, Any], timeout: float | None) -> PoolFactory:
    """A ``factory(size)`` building ``library``'s instrumented pool on ``url``; the settings are checked now."""
    from ..pools.factory import build, settings_for
    from ..pools.factory import library as checked_library

    library = checked_library(library)
    given = dict(settings)
    if timeout is not None or library == "peewee":
        given.setdefault("timeout", timeout)
    size_key = SIZE_SETTINGS[library]
    if size_key in given:
        raise ValueError(f"pool_settings must not set {size_key}: the sweep sets it to each size")
    if library == "peewee":
        from ..urls import connect

        # peewee reads timeout=None as "fail at once", which factory.build does not take: connect() does.
        return lambda size: connect(url, **given, max_connections=size)
    settings_for(library, **given)

    def factory(size: int) -> Any:
        sized = {**given, size_key: size}
        if library == "psycopg":
            sized["min_size"] = min(int(given.get("min_size", 0)), size)
        return build(library, url, **sized)

    return factory


def _timed_closed_loop(
    db: Any,
    workers: int,
    requests: int | None,
    hold: Distribution | str | float,
    think: Distribution | str | float,
    seed: int,
    stop: threading.Event | None,
    progress: Progress | None,
    duration: float,
) -> WorkloadResult:
    """A closed loop that ends after ``duration`` seconds (or earlier, when ``stop`` is set)."""
    ends = threading.Event()
    deadline = time.monotonic() + duration

    def watch() -> None:
        # Polls rather than waits on one event: either the deadline or the caller's stop ends the run.
        while not ends.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                ends.set()
                return
            ends.wait(min(left, 0.05))

    watcher = threading.Thread(target=watch, name="sweep-timer", daemon=True)
    watcher.start()
    try:
        return run_closed_loop(db, workers, requests or _UNLIMITED_REQUESTS, hold, think, seed, ends, progress)
    finally:
        ends.set()
        watcher.join(5)


def _sweep_row(size: int, workers: int, result: WorkloadResult) -> dict[str, Any]:
    from ..data import analysis, queueing

    frame = result.events
    waits = analysis.wait_stats(frame)
    prefix = "worker" if result.mode == "closed" else "handler"
    served = analysis.fairness_stats(frame, threads=[f"{prefix}-{i}" for i in range(workers)])
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
        "wait_p99_s": waits["p99_s"],
        "wait_max_s": waits["max_s"],
        "checkouts_per_worker_min": served["checkouts_min"],
        "checkouts_per_worker_max": served["checkouts_max"],
        "timeouts": int((frame["kind"] == "timeout").sum()),
        "utilisation": float(analysis.utilisation(frame, size)),
        "predicted_wait_p95_s": predicted_p95,
        "predicted_wait_prob": predicted_prob,
        "arrival_rate_rps": arrival_rate,
        "mean_hold_s": mean_hold,
        "requests_failed": result.requests_failed,
    }
