"""Realistic traffic through an instrumented pool: closed loops, open loops and pool-size sweeps.

Every request checks a connection out (``with db.connection_context():``),
does the tutorial's ``User`` work (``User.create`` and a ``User.select()``)
and then holds the connection for a drawn *hold time* doing real work where
the backend allows it: ``SELECT SLEEP(x)`` on MariaDB/MySQL, ``SELECT
pg_sleep(x)`` on PostgreSQL, ``time.sleep(x)`` with the connection checked
out on SQLite. Errors inside a request (a pool timeout, a lost server) are
recorded on that request and the run goes on.

``poolviz.models.User`` is a module-level model, so a run binds it to its
pool for the run's duration (``User.bind_ctx``). Runs in one process
therefore take turns: a second run waits for the first to finish.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from .credentials import mask_text
from .events import Event
from .models import User
from .pools import backend_of, is_instrumented

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("poolviz")

Progress = Callable[[int, "int | None"], Any]
PoolFactory = Callable[[int], Any]

DISTRIBUTIONS = ("fixed", "exp", "uniform")
_ALIASES = {"fixed": "fixed", "exp": "exp", "exponential": "exp", "uniform": "uniform"}
HOLD_SQL = {"mysql": "SELECT SLEEP(%s)", "postgresql": "SELECT pg_sleep(%s)"}
CLIENT_SLEEP = "time.sleep"

# Runs take turns because binding User is process-wide (see the module docstring).
_RUN_LOCK = threading.RLock()


@dataclass(frozen=True)
class Distribution:
    """A distribution of durations in seconds: ``fixed``, ``exp`` (exponential) or ``uniform``.

    Build one with :meth:`parse` from ``"fixed:0.01"``, ``"exp:0.01"`` (mean
    0.01 s), ``"uniform:0.005,0.02"`` or a plain number (fixed).
    """

    kind: str
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {self.kind!r}")
        wanted = 2 if self.kind == "uniform" else 1
        if len(self.params) != wanted:
            raise ValueError(
                f"the {self.kind} distribution takes {wanted} number{'s' if wanted > 1 else ''}, got {self.params!r}"
            )
        for value in self.params:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"distribution parameters must be finite numbers, got {value!r}")
            if value < 0:
                raise ValueError(f"durations must be >= 0 seconds, got {value!r}")
        if self.kind == "uniform" and self.params[0] > self.params[1]:
            low, high = self.params
            raise ValueError(f"uniform needs low <= high, got low={low!r}, high={high!r}")

    @classmethod
    def parse(cls, spec: Distribution | str | float, name: str = "duration") -> Distribution:
        """A distribution from a spec string, a number of seconds (fixed) or a Distribution.

        ``name`` is the parameter being parsed, used in error messages.
        """
        if isinstance(spec, Distribution):
            return spec
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            if not math.isfinite(spec) or spec < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {spec!r}")
            return cls("fixed", (float(spec),))
        if not isinstance(spec, str):
            raise ValueError(f"{name} must be seconds or a spec like 'exp:0.01' or 'uniform:0.005,0.02', got {spec!r}")
        text = spec.strip()
        kind, sep, rest = text.partition(":")
        if not sep:
            try:
                return cls.parse(float(text), name)
            except ValueError:
                pass
            rest, kind = "", text
        canonical = _ALIASES.get(kind.strip().lower())
        if canonical is None:
            raise ValueError(
                f"unknown {name} distribution {kind.strip()!r} in {spec!r}; use one of "
                f"{', '.join(DISTRIBUTIONS)} (e.g. 'exp:0.01')"
            )
        try:
            params = tuple(float(part) for part in rest.split(",")) if rest.strip() else ()
        except ValueError:
            raise ValueError(f"{name} distribution {spec!r} has a parameter that is not a number") from None
        try:
            return cls(canonical, params)
        except ValueError as exc:
            raise ValueError(f"{name} {spec!r}: {exc}") from None

    @classmethod
    def with_mean(cls, kind: str, mean: float) -> Distribution:
        """A distribution of the given shape and mean; ``uniform`` spans 0 to twice the mean."""
        canonical = _ALIASES.get(kind.lower())
        if canonical is None:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {kind!r}")
        if canonical == "uniform":
            return cls("uniform", (0.0, 2.0 * mean))
        return cls(canonical, (float(mean),))

    @property
    def mean(self) -> float:
        """The mean duration in seconds."""
        if self.kind == "uniform":
            return (self.params[0] + self.params[1]) / 2.0
        return self.params[0]

    def sample(self, rng: random.Random) -> float:
        """One draw, in seconds, from ``rng`` (so a seeded generator repeats its draws)."""
        if self.kind == "fixed":
            return self.params[0]
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.params[0]) if self.params[0] > 0 else 0.0
        return rng.uniform(self.params[0], self.params[1])

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(repr(p) for p in self.params)}"


@dataclass
class RequestRecord:
    """What happened to one request. Times are seconds on the pool's event clock.

    ``start`` is when the request arrived (open loop) or began (closed loop);
    ``queued_s`` how long it sat in the open loop's queue before a thread took
    it; ``wait_s`` the pool wait from its ``checkout`` (or ``timeout``) event;
    ``held_s`` how long it held the connection (from its ``checkin`` event);
    ``hold_s`` the hold time drawn for it; ``latency_s`` arrival to done.
    """

    worker: int
    index: int
    thread: str
    start: float
    latency_s: float
    queued_s: float
    wait_s: float
    held_s: float
    hold_s: float
    conn: int
    seq: int
    ok: bool
    error_type: str = ""
    error_message: str = ""


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RequestRecord))


@dataclass
class WorkloadResult:
    """The outcome of a run: per-request records, the run's events and its settings.

    ``events`` holds only the events recorded between the run's start and end
    (table setup and clean-up are left out), so each request there is one
    ``checkout`` or ``timeout`` event.
    """

    mode: str
    records: list[RequestRecord]
    elapsed_s: float
    events: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    hold_method: str = CLIENT_SLEEP
    stopped: bool = False
    abandoned: int = 0

    @property
    def requests(self) -> int:
        """Requests that ran (ok or failed)."""
        return len(self.records)

    @property
    def requests_ok(self) -> int:
        """Requests that completed without an error."""
        return sum(1 for r in self.records if r.ok)

    @property
    def requests_failed(self) -> int:
        """Requests that ended in an error (recorded, not raised)."""
        return sum(1 for r in self.records if not r.ok)

    @property
    def throughput_rps(self) -> float:
        """Completed requests per second of the run."""
        return self.requests_ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def requests_frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per request, ordered by start time."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records], columns=list(RECORD_FIELDS))

    def summary(self) -> dict[str, Any]:
        """The run's figures as a JSON-able dict (counts, rates, latency percentiles, settings)."""
        latencies = sorted(r.latency_s for r in self.records if r.ok)
        errors: dict[str, int] = {}
        for r in self.records:
            if not r.ok:
                errors[r.error_type] = errors.get(r.error_type, 0) + 1
        return {
            "mode": self.mode,
            **self.settings,
            "hold_method": self.hold_method,
            "requests": self.requests,
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "errors": errors,
            "abandoned": self.abandoned,
            "stopped": self.stopped,
            "elapsed_s": self.elapsed_s,
            "throughput_rps": self.throughput_rps,
            "latency_mean_s": sum(latencies) / len(latencies) if latencies else None,
            "latency_p50_s": _quantile(latencies, 0.50),
            "latency_p95_s": _quantile(latencies, 0.95),
            "latency_p99_s": _quantile(latencies, 0.99),
            "latency_max_s": latencies[-1] if latencies else None,
        }


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    # Linear interpolation, as numpy's and pandas' default.
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer, else a ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def _check_pool(db: Any) -> None:
    if not is_instrumented(db):
        raise TypeError(
            "a workload needs an instrumented pool (poolviz.connect(url) or poolviz.instrument(pool)), "
            f"got {type(db).__module__}.{type(db).__qualname__}"
        )


