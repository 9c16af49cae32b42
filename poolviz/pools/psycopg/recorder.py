"""What poolviz keeps of a psycopg_pool pool, and the one place that decides its events.

The threaded pools (:mod:`.hooks`) and the asyncio ones (:mod:`.hooks_async`)
override the same psycopg_pool methods, run psycopg_pool's code and tell
:class:`Recorder` what happened; every event is decided here, so the two
differ only where one awaits.

Counts: every event carries psycopg_pool's own measures at that moment, read
as ``get_stats()`` reads them: ``in_use`` is ``pool_size - pool_available``
(connections handed out, and those being opened, returned or checked, which
psycopg_pool counts in ``pool_size``), ``idle`` is ``pool_available`` and
``waiting`` is ``requests_waiting`` (psycopg_pool keeps a timed-out caller's
place in its queue until a returned connection skips it, and counts it against
``max_waiting``). Threaded pools record holding the pool's lock, which is also
the event log's, and psycopg_pool changes those numbers only under it; asyncio
pools record between two ``await``\\ s, where nothing else runs. So the counts
on an event are what ``get_stats()`` would have answered then.
"""

from __future__ import annotations

import threading
from collections import deque
from contextvars import ContextVar
from threading import get_ident
from time import monotonic, perf_counter
from typing import Any

from psycopg.pq import TransactionStatus
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from ...credentials import mask_text
from ...events import NO_CONN, EventLog
from ...events.store import CHUNK, REUSED
from ..busypath import compiled
from ..callers import thread_name
from ..leaks import holder_name, note_holder
from ..sites import checkout_payload, reused_payload

UNKNOWN = TransactionStatus.UNKNOWN

# Where a tracked connection is, as far as poolviz has seen.
NEW = 0  # opened by psycopg_pool, not yet in the pool: no event yet
IDLE = 1  # in the pool's deque
TAKEN = 2  # taken from the deque for a caller (its checkout follows the caller's check)
HANDED = 3  # given straight to a waiting caller by a returning or new connection
OUT = 4  # checked out


class Tracked:
    """One driver connection of the pool, keyed by ``id(conn)`` (held, so the id is not reused)."""

    __slots__ = (
        "checked_out",
        "checkouts",
        "conn",
        "held_by",
        "holder",
        "leaked",
        "open_s",
        "opened",
        "opener",
        "origin",
        "returned",
        "serial",
        "state",
    )

    def __init__(self, conn: Any, opened: float, open_s: float, opener: str, state: int = NEW) -> None:
        self.conn = conn
        self.serial = NO_CONN
        self.opened = opened
        self.open_s = open_s
        self.opener = opener
        self.state = state
        #: perf_counter() of the checkout, None unless a caller holds it.
        self.checked_out: float | None = None
        #: perf_counter() of the putconn() that returns it.
        self.returned: float | None = None
        #: The name of the thread or task that checked it out.
        self.held_by = ""
        self.checkouts = 0
        # With leak_threshold only (see poolviz.pools.leaks): the holding thread or task, where it asked.
        self.holder: Any = None
        self.origin = ""
        self.leaked = False


if compiled is not None:
    # The same attributes as a C struct, which the compiled busy path (.fast) reads and writes directly.
    Tracked = compiled.Tracked  # type: ignore[misc]


class Scope:
    """Why connections closed inside an overridden method are closed; ``pending`` defers their events."""

    __slots__ = ("pending", "reason")

    def __init__(self, reason: str, defer: bool = False) -> None:
        self.reason = reason
        # psycopg_pool's null pools lower pool_size only after closing: the close is recorded after that.
        self.pending: list[tuple[Tracked, str]] | None = [] if defer else None


#: The reason for connections closed now in this thread or task.
current_scope: ContextVar[Scope | None] = ContextVar("poolviz_psycopg_scope", default=None)
#: True while this thread or task runs ``pool.check()`` (which grows the pool without a caller queued).
in_check: ContextVar[bool] = ContextVar("poolviz_psycopg_in_check", default=False)


#: The psycopg_pool methods the hooks override; each hook calls the pool class's own as ``_pv_next_<name>``.
HOOKED = (
    "getconn",
    "putconn",
    "_get_ready_connection",
    "_check_connection",
    "_maybe_grow_pool",
    "_connect",
    "_add_to_pool",
    "_close_connection",
    "_shrink_pool",
    "drain",
    "close",
    "check",
    "_maybe_close_connection",
)


