"""Random interleavings of QueuePool's operations: SQLAlchemy behaves the same instrumented, and the log stays true.

A hypothesis state machine drives a plain ``QueuePool`` and an instrumented
one, built alike on a fake DBAPI (no server: the logic needs none), through
checkouts (``timeout=0``: a full pool fails at once), check-ins, invalidation
hard and soft, ``detach()``, ``dispose()``, connections that die (a failed
pre-ping invalidates the whole pool) and a clock that jumps past
``recycle``. After every step both pools must have shown a caller the same
things (which connection, by the order the pool opened them; the same
exceptions with the same messages; ``checkedout()`` / ``checkedin()`` /
``overflow()``), and the instrumented pool's events must replay cleanly, every
close with a reason, their counts SQLAlchemy's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

pytest.importorskip("sqlalchemy")

import sqlalchemy.pool.base as pool_base
from sqlalchemy.pool import QueuePool

import poolviz
from poolviz.events import Event
from poolviz.events.vocabulary import CLOSE_REASONS

POOL_SIZE = 2
MAX_OVERFLOW = 1
RECYCLE = 100.0


class FakeDBAPIConnection:
    """A driver connection numbered in the order its pool opened it; ``alive`` is False once the server dropped it."""

    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.alive = True
        self.closed = False

    def rollback(self) -> None:
        """The pool's reset on return."""

    def commit(self) -> None:
        """Nothing to commit."""

    def close(self) -> None:
        self.closed = True


class FakeDialect(pool_base._ConnDialect):
    """What a pool without an Engine needs to pre-ping: a dead connection fails its ping."""

    def _do_ping_w_event(self, dbapi_connection: Any) -> bool:
        return bool(dbapi_connection.alive)