class _Run:
    """The shared state of one run: the pool, the listener that links requests to events, the records."""

    def __init__(self, db: Any, progress: Progress | None, total: int | None) -> None:
        self.db = db
        self.log = db.events
        self.backend = backend_of(db)
        self.hold_sql = HOLD_SQL.get(self.backend)
        self.prefix = f"pv-{uuid.uuid4().hex[:12]}-"
        self.progress = progress
        self.total = total
        self.done = 0
        self.records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._seen = threading.local()

    def listen(self, event: Event) -> None:
        # The pool calls listeners in the thread that caused the event, so a
        # thread-local slot links each event to the request that thread runs.
        kind = event.kind
        if kind in ("checkout", "timeout", "checkin"):
            setattr(self._seen, kind, event)

    def request(self, worker: int, index: int, hold_s: float, arrived: float | None = None) -> RequestRecord:
        """Run one request and return its record; errors are recorded, never raised."""
        seen = self._seen
        seen.checkout = seen.timeout = seen.checkin = None
        begun = self.log.now()
        start = begun if arrived is None else arrived
        ok, error_type, error_message = True, "", ""
        try:
            with self.db.connection_context():
                name = f"{self.prefix}{worker}-{index}"
                User.create(username=name)
                list(User.select().where(User.username == name))
                self.hold(hold_s)
        except Exception as exc:  # recorded on the request; the run carries on
            ok, error_type = False, type(exc).__name__
            error_message = mask_text(" ".join(str(exc).split()))
        end = self.log.now()
        got: Event | None = seen.checkout or seen.timeout
        checkin: Event | None = seen.checkin
        record = RequestRecord(
            worker=worker,
            index=index,
            thread=threading.current_thread().name,
            start=start,
            latency_s=end - start,
            queued_s=begun - start,
            wait_s=got.wait_s if got is not None else math.nan,
            held_s=checkin.duration_s if checkin is not None else math.nan,
            hold_s=hold_s,
            conn=seen.checkout.conn if seen.checkout is not None else 0,
            seq=got.seq if got is not None else -1,
            ok=ok,
            error_type=error_type,
            error_message=error_message,
        )
        with self._lock:
            self.records.append(record)
            self.done += 1
            done = self.done
            self._report(done)
        return record

    def _report(self, done: int) -> None:
        # Called under self._lock so progress callbacks never overlap and `done` only grows.
        if self.progress is None:
            return
        try:
            self.progress(done, self.total)
        except Exception:
            logger.exception("poolviz progress callback raised; the run carries on")

    def hold(self, seconds: float) -> None:
        """Hold the checked-out connection for ``seconds``, sleeping on the server where possible."""
        if seconds <= 0:
            return
        if self.hold_sql is not None:
            self.db.execute_sql(self.hold_sql, (seconds,))
        else:
            time.sleep(seconds)

    @property
    def hold_method(self) -> str:
        return self.hold_sql or CLIENT_SLEEP

    def setup(self) -> None:
        """Create the User table if missing; close the connection that took, if it was a new one."""
        before = _next_seq(self.log)
        ensure_schema(self.db)
        if any(e.kind == "connect" for e in self.log.since(before)):
            # A fresh pool: leave it empty again so the trace shows it growing.
            self.db.close_idle()

    def cleanup(self) -> None:
        """Delete the rows this run created; a failure here is logged, not raised."""
        try:
            with _connection(self.db):
                User.delete().where(User.username.startswith(self.prefix)).execute()
        except Exception as exc:
            logger.warning("poolviz could not delete the run's User rows: %s", exc)

    def frame(self, first_seq: int, last_seq: int) -> pd.DataFrame:
        frame = self.log.to_frame()
        window = frame[(frame["seq"] >= first_seq) & (frame["seq"] <= last_seq)].reset_index(drop=True)
        window.attrs = dict(frame.attrs)
        return window