class Recorder:
    """The bookkeeping and events shared by the threaded and asyncio hooks. Call its methods holding the log's lock."""

    _poolviz_events: EventLog
    _pv_conns: dict[int, Tracked]
    _pv_serial: Any
    _pv_secrets: tuple[str, ...]
    _pv_record: Any
    _pv_write: Any
    # The log's tail and its append (see EventLog.tail): the hot path appends lean records itself.
    _pv_tail: list[Any]
    _pv_append: Any
    # Callers now queued: their key (see _pv_key) -> when they joined the queue.
    _pv_waiters: dict[int, float]
    # Callers whose check callback refused a connection in this getconn() (they back off and try again):
    # their checkout's wait_s, like their timeout's, counts from the start of getconn(). Not queued: no wait event.
    _pv_retrying: set[int]
    # Whether the log has listeners (told by the log itself): delivery is skipped without.
    _pv_listening: bool = False
    # Whether checkouts record their site (poolviz.pools.sites).
    _pv_sites: bool = True
    # leak_threshold, and the watchdog that looks for leaks while it is set (see .leaks).
    _pv_leak_threshold: float | None = None
    _pv_watchdog: Any = None
    # The pool class's own implementations of HOOKED (see instrumented_class).
    _pv_next_getconn: Any
    _pv_next_putconn: Any
    _pv_next__get_ready_connection: Any
    _pv_next__maybe_grow_pool: Any
    _pv_next__connect: Any
    _pv_next__add_to_pool: Any
    _pv_next__check_connection: Any
    _pv_next__close_connection: Any
    _pv_next__shrink_pool: Any
    _pv_next_drain: Any
    _pv_next_close: Any
    _pv_next_check: Any
    _pv_next__maybe_close_connection: Any
    # psycopg_pool's own state, read to stamp each event.
    _nconns: int
    _pool: deque[Any]
    _waiting: deque[Any]
    _closed: bool
    _drained_at: float
    _check: Any

    #: Who is acting: the thread's name here, the task's in the asyncio hooks.
    _pv_name: Any = staticmethod(thread_name)

    def _pv_key(self) -> int:
        """Who is asking, as a key: the thread's id here, the task's in the asyncio hooks."""
        return get_ident()

    def _pv_event(
        self,
        kind: str,
        serial: int = NO_CONN,
        thread: str | None = None,
        wait_s: float = 0.0,
        duration_s: float = 0.0,
        reused: bool = False,
        reason: str = "",
        message: str = "",
    ) -> None:
        # The counts as psycopg_pool's _get_measures() reads them.
        size = self._nconns
        idle = len(self._pool)
        self._pv_record(
            kind,
            serial,
            thread if thread is not None else self._pv_name(),
            size - idle,
            idle,
            len(self._waiting),
            wait_s,
            duration_s,
            reused,
            reason,
            message,
        )

    def _pv_site(self) -> Any:
        """Where the caller asked: :func:`~poolviz.pools.sites.reused_payload`'s answer (the threaded hooks
        work it out before psycopg_pool takes its lock)."""
        return reused_payload(4)  # from the caller of getconn() or _get_ready_connection(), which call _pv_checkout

    def _pv_holder(self) -> Any:
        """The thread (or, in the asyncio hooks, the task) checking a connection out."""
        return threading.current_thread()

    def _pv_watch(self, info: Tracked) -> None:
        note_holder(info, self._pv_holder())
        self._pv_watchdog.ensure_running()

    def _pv_unleak(self, info: Tracked) -> None:
        info.leaked = False
        self._pv_leak_event("unleak", info, perf_counter(), "", info.checked_out or 0.0)

    def _pv_leak_event(self, kind: str, info: Tracked, now: float, reason: str, since: float) -> None:
        """``leak`` or ``unleak`` of ``info``, named after its holder (what poolviz.pools.leaks calls)."""
        self._pv_event(
            kind, info.serial, holder_name(info.holder), 0.0, now - since, reason=reason, message=info.origin
        )

    def _pv_on_listening(self, listening: bool) -> None:
        self._pv_listening = listening

    def _pv_adopt(self) -> None:
        # instrument() on a pool in use: its idle connections get serials, silently.
        now = perf_counter()
        for conn in self._pool:
            info = self._pv_conns[id(conn)] = Tracked(conn, now, 0.0, "", IDLE)
            info.serial = next(self._pv_serial)

    def _pv_opened(self, conn: Any, started: float) -> None:
        now = perf_counter()
        self._pv_conns[id(conn)] = Tracked(conn, now, now - started, self._pv_name())

    def _pv_connect_failed(self, exc: BaseException) -> None:
        message = mask_text(str(exc), self._pv_secrets)
        self._pv_event("error", reason=type(exc).__name__, message=message)

    def _pv_info(self, conn: Any) -> Tracked:
        """The tracked record of ``conn``; one opened before instrument() and arriving now is tracked as new."""
        info = self._pv_conns.get(id(conn))
        if info is None:
            info = self._pv_conns[id(conn)] = Tracked(conn, perf_counter(), 0.0, self._pv_name())
        return info

    def _pv_announce(self, info: Tracked) -> None:
        info.serial = next(self._pv_serial)
        self._pv_event("connect", info.serial, info.opener, 0.0, info.open_s)

    def _pv_take(self, conn: Any) -> None:
        """``_get_ready_connection`` took ``conn`` for a caller whose ``check`` callback must pass first.

        (Without a check callback psycopg_pool hands it over as it is: the
        hooks record its checkout then, under the lock already held.)
        """
        info = self._pv_conns.get(id(conn))
        if info is None or info.state == NEW:
            info = self._pv_info(conn)
            self._pv_announce(info)
        info.state = TAKEN

    def _pv_landed(self, conn: Any) -> None:
        """``_add_to_pool(conn)`` returned: ``conn`` is idle in the pool, with a waiting caller, or closed."""
        info = self._pv_conns.get(id(conn))
        if info is None:
            return  # closed on the way (its close is recorded)
        pool = self._pool
        state = IDLE if pool and pool[-1] is conn else HANDED
        checked_out = info.checked_out
        if checked_out is not None:
            if info.leaked:
                self._pv_unleak(info)
            info.checked_out = None
            info.state = state
            idle = len(pool)
            # The hot path: a lean record appended to the log's tail (see EventLog.write); held until putconn().
            now = perf_counter()
            held = now - ((info.returned or now) - checked_out)  # since: duration_s = now - since (events.store)
            record = (now, "checkin", info.serial, info.held_by, self._nconns - idle, idle, len(self._waiting), held)
            self._pv_append(record)
            if len(self._pv_tail) >= CHUNK:
                self._poolviz_events.roll()
            if self._pv_listening:
                self._poolviz_events.hold(record)
            return
        if info.state == NEW:
            self._pv_announce(info)
        # else: back from pool.check() or from a caller's failed check: it was never checked out.
        info.state = state

    def _pv_wait(self) -> None:
        """A caller was just queued (psycopg_pool holds its lock; the caller is in ``_waiting``)."""
        key = self._pv_key()
        if key in self._pv_waiters or not self._waiting or in_check.get():
            return
        self._pv_waiters[key] = perf_counter()
        self._pv_event("wait", NO_CONN, self._pv_name())

    def _pv_checkout(self, conn: Any, started: float | None = None) -> None:
        """A caller gets ``conn`` (a null pool opened it for the caller: its connect first).

        ``started``: when its ``getconn()`` began, the start of its wait if a check failed on the way.
        """
        info = self._pv_conns.get(id(conn))
        if info is None or info.state == NEW:
            info = self._pv_info(conn)
            self._pv_announce(info)
        now = perf_counter()
        waited = 0.0
        if self._pv_waiters:
            since = self._pv_waiters.pop(self._pv_key(), None)
            if since is not None:
                waited = now - since
        if self._pv_retrying and started is not None and self._pv_key() in self._pv_retrying:
            self._pv_retrying.discard(self._pv_key())
            waited = now - started  # failed checks and their backoff: waited since getconn() began
        name = self._pv_name()
        info.state = OUT
        info.checked_out = now
        info.returned = None
        info.held_by = name
        checkouts = info.checkouts = info.checkouts + 1
        idle = len(self._pool)
        # The hot path: the log's raw write, with the payload in its compact form (cached with the site).
        if self._pv_sites:
            extra: Any = checkout_payload(self._pv_site(), checkouts > 1, waited)
        elif waited:
            extra = (waited, 0.0, checkouts > 1, "", "")
        else:
            extra = REUSED if checkouts > 1 else None
        record = (now, "checkout", info.serial, name, self._nconns - idle, idle, len(self._waiting), extra)
        self._pv_append(record)  # EventLog.write, inlined
        if len(self._pv_tail) >= CHUNK:
            self._poolviz_events.roll()
        if self._pv_listening:
            self._poolviz_events.hold(record)
        if self._pv_leak_threshold is not None:
            self._pv_watch(info)

    def _pv_left(self, started: float, exc: BaseException) -> None:
        """``getconn()`` raised ``exc``: a timeout, a refusal, or a waiting caller leaving for another reason."""
        waited_since = self._pv_waiters.pop(self._pv_key(), None) if self._pv_waiters else None
        if self._pv_retrying and self._pv_key() in self._pv_retrying:
            self._pv_retrying.discard(self._pv_key())
            waited_since = started  # backed off after failed checks: waited since getconn() began
        if isinstance(exc, TooManyRequests):
            reason = "refused"
        elif isinstance(exc, PoolTimeout):
            reason = ""
        elif waited_since is None:
            return
        elif isinstance(exc, PoolClosed):
            reason = "closed"
        else:
            reason = "cancelled"
        since = waited_since if waited_since is not None else started
        self._pv_event("timeout", NO_CONN, self._pv_name(), perf_counter() - since, reason=reason)

    def _pv_returning(self, conn: Any) -> None:
        """``putconn(conn)``: note when the holder let go. Call it without the lock: it takes it when it records."""
        info = self._pv_conns.get(id(conn))
        if info is not None and info.state == OUT:
            # Only the holder touches its connection's record while it is out.
            info.returned = perf_counter()
            if conn.pgconn.transaction_status != UNKNOWN:
                return
            # Its return will find it dead and drop it (pool_size does not change: a new one replaces it).
            with self._poolviz_events.lock:
                self._pv_dropped(conn)
        elif info is None and getattr(conn, "_pool", None) is self:
            # Checked out before instrument(): tracked from now on, silently.
            with self._poolviz_events.lock:
                info = self._pv_conns[id(conn)] = Tracked(conn, perf_counter(), 0.0, "", OUT)
                info.serial = next(self._pv_serial)

    def _pv_check_failed(self, conn: Any) -> None:
        """The ``check`` callback refused ``conn``: psycopg_pool drops it if it is dead, else puts it back.

        The caller backs off and tries again: its wait runs from the start of its ``getconn()``
        (not ``pool.check()``'s, which checks with ``check_connection`` and never gets here).
        """
        if not in_check.get():
            self._pv_retrying.add(self._pv_key())
        if conn.pgconn.transaction_status == UNKNOWN:
            self._pv_dropped(conn)

    def _pv_closing(self, conn: Any) -> tuple[Tracked | None, str]:
        """``conn`` is about to be closed: stop tracking it and say why (read before the driver closes it)."""
        info = self._pv_conns.pop(id(conn), None)
        if info is None or info.conn is not conn:
            return None, ""
        scope = current_scope.get()
        if self._closed:
            reason = "all"
        elif scope is not None:
            reason = scope.reason
            if reason == "overflow" and conn.pgconn.transaction_status == UNKNOWN:
                reason = "broken"
        elif getattr(conn, "_created_at", 1.0) <= self._drained_at:
            reason = "all"  # drain(): closed at its return
        elif getattr(conn, "_expire_at", float("inf")) <= monotonic():
            reason = "stale"  # max_lifetime, at its return or in check()
        elif info.state in (OUT, TAKEN):
            reason = "not_reusable"  # closed by the rollback or reset at its return
        else:
            reason = "manual"
        return info, reason

    def _pv_closed(self, info: Tracked, reason: str) -> None:
        scope = current_scope.get()
        if scope is not None and scope.pending is not None:
            scope.pending.append((info, reason))
        else:
            self._pv_close_event(info, reason)

    def _pv_close_event(self, info: Tracked, reason: str) -> None:
        if info.state == NEW:
            if self._closed:
                return  # opened as the pool closed, never in it: nothing a caller could see
            self._pv_announce(info)
        if info.leaked:
            self._pv_unleak(info)
        thread = info.held_by if info.checked_out is not None else self._pv_name()
        self._pv_event("close", info.serial, thread, 0.0, perf_counter() - info.opened, reason=reason)

    def _pv_flush_scope(self, scope: Scope) -> None:
        if scope.pending:
            for info, reason in scope.pending:
                self._pv_close_event(info, reason)
            scope.pending.clear()

    def _pv_dropped(self, conn: Any) -> None:
        """psycopg_pool let ``conn`` go without closing it: found dead at its return or by a caller's check."""
        info = self._pv_conns.get(id(conn))
        if info is not None and info.conn is conn:
            del self._pv_conns[id(conn)]
            self._pv_close_event(info, "broken")

    def _pv_checking(self) -> list[Tracked]:
        """The idle connections ``check()`` is about to test."""
        conns = self._pv_conns
        return [info for info in (conns.get(id(conn)) for conn in self._pool) if info is not None]

    def _pv_checked(self, checking: list[Tracked]) -> None:
        """After ``check()``: a tested connection neither back, nor taken, nor closed was dropped as broken."""
        present = {id(conn) for conn in self._pool}
        for info in checking:
            key = id(info.conn)
            if info.state == IDLE and key not in present and self._pv_conns.get(key) is info:
                self._pv_dropped(info.conn)