class FakeTime:
    """``time`` as SQLAlchemy's pool module sees it: ``time()`` ticks on every call and can jump.

    SQLAlchemy compares the times of connects and invalidations with ``>``, so
    each reading is later than the last; ``jump`` moves the clock past ``recycle``.
    """

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        self.now += 0.001
        return self.now

    def jump(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class Side:
    """One pool of the pair, with the connections its creator made."""

    def __init__(self, instrumented: bool, use_lifo: bool, pre_ping: bool) -> None:
        self.opened: list[FakeDBAPIConnection] = []
        self.pool = QueuePool(
            self.create,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            timeout=0,
            use_lifo=use_lifo,
            pre_ping=pre_ping,
            recycle=RECYCLE,
            dialect=FakeDialect(),
        )
        if instrumented:
            poolviz.instrument(self.pool)

    def create(self) -> FakeDBAPIConnection:
        conn = FakeDBAPIConnection(len(self.opened) + 1)
        self.opened.append(conn)
        return conn

    def counts(self) -> tuple[int, int, int, str]:
        pool = self.pool
        return (pool.checkedout(), pool.checkedin(), pool.overflow(), pool.status())


def replay_problems(events: list[Event]) -> list[str]:
    """Replay ``events`` as a pool of the other libraries records them; every impossible step or wrong count.

    A ``connect`` puts an open connection in the pool (``idle``), a checkout
    takes an idle one, a check-in returns one that is out, a ``close`` (with a
    known reason) ends an idle or checked-out one; the counts each event
    carries must be the replay's after it. (peewee's log, checked by
    :func:`poolviz.testing.check_invariants`, counts a new connection only once
    it is checked out.)
    """
    problems = []
    state: dict[int, str] = {}
    waiting: set[str] = set()
    for e in events:
        now = state.get(e.conn)
        expected = {"connect": None, "checkout": "idle", "checkin": "out"}.get(e.kind, "")
        if e.kind in ("connect", "checkout", "checkin") and now != expected:
            problems.append(f"seq {e.seq}: {e.kind} of conn {e.conn} that is {now}")
        if e.kind == "close":
            if now not in ("idle", "out"):
                problems.append(f"seq {e.seq}: close of conn {e.conn} that is {now}")
            if e.reason not in CLOSE_REASONS:
                problems.append(f"seq {e.seq}: close of conn {e.conn} with no known reason ({e.reason!r})")
        state[e.conn] = {"connect": "idle", "checkout": "out", "checkin": "idle", "close": "closed"}.get(
            e.kind, state.get(e.conn, "")
        )
        if e.kind == "wait":
            waiting.add(e.thread)
        elif e.kind in ("checkout", "timeout"):
            waiting.discard(e.thread)
        counts = (sum(s == "out" for s in state.values()), sum(s == "idle" for s in state.values()), len(waiting))
        if (e.in_use, e.idle, e.waiting) != counts:
            problems.append(
                f"seq {e.seq} ({e.kind}): in_use/idle/waiting {e.in_use}/{e.idle}/{e.waiting}, replay {counts}"
            )
    return problems


def outcome(action: Callable[[], Any]) -> tuple[Any, Any]:
    """``(what a caller saw, the result)``: the serial of a connection handed out, or the exception and its text."""
    try:
        result = action()
    except Exception as error:
        return ("raised", type(error).__name__, str(error)), None
    conn = getattr(result, "dbapi_connection", None)
    return ("got", conn.serial if conn is not None else None), result


class QueuePoolPair(RuleBasedStateMachine):
    """A plain QueuePool and an instrumented one, driven through the same random steps."""

    USE_LIFO = False
    PRE_PING = True

    def __init__(self) -> None:
        super().__init__()
        # Hypothesis builds one machine per example: the clock is patched here, restored in teardown().
        self.clock = FakeTime()
        self.real_time = pool_base.time
        pool_base.time = self.clock  # type: ignore[assignment]
        self.sides = (Side(False, self.USE_LIFO, self.PRE_PING), Side(True, self.USE_LIFO, self.PRE_PING))
        self.log = poolviz.events_of(self.sides[1].pool)
        # Checked-out fairies, as (plain's, instrumented's) pairs; detached ones apart.
        self.held: list[tuple[Any, Any]] = []
        self.detached: list[tuple[Any, Any]] = []
        self.checkouts = 0
        self.timeouts = 0
        # QueuePool.dispose() resets its overflow as if nothing were checked out: from then on its
        # checkedout() is short by the connections that were out then (see the_last_event_counts_...).
        self.out_at_dispose = 0

    def teardown(self) -> None:
        pool_base.time = self.real_time  # type: ignore[assignment]
        for pair in self.held + self.detached:
            for fairy in pair:
                fairy.close()
        for side in self.sides:
            side.pool.dispose()

    def both(self, action: Callable[[Side, int], Any]) -> tuple[Any, Any]:
        """Run ``action`` on both pools; a caller must see the same from each."""
        seen, results = zip(*(outcome(lambda i=i: action(self.sides[i], i)) for i in (0, 1)), strict=True)
        assert seen[0] == seen[1]
        return seen[0], results

    def take(self, pairs: list[tuple[Any, Any]], index: int) -> tuple[Any, Any]:
        return pairs.pop(index % len(pairs))

    def full(self) -> bool:
        """Whether a checkout now finds no idle connection and no overflow left (and so, timeout=0, fails)."""
        pool: Any = self.sides[0].pool
        return bool(pool.overflow() >= MAX_OVERFLOW and pool.checkedin() == 0)

    @precondition(lambda self: not self.full())
    @rule()
    def checkout(self) -> None:
        seen, fairies = self.both(lambda side, _i: side.pool.connect())
        assert seen[0] == "got", seen
        self.held.append(fairies)
        self.checkouts += 1

    @precondition(lambda self: self.full())
    @rule()
    def checkout_from_a_full_pool(self) -> None:
        seen, _ = self.both(lambda side, _i: side.pool.connect())
        assert seen[:2] == ("raised", "TimeoutError") and "QueuePool limit of size 2 overflow 1 reached" in seen[2]
        self.timeouts += 1

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8))
    def checkin(self, index: int) -> None:
        pair = self.take(self.held, index)
        self.both(lambda _side, i: pair[i].close())

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8))
    def invalidate(self, index: int) -> None:
        """A hard invalidation closes the connection and checks the record in at once."""
        pair = self.take(self.held, index)
        self.both(lambda _side, i: pair[i].invalidate())
        self.both(lambda _side, i: pair[i].close())

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8))
    def soft_invalidate(self, index: int) -> None:
        """A soft invalidation keeps the connection in use; it is reopened at its next checkout."""
        pair = self.held[index % len(self.held)]
        self.both(lambda _side, i: pair[i].invalidate(soft=True))

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8))
    def detach(self, index: int) -> None:
        pair = self.take(self.held, index)
        self.both(lambda _side, i: pair[i].detach())
        self.detached.append(pair)

    @precondition(lambda self: self.detached)
    @rule(index=st.integers(0, 8))
    def close_detached(self, index: int) -> None:
        pair = self.take(self.detached, index)
        self.both(lambda _side, i: pair[i].close())

    @rule()
    def dispose(self) -> None:
        self.both(lambda side, _i: side.pool.dispose())
        self.out_at_dispose = len(self.held)

    @rule()
    def recycle_age_passes(self) -> None:
        self.clock.jump(RECYCLE + 1)

    @precondition(lambda self: any(not c.closed for c in self.sides[0].opened))
    @rule(index=st.integers(0, 8))
    def server_drops_a_connection(self, index: int) -> None:
        """The server ends a session: its connection fails its next pre-ping (if it is ever pinged)."""
        serials = [c.serial for c in self.sides[0].opened if not c.closed]
        serial = serials[index % len(serials)]
        for side in self.sides:
            side.opened[serial - 1].alive = False

    @invariant()
    def sqlalchemy_counts_are_the_same(self) -> None:
        assert self.sides[0].counts() == self.sides[1].counts()
        assert [c.closed for c in self.sides[0].opened] == [c.closed for c in self.sides[1].opened]

    @invariant()
    def events_replay_cleanly_with_a_reason_for_every_close(self) -> None:
        events = self.log.snapshot()
        assert replay_problems(events) == []
        assert [e.seq for e in events] == list(range(len(events)))
        kinds = [e.kind for e in events]
        assert (kinds.count("checkout"), kinds.count("timeout")) == (self.checkouts, self.timeouts)
        assert kinds.count("wait") == self.timeouts  # timeout=0: each caller that found the pool full
        assert kinds.count("connect") == len(self.sides[1].opened)

    @invariant()
    def closes_are_the_connections_closed_or_detached(self) -> None:
        """poolviz numbers connections in the order the pool opened them, as the fake driver does."""
        side = self.sides[1]
        closed = {e.conn for e in self.log.snapshot() if e.kind == "close"}
        detached = {pair[1].dbapi_connection.serial for pair in self.detached}
        gone = {c.serial for c in side.opened if c.closed}
        assert closed == gone | detached

    @invariant()
    def the_last_event_counts_what_sqlalchemy_counts(self) -> None:
        pool: Any = self.sides[1].pool
        last = self.log.last
        if last is None:
            assert (pool.checkedout(), pool.checkedin()) == (0, 0)
            return
        # A record whose connection was invalidated and not reopened yet is in checkedin(), but nothing is open.
        without_connection = sum(1 for record in pool._pool.queue if record.dbapi_connection is None)
        assert (last.in_use, last.idle, last.waiting) == (len(self.held), pool.checkedin() - without_connection, 0)
        # SQLAlchemy's checkedout() agrees, but for those out at a dispose() (its overflow forgot them).
        assert last.in_use == pool.checkedout() + self.out_at_dispose


