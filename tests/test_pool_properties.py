"""Random interleavings of every pool operation: the event log stays true, and peewee's behaviour is unchanged.

A hypothesis state machine drives an instrumented fake pool and a plain one in
lockstep through checkouts, check-ins, closes, ``close_idle``/``close_stale``/
``close_all``/``dispose``, broken and poisoned connections and a clock that
jumps past ``stale_timeout``. After every step the instrumented pool's events
must replay cleanly and agree with peewee's own state, and both pools must
have shown a caller exactly the same things.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from poolviz.testing import (
    FakeClock,
    FakeConnection,
    FakePooledDatabase,
    InstrumentedFakePooledDatabase,
    check_invariants,
)

pytestmark = pytest.mark.slow

MAX_CONNECTIONS = 3
STALE_TIMEOUT = 10


def ordinal(db: Any, conn: Any) -> int:
    """Which of this pool's connections ``conn`` is: 1 for the first it opened, 2 for the second…"""
    return next(i for i, opened in enumerate(db.opened, 1) if opened is conn)


class PoolParity(RuleBasedStateMachine):
    """An instrumented pool and a plain peewee pool, driven through the same random steps."""

    def __init__(self) -> None:
        super().__init__()
        # Hypothesis builds one machine per example: the clock is patched here, restored in teardown().
        self.clock = FakeClock().patch()
        self.plain = FakePooledDatabase(max_connections=MAX_CONNECTIONS, stale_timeout=STALE_TIMEOUT)
        self.inst = InstrumentedFakePooledDatabase(max_connections=MAX_CONNECTIONS, stale_timeout=STALE_TIMEOUT)
        # Connections checked out with _connect(), as (plain's, instrumented's) pairs.
        self.held: list[tuple[FakeConnection, FakeConnection]] = []
        # Ordinals peewee forgot without closing (dispose) or closed a second time on request.
        self.forgotten: set[int] = set()
        self.closed_again: set[int] = set()
        # Event counts before each dispose(), which records no event of its own.
        self.dispose_marks: list[int] = []

    def teardown(self) -> None:
        self.clock.restore()

    def both(self, action: Callable[[Any], Any], observe: Callable[[Any, Any], Any] = lambda db, r: r) -> list[Any]:
        """Run ``action`` on both pools; what a caller sees (result or exception) must be the same."""
        results: list[Any] = []
        seen: list[tuple[Any, ...]] = []
        for db in (self.plain, self.inst):
            try:
                result = action(db)
            except Exception as exc:
                results.append(None)
                seen.append(("raised", type(exc).__name__, str(exc)))
            else:
                results.append(result)
                seen.append(("returned", observe(db, result)))
        assert seen[0] == seen[1], f"plain pool saw {seen[0]}, instrumented pool saw {seen[1]}"
        return results

    def mine(self, db: Any, pair: tuple[FakeConnection, FakeConnection]) -> FakeConnection:
        """This pool's connection of a (plain's, instrumented's) pair."""
        return pair[1] if db is self.inst else pair[0]

    def pick_held(self, index: int) -> tuple[FakeConnection, FakeConnection]:
        return self.held.pop(index % len(self.held))

    def pick_opened(self, index: int) -> tuple[FakeConnection, FakeConnection]:
        k = index % len(self.plain.opened)
        return self.plain.opened[k], self.inst.opened[k]

    def expect_second_close(self, pair: tuple[FakeConnection, FakeConnection]) -> None:
        # peewee closes the driver connection again when asked to close one it already closed
        # (close_stale or close_all took it while the caller held it); poolviz must record nothing new.
        plain_conn, _ = pair
        if plain_conn.closed:
            self.closed_again.add(ordinal(self.plain, plain_conn))

    @rule()
    def checkout(self) -> None:
        plain_conn, inst_conn = self.both(lambda db: db._connect(), ordinal)
        if plain_conn is not None:
            self.held.append((plain_conn, inst_conn))

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0, max_value=8))
    def checkin(self, index: int) -> None:
        pair = self.pick_held(index)
        self.both(lambda db: db._close(self.mine(db, pair)))

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0, max_value=8))
    def close_conn(self, index: int) -> None:
        pair = self.pick_held(index)
        self.expect_second_close(pair)
        self.both(lambda db: db._close(self.mine(db, pair), close_conn=True))

    @rule()
    def thread_connect(self) -> None:
        self.both(lambda db: db.connect())

    @rule()
    def thread_close(self) -> None:
        self.both(lambda db: db.close())

    @rule()
    def manual_close(self) -> None:
        if not self.plain.is_closed():
            self.expect_second_close((self.plain.connection(), self.inst.connection()))
        self.both(lambda db: db.manual_close())

    @rule()
    def close_idle(self) -> None:
        self.both(lambda db: db.close_idle())

    @rule(age=st.sampled_from([0, 5, 1000]))
    def close_stale(self, age: int) -> None:
        self.both(lambda db: db.close_stale(age=age))

    @rule()
    def close_all(self) -> None:
        self.both(lambda db: db.close_all())

    @rule()
    def dispose(self) -> None:
        for db in (self.plain, self.inst):
            self.forgotten.update(ordinal(db, c) for _ts, _n, c in db._connections)
            self.forgotten.update(ordinal(db, pc.connection) for pc in db._in_use.values())
        self.both(lambda db: db.dispose())
        self.dispose_marks.append(len(self.inst.events))

    @precondition(lambda self: self.plain.opened)
    @rule(index=st.integers(min_value=0, max_value=8))
    def break_connection(self, index: int) -> None:
        for conn in self.pick_opened(index):
            conn.break_()

    @precondition(lambda self: self.plain.opened)
    @rule(index=st.integers(min_value=0, max_value=8))
    def poison_connection(self, index: int) -> None:
        for conn in self.pick_opened(index):
            conn.poison()

    @rule(seconds=st.sampled_from([0, 1, 6, 11]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    @invariant()
    def peewee_state_is_the_same(self) -> None:
        def state(db: Any) -> tuple[Any, ...]:
            return (
                sorted(ordinal(db, c) for _ts, _n, c in db._connections),
                sorted(ordinal(db, pc.connection) for pc in db._in_use.values()),
                db.is_closed(),
                [(c.closed, c.close_calls) for c in db.opened],
            )

        assert state(self.plain) == state(self.inst)

    @invariant()
    def events_replay_cleanly(self) -> None:
        # dispose() records no event, so each stretch after one is replayed as a log of its own
        # (see test_check_invariants_accepts_a_log_spanning_dispose).
        events = self.inst.events.snapshot()
        for start, end in itertools.pairwise([0, *self.dispose_marks, len(events)]):
            stretch = [e._replace(seq=i) for i, e in enumerate(events[start:end])]
            assert check_invariants(stretch, MAX_CONNECTIONS) == []

    @invariant()
    def counts_on_the_last_event_are_peewee_s(self) -> None:
        last = self.inst.events.last
        if last is not None and last.seq >= (self.dispose_marks or [0])[-1]:
            assert (last.in_use, last.idle) == (len(self.inst._in_use), len(self.inst._connections))

    @invariant()
    def every_connection_peewee_holds_is_tracked(self) -> None:
        db = self.inst
        idle = {id(c) for _ts, _n, c in db._connections}
        in_use = {id(pc.connection) for pc in db._in_use.values()}
        tracked = db._pv_conns
        assert idle | in_use == set(tracked)
        assert all((tracked[key].checked_out is not None) == (key in in_use) for key in tracked)

    @invariant()
    def no_connection_is_closed_twice(self) -> None:
        for k, conn in enumerate(self.inst.opened, 1):
            assert conn.close_calls <= (2 if k in self.closed_again else 1), (
                f"connection {k} closed {conn.close_calls}x"
            )

    @invariant()
    def a_close_event_for_every_connection_that_left(self) -> None:
        db = self.inst
        closes: dict[int, list[str]] = {}
        for e in db.events.snapshot():
            if e.kind == "close":
                closes.setdefault(e.conn, []).append(e.reason)
        held = {id(c) for _ts, _n, c in db._connections} | {id(pc.connection) for pc in db._in_use.values()}
        for serial, conn in enumerate(db.opened, 1):
            if id(conn) in held or serial in self.forgotten:
                assert serial not in closes, f"connection {serial} is still pooled but has a close event"
            elif conn.closed:
                assert len(closes.get(serial, [])) == 1 and closes[serial] != ["broken"], (serial, closes)
            else:
                assert closes.get(serial) == ["broken"], f"connection {serial} was discarded: {closes.get(serial)}"


PoolParity.TestCase.settings = settings(max_examples=200, deadline=None, stateful_step_count=100)
TestPoolParity = PoolParity.TestCase
TestPoolParity.__doc__ = "Random interleavings keep the event log true and the instrumented pool indistinguishable."


def test_check_invariants_accepts_a_log_spanning_dispose() -> None:
    """Regression: dispose() recorded no event, so check_invariants() flagged the correct log after it."""
    db = InstrumentedFakePooledDatabase(max_connections=2)
    db._connect()
    db.dispose()
    db._close(db._connect())
    assert [(e.kind, e.conn, e.in_use, e.idle) for e in db.events.snapshot()] == [
        ("connect", 1, 0, 0),
        ("checkout", 1, 1, 0),
        ("dispose", 0, 0, 0),
        ("connect", 2, 0, 0),
        ("checkout", 2, 1, 0),
        ("checkin", 2, 0, 1),
    ]
    assert check_invariants(db.events) == []
