"""One run's frame, shared by both loops: the pool, the requests it serves, the result it returns.

Every request checks a connection out (``with db.connection_context():``),
does the tutorial's ``User`` work (an insert and a select) and then holds the
connection for a drawn *hold time* doing real work where the backend allows
it: ``SELECT SLEEP(x)`` on MariaDB/MySQL, ``SELECT pg_sleep(x)`` on
PostgreSQL, ``time.sleep(x)`` with the connection checked out on SQLite.
Errors inside a request (a pool timeout, a lost server) are recorded on that
request and the run goes on.

Each run queries through its own ``User`` subclass bound to its pool
(:func:`poolviz.models.user_model`), so the module-level ``User`` is never
bound and two runs in one process, on two pools, proceed at the same time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from ..credentials import mask_text
from ..events import Event
from ..models import User, user_model
from ..pools.peewee import backend_of, is_instrumented
from .results import CLIENT_SLEEP, RequestRecord, WorkloadResult

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("poolviz.workload")

Progress = Callable[[int, "int | None"], Any]
HOLD_SQL = {"mysql": "SELECT SLEEP(%s)", "postgresql": "SELECT pg_sleep(%s)"}


def check_pool(db: Any) -> None:
    """A workload runs on an instrumented pool only."""
    if not is_instrumented(db):
        raise TypeError(
            "a workload needs an instrumented pool (poolviz.connect(url) or poolviz.instrument(pool)), "
            f"got {type(db).__module__}.{type(db).__qualname__}"
        )


class Run:
    """The shared state of one run: the pool, the listener that links requests to events, the records."""

    def __init__(self, db: Any, progress: Progress | None, total: int | None) -> None:
        self.db = db
        self.log = db.events
        self.backend = backend_of(db)
        self.hold_sql = HOLD_SQL.get(self.backend)
        self.prefix = f"pv-{uuid.uuid4().hex[:12]}-"
        # The tutorial's User, bound to this run's pool only (see user_model).
        self.model = user_model(db)
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
            db = self.db
            with db.connection_context():
                name = f"{self.prefix}{worker}-{index}"
                model = self.model
                model.insert(username=name).execute()
                list(model.select().where(model.username == name))
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
                self.model.delete().where(self.model.username.startswith(self.prefix)).execute()
        except Exception as exc:
            logger.warning("poolviz could not delete the run's User rows: %s", exc)

    def frame(self, first_seq: int, last_seq: int) -> pd.DataFrame:
        frame = self.log.to_frame()
        window = frame[(frame["seq"] >= first_seq) & (frame["seq"] <= last_seq)].reset_index(drop=True)
        window.attrs = dict(frame.attrs)
        return window


def ensure_schema(db: Any) -> None:
    """Create the tutorial's ``User`` table through ``db`` if it does not exist yet."""
    try:
        with _connection(db):
            user_model(db).create_table(safe=True)
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


def join_all(threads: list[threading.Thread], stop: threading.Event) -> None:
    """Join every thread; on an interrupt, ask them to stop and still join them before re-raising."""
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise


def execute(
    db: Any,
    mode: str,
    settings: dict[str, Any],
    stop: threading.Event,
    setup: bool,
    cleanup: bool,
    progress: Progress | None,
    total: int | None,
    body: Callable[[Run], int],
) -> WorkloadResult:
    """The frame around both loops: set up, listen, run ``body``, collect the result."""
    run = Run(db, progress, total)
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
        row_prefix=run.prefix,
    )