def ensure_schema(db: Any) -> None:
    """Create the tutorial's ``User`` table through ``db`` if it does not exist yet."""
    with _RUN_LOCK, User.bind_ctx(db, bind_refs=False, bind_backrefs=False):
        try:
            with _connection(db):
                User.create_table(safe=True)
        except DatabaseError:
            # Another process created it at the same moment: fine if it is there now.
            with _connection(db):
                if not db.table_exists(User._meta.table_name):
                    raise


@contextmanager
def _connection(db: Any) -> Iterator[None]:
    """A connection for this thread: its open one if it has one (left open), else one from the pool."""
    if not db.is_closed():
        yield
        return
    with db.connection_context():
        yield


def _next_seq(log: Any) -> int:
    return log.last.seq + 1 if log.last is not None else 0


def _join_all(threads: list[threading.Thread], stop: threading.Event) -> None:
    """Join every thread; on an interrupt, ask them to stop and still join them before re-raising."""
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise


def _execute(
    db: Any,
    mode: str,
    settings: dict[str, Any],
    stop: threading.Event,
    setup: bool,
    cleanup: bool,
    progress: Progress | None,
    total: int | None,
    body: Callable[[_Run], int],
) -> WorkloadResult:
    """The frame around both loops: bind User, set up, listen, run ``body``, collect the result."""
    run = _Run(db, progress, total)
    with _RUN_LOCK, User.bind_ctx(db, bind_refs=False, bind_backrefs=False):
        if setup:
            run.setup()
        first_seq = _next_seq(db.events)
        began = time.perf_counter()
        with db.events.subscribe(run.listen):
            abandoned = body(run)
        stopped = stop.is_set()
        elapsed = time.perf_counter() - began
        last_seq = _next_seq(db.events) - 1
        if cleanup:
            run.cleanup()
    records = sorted(run.records, key=lambda r: (r.start, r.worker, r.index))
    return WorkloadResult(
        mode=mode,
        records=records,
        elapsed_s=elapsed,
        events=run.frame(first_seq, last_seq),
        settings=settings,
        hold_method=run.hold_method,
        stopped=stopped,
        abandoned=abandoned,
    )


