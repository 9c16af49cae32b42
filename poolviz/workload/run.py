"""One run's frame, shared by the threaded and the asyncio loops: the requests' records, progress, the result.

Every request checks a connection out, does the tutorial's ``User`` work (an
insert and a select) and then holds the connection for a drawn *hold time*
doing real work where the backend allows it: ``SELECT SLEEP(x)`` on
MariaDB/MySQL, ``SELECT pg_sleep(x)`` on PostgreSQL, a client-side sleep on
SQLite. Errors inside a request (a pool timeout, a lost server) are recorded
on that request and the run goes on.

:class:`Run` decides everything the two kinds of loop share, so they cannot
drift apart: how a request's events are linked to it and how its record is
built (:func:`request_record`), how progress is reported and what a failing
progress callback costs (logged once, the run carries on), how a failed
clean-up is reported (logged, not raised), and the :class:`WorkloadResult`
(with ``row_prefix``). The threaded loops (:mod:`.loops`) and the asyncio ones
(:mod:`.asyncio_loops`) add only how to connect, hold and sleep.

Each run on a peewee pool queries through its own ``User`` subclass bound to
its pool (:func:`poolviz.models.user_model`), so the module-level ``User`` is
never bound and two runs in one process, on two pools, proceed at the same
time. SQLAlchemy engines and psycopg_pool pools run the same statements on a
DBAPI cursor (:mod:`.clients`).
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

from peewee import Database

from ..backends import HOLD_SQL
from ..credentials import mask_text
from ..events import Event
from ..pools.callers import task_or_thread_name
from .clients import THREAD_TARGETS, is_threaded_target, library_of
from .results import CLIENT_SLEEP, RequestRecord, WorkloadResult

logger = logging.getLogger("poolviz.workload")

Progress = Callable[[int, "int | None"], Any]

# The events of the request the caller is running. A pool calls listeners in the
# thread (or asyncio task) that caused the event, and both a thread and a task
# see their own value of a context variable: one slot serves threads and tasks.
_seen: contextvars.ContextVar[dict[str, Event] | None] = contextvars.ContextVar("poolviz_seen", default=None)
_LINKED = ("checkout", "timeout", "checkin")


def request_record(
    worker: int,
    index: int,
    thread: str,
    times: tuple[float, float, float],
    hold_s: float,
    seen: Mapping[str, Event],
    error: BaseException | None,
) -> RequestRecord:
    """The record of one request: ``times`` is (arrived, begun, ended) on the log's clock.

    ``seen`` maps ``checkout``, ``timeout`` and ``checkin`` to the request's own
    events (any may be missing); ``error`` is what the request raised, or None.
    """
    start, begun, end = times
    checkout, checkin = seen.get("checkout"), seen.get("checkin")
    got = checkout if checkout is not None else seen.get("timeout")
    return RequestRecord(
        worker=worker,
        index=index,
        thread=thread,
        start=start,
        latency_s=end - start,
        queued_s=begun - start,
        wait_s=got.wait_s if got is not None else math.nan,
        held_s=checkin.duration_s if checkin is not None else math.nan,
        hold_s=hold_s,
        conn=checkout.conn if checkout is not None else 0,
        seq=got.seq if got is not None else -1,
        ok=error is None,
        error_type="" if error is None else type(error).__name__,
        error_message="" if error is None else mask_text(" ".join(str(error).split())),
    )


def check_pool(db: Any, tasks: bool = False) -> None:
    """A workload runs on an instrumented pool only: a threaded one of any library, or (``tasks``) an asyncio one."""
    from ..pools.peewee import is_instrumented
    from ..pools.peewee_asyncio import is_async_instrumented

    if tasks:
        if is_async_instrumented(db) or _is_async_target(db):
            return
        wanted = (
            "an asyncio workload needs an instrumented asyncio pool: a peewee asyncio database "
            "(poolviz.connect('postgresql+asyncpool://...') or poolviz.aio.instrument_async(db)), a SQLAlchemy "
            "AsyncEngine or a psycopg_pool AsyncConnectionPool (poolviz.instrument(x))"
        )
    elif library_of(db) == "peewee" or isinstance(db, Database):
        if is_instrumented(db):
            return
        wanted = "a workload needs an instrumented pool (poolviz.connect(url) or poolviz.instrument(pool))"
    elif is_threaded_target(db):
        return
    else:
        wanted = f"a workload needs {THREAD_TARGETS}"
    raise TypeError(f"{wanted}, got {type(db).__module__}.{type(db).__qualname__}")


def _is_async_target(db: Any) -> bool:
    """An instrumented psycopg_pool AsyncConnectionPool or SQLAlchemy AsyncEngine."""
    library = library_of(db)
    if library == "psycopg":
        from psycopg_pool import AsyncConnectionPool

        return isinstance(db, AsyncConnectionPool) and getattr(db, "_poolviz_events", None) is not None
    if library == "sqlalchemy":
        from sqlalchemy.ext.asyncio import AsyncEngine

        return isinstance(db, AsyncEngine) and getattr(db.sync_engine.pool, "_poolviz_events", None) is not None
    return False


class Frame(NamedTuple):
    """What a loop does around its requests: its mode and settings, when to stop, set-up and clean-up."""

    mode: str
    settings: dict[str, Any]
    stop: threading.Event
    setup: bool
    cleanup: bool


@dataclass
class Window:
    """The part of the log a run covers: its first and last ``seq`` and how long it ran."""

    first_seq: int
    began: float
    last_seq: int = -1
    elapsed_s: float = 0.0


class Run:
    """The shared state of one run: the pool, the listener that links requests to events, the records.

    Subclasses say how a request connects and holds (threads, through the
    library's :class:`~.clients.Client`, or asyncio); everything else is
    decided here once. ``db`` is any instrumented target: the log is
    ``poolviz.events_of(db)`` and the backend its ``meta["backend"]``.
    """

    client_sleep = CLIENT_SLEEP

    def __init__(self, db: Any, progress: Progress | None, total: int | None) -> None:
        from ..pools import events_of

        self.db = db
        # Any library's log; its meta names the backend the pool talks to.
        self.log = events_of(db)
        self.hold_sql = HOLD_SQL.get(str(self.log.meta.get("backend", "other")))
        self.prefix = f"pv-{uuid.uuid4().hex[:12]}-"
        self.progress = progress
        self.total = total
        self.records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._progress_failed = False

    @staticmethod
    def listen(event: Event) -> None:
        seen = _seen.get()
        if seen is not None and event.kind in _LINKED:
            seen[event.kind] = event

    def row_name(self, worker: int, index: int) -> str:
        """The ``User.username`` a request inserts: the run's prefix, so clean-up finds its rows."""
        return f"{self.prefix}{worker}-{index}"

    def track(self, worker: int, index: int, hold_s: float, arrived: float | None = None) -> Tracked:
        """A block that runs one request: ``with run.track(...) as request: ...``, then ``request.record``."""
        return Tracked(self, worker, index, hold_s, arrived)

    def finish(self, record: RequestRecord) -> None:
        """Keep ``record`` and report progress; never two progress calls at once, and ``done`` only grows."""
        with self._lock:
            self.records.append(record)
            if self.progress is None:
                return
            try:
                self.progress(len(self.records), self.total)
            except Exception:
                if not self._progress_failed:
                    self._progress_failed = True
                    logger.exception("poolviz progress callback raised; the run carries on (logged once)")

    @property
    def hold_method(self) -> str:
        return self.hold_sql or self.client_sleep

    @contextmanager
    def watch(self) -> Iterator[Window]:
        """Listen for the block's events and note the part of the log (and the time) it covers."""
        window = Window(next_seq(self.log), time.perf_counter())
        with self.log.subscribe(self.listen):
            yield window
        window.elapsed_s = time.perf_counter() - window.began
        window.last_seq = next_seq(self.log) - 1

    def result(self, frame: Frame, window: Window, abandoned: int) -> WorkloadResult:
        """The run's result: its records by start time and the events of ``window``."""
        from ..data.frames import events_to_frame

        log = self.log
        # Only the window's events are copied (the log may hold many runs); attrs as to_frame() gives them,
        # and the library (peewee's logs do not name theirs).
        held = [e for e in log.since(window.first_seq) if e.seq <= window.last_seq]
        attrs = {"library": "peewee", "dropped": log.dropped, "capacity": log.capacity, **log.meta}
        events = events_to_frame(held, attrs)
        return WorkloadResult(
            mode=frame.mode,
            records=sorted(self.records, key=lambda r: (r.start, r.worker, r.index)),
            elapsed_s=window.elapsed_s,
            events=events,
            settings=frame.settings,
            hold_method=self.hold_method,
            stopped=frame.stop.is_set(),
            abandoned=abandoned,
            row_prefix=self.prefix,
        )


class Tracked:
    """One request in progress: links the caller's pool events to it and records it when the block ends.

    An ``Exception`` raised in the block is recorded on the request and
    swallowed (the run goes on); ``KeyboardInterrupt`` and the like propagate.
    """

    def __init__(self, run: Run, worker: int, index: int, hold_s: float, arrived: float | None) -> None:
        self.run = run
        self.worker, self.index, self.hold_s, self.arrived = worker, index, hold_s, arrived
        self.seen: dict[str, Event] = {}
        self.record: RequestRecord  # set when the block ends
        self._token: contextvars.Token[dict[str, Event] | None] | None = None
        self._begun = 0.0

    def __enter__(self) -> Tracked:
        self._token = _seen.set(self.seen)
        self._begun = self.run.log.now()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: TracebackType | None
    ) -> bool:
        end = self.run.log.now()
        if self._token is not None:
            _seen.reset(self._token)
        if error is not None and not isinstance(error, Exception):
            return False
        start = self._begun if self.arrived is None else self.arrived
        times = (start, self._begun, end)
        self.record = request_record(
            self.worker, self.index, task_or_thread_name(), times, self.hold_s, self.seen, error
        )
        self.run.finish(self.record)
        return True


def cleanup_failed(prefix: str, exc: BaseException) -> None:
    """The one policy for a failed clean-up (threads, tasks, processes): a warning naming the rows left, no raise."""
    logger.warning(
        "poolviz could not delete the run's User rows (username LIKE '%s%%'): %s",
        prefix,
        mask_text(" ".join(str(exc).split())),
    )


def next_seq(log: Any) -> int:
    """The ``seq`` the log's next event will get."""
    return log.last.seq + 1 if log.last is not None else 0