class LifoWithoutPrePing(QueuePoolPair):
    """The same pair handing out the last returned connection first, with no pre-ping (dead ones are handed out)."""

    USE_LIFO = True
    PRE_PING = False


SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None)
QueuePoolPair.TestCase.settings = SETTINGS
LifoWithoutPrePing.TestCase.settings = SETTINGS


@pytest.mark.slow
class TestFifoWithPrePing(QueuePoolPair.TestCase):  # type: ignore[name-defined,misc]
    """FIFO QueuePools with pre-ping, random steps: the instrumented pool is indistinguishable, its log true."""


@pytest.mark.slow
class TestLifoWithoutPrePing(LifoWithoutPrePing.TestCase):  # type: ignore[name-defined,misc]
    """LIFO QueuePools without pre-ping, random steps: the instrumented pool is indistinguishable, its log true."""


def test_checkedout_forgets_connections_that_were_out_at_a_dispose() -> None:
    """SQLAlchemy's own count after ``pool.dispose()`` with connections out: short by them; poolviz's is not.

    QueuePool.dispose() resets its overflow as if nothing were checked out, so
    the pool then opens more than ``pool_size + max_overflow``; poolviz's
    ``in_use`` counts every connection actually handed out.
    """
    machine = QueuePoolPair()
    try:
        for _ in range(POOL_SIZE + MAX_OVERFLOW):
            machine.checkout()
        machine.dispose()
        for _ in range(POOL_SIZE + MAX_OVERFLOW):
            machine.checkout()
        pool: Any = machine.sides[1].pool
        last = machine.log.last
        assert last is not None and (last.kind, last.in_use) == ("checkout", 6)
        assert pool.checkedout() == 3
        machine.sqlalchemy_counts_are_the_same()
        machine.the_last_event_counts_what_sqlalchemy_counts()
    finally:
        machine.teardown()


def test_the_fake_clock_makes_recycle_close_a_connection_as_stale() -> None:
    """The machine's clock reaches SQLAlchemy: a jump past ``recycle`` closes the next checkout's connection, stale."""
    machine = QueuePoolPair()
    try:
        machine.checkout()
        machine.checkin(0)
        machine.recycle_age_passes()
        machine.checkout()
        closes = [(e.conn, e.reason) for e in machine.log if e.kind == "close"]
        assert closes == [(1, "stale")]
        assert [c.serial for c in machine.sides[1].opened] == [1, 2]
    finally:
        machine.teardown()


def test_a_dropped_connection_fails_pre_ping_and_is_replaced_as_broken() -> None:
    """A connection the server dropped fails its pre-ping: closed as broken, the caller gets a new one."""
    machine = QueuePoolPair()
    try:
        machine.checkout()
        machine.checkin(0)
        machine.server_drops_a_connection(0)
        machine.checkout()
        assert [(e.conn, e.reason) for e in machine.log if e.kind == "close"] == [(1, "broken")]
        assert machine.held[0][1].dbapi_connection.serial == 2
    finally:
        machine.teardown()