def run_closed_loop(
    db: Any,
    workers: int,
    requests: int,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Run ``workers`` threads that each make ``requests`` requests back to back through ``db``.

    Each worker draws its hold (and think) times from its own
    ``random.Random`` seeded with ``seed`` and its number, so a run with the
    same seed repeats the same draws. Setting ``stop`` ends the run early:
    each worker finishes its current request and exits; every thread is
    joined before this returns. ``progress(done, total)`` is called after
    each request, never by two threads at once. ``setup`` creates the
    ``User`` table if missing; ``cleanup`` deletes the rows the run made.
    """
    _check_pool(db)
    workers = positive_int("workers", workers)
    requests = positive_int("requests", requests)
    hold_d = Distribution.parse(hold, "hold")
    think_d = Distribution.parse(think, "think")
    _check_seed(seed)
    stop_event = stop if stop is not None else threading.Event()
    settings: dict[str, Any] = {
        "workers": workers,
        "requests_per_worker": requests,
        "hold": str(hold_d),
        "think": str(think_d),
        "seed": seed,
    }

    def body(run: _Run) -> int:
        def work(worker: int) -> None:
            rng = random.Random(f"poolviz:{seed}:{worker}")
            for index in range(requests):
                if stop_event.is_set():
                    return
                hold_s = hold_d.sample(rng)
                think_s = think_d.sample(rng)
                run.request(worker, index, hold_s)
                if think_s > 0 and stop_event.wait(think_s):
                    return

        threads = [threading.Thread(target=work, args=(w,), name=f"worker-{w}", daemon=True) for w in range(workers)]
        for thread in threads:
            thread.start()
        _join_all(threads, stop_event)
        return 0

    total = workers * requests
    return _execute(db, "closed", settings, stop_event, setup, cleanup, progress, total, body)


def run_open_loop(
    db: Any,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    threads: int = 8,
    hold: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Send requests at Poisson arrivals of ``rate`` per second to ``threads`` threads, like a web server.

    Arrivals go into a queue that the threads take from, so a request's
    latency includes its time in the queue (``queued_s``) as well as its
    pool wait. The run makes ``requests`` arrivals, or arrivals for
    ``duration`` seconds, whichever ends first (give at least one). Arrival
    times and hold times come from ``random.Random`` seeded with ``seed``.
    Setting ``stop`` ends arrivals; threads finish their current request,
    queued requests are dropped (counted in ``abandoned``), and every thread
    is joined before this returns.
    """
    _check_pool(db)
    rate = _positive_number("rate", rate)
    if duration is None and requests is None:
        raise ValueError("an open loop needs duration (seconds) or requests (a count), got neither")
    if duration is not None:
        duration = _positive_number("duration", duration)
    if requests is not None:
        requests = positive_int("requests", requests)
    threads = positive_int("threads", threads)
    hold_d = Distribution.parse(hold, "hold")
    _check_seed(seed)
    stop_event = stop if stop is not None else threading.Event()
    settings: dict[str, Any] = {
        "threads": threads,
        "rate": rate,
        "duration": duration,
        "requests_planned": requests,
        "hold": str(hold_d),
        "seed": seed,
    }

    def body(run: _Run) -> int:
        inbox: queue.SimpleQueue[tuple[int, float, float] | None] = queue.SimpleQueue()
        abandoned = [0] * threads

        def work(worker: int) -> None:
            while True:
                item = inbox.get()
                if item is None:
                    return
                if stop_event.is_set():
                    abandoned[worker] += 1
                    continue
                index, arrived, hold_s = item
                run.request(worker, index, hold_s, arrived)

        pool = [threading.Thread(target=work, args=(w,), name=f"server-{w}", daemon=True) for w in range(threads)]
        for thread in pool:
            thread.start()
        arrivals = random.Random(f"poolviz:{seed}:arrivals")
        holds = random.Random(f"poolviz:{seed}:holds")
        log = run.log
        try:
            began = time.perf_counter()
            offset = began - log.t0
            due = 0.0
            index = 0
            while requests is None or index < requests:
                due += arrivals.expovariate(rate)
                if duration is not None and due > duration:
                    break
                delay = began + due - time.perf_counter()
                if delay > 0 and stop_event.wait(delay):
                    break
                if stop_event.is_set():
                    break
                inbox.put((index, offset + due, hold_d.sample(holds)))
                index += 1
        finally:
            for _ in pool:
                inbox.put(None)
            _join_all(pool, stop_event)
        return sum(abandoned)

    total = requests if duration is None else None
    return _execute(db, "open", settings, stop_event, setup, cleanup, progress, total, body)


SWEEP_COLUMNS = (
    "max_connections",
    "workers",
    "requests",
    "throughput_rps",
    "wait_mean_s",
    "wait_p95_s",
    "timeouts",
    "utilisation",
    "predicted_wait_p95_s",
    "predicted_wait_prob",
    "arrival_rate_rps",
    "mean_hold_s",
    "requests_failed",
)


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

    from . import analysis, queueing
    from .urls import connect

    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not sizes:
        raise ValueError(f"sizes must be a non-empty list of positive integers, got {sizes!r}")
    sizes = [positive_int("each pool size", s) for s in sizes]
    workers = positive_int("workers", workers)
    requests = positive_int("requests", requests)
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
        rows.append(_sweep_row(size, workers, result, analysis, queueing))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def _sweep_row(size: int, workers: int, result: WorkloadResult, analysis: Any, queueing: Any) -> dict[str, Any]:
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
