"""64 threads x 500 requests on a pool of 8, on every backend: the event log accounts for every request.

Three settings of ``timeout``: 30 s (callers wait; none times out), 1 ms
(many waits end in ``MaxConnectionsExceeded``) and ``None`` (peewee fails at
once when the pool is full). The server work is a trivial ``SELECT 1`` so the
pool, not the database, is what is stressed.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from poolviz import MaxConnectionsExceeded
from poolviz.testing import FakeConnection, InstrumentedFakePooledDatabase, check_invariants, run_threads

pytestmark = pytest.mark.slow

THREADS, REQUESTS, POOL = 64, 500, 8
TOTAL = THREADS * REQUESTS


def run_stress(db: Any) -> Counter[str]:
    """Every thread makes REQUESTS requests; returns how many ended ``ok``, ``timeout`` or otherwise."""
    barrier = threading.Barrier(THREADS, timeout=30)
    tallies: list[Counter[str]] = []
    crashes: list[BaseException] = []

    def worker() -> None:
        tally: Counter[str] = Counter()
        try:
            barrier.wait()
            for _ in range(REQUESTS):
                try:
                    with db.connection_context():
                        db.execute_sql("SELECT 1").fetchone()
                    tally["ok"] += 1
                except MaxConnectionsExceeded:
                    tally["timeout"] += 1
                except Exception as exc:
                    tally[f"error: {type(exc).__name__}: {exc}"] += 1
        except BaseException as exc:
            crashes.append(exc)
        tallies.append(tally)

    threads = [threading.Thread(target=worker, name=f"stress-{i}") for i in range(THREADS)]
    run_threads(threads, 150)
    assert crashes == []
    return sum(tallies, Counter())


@pytest.mark.timeout(180)
@pytest.mark.parametrize("timeout", [30, 0.001, None], ids=["timeout-30s", "timeout-1ms", "timeout-None"])
def test_every_request_is_accounted_for(
    make_pool: Any, backend: str, timeout: float | None, no_new_threads: None
) -> None:
    """Each request is one checkout (served) or one timeout event (MaxConnectionsExceeded); invariants hold."""
    db = make_pool(max_connections=POOL, timeout=timeout)
    outcomes = run_stress(db)

    assert set(outcomes) <= {"ok", "timeout"}, outcomes
    assert outcomes["ok"] + outcomes["timeout"] == TOTAL
    if timeout == 30:
        assert outcomes["timeout"] == 0
    else:
        assert outcomes["timeout"] > 0, "a short timeout on a saturated pool must time some callers out"
    events = db.events.snapshot()
    assert db.events.dropped == 0 and events[0].seq == 0
    assert check_invariants(events, POOL, allow_open=False) == []
    kinds = Counter(e.kind for e in events)
    assert kinds["checkout"] == kinds["checkin"] == outcomes["ok"]
    assert kinds["timeout"] == outcomes["timeout"]
    assert kinds["connect"] <= POOL and kinds["close"] == kinds["error"] == 0
    assert max(e.in_use for e in events) == POOL, "the pool was saturated"
    waited = sum(1 for e in events if e.kind == "checkout" and e.wait_s > 0)
    if timeout is None:
        assert kinds["wait"] == waited == 0
        assert all(e.wait_s == 0.0 for e in events if e.kind == "timeout")
    else:
        assert kinds["wait"] == waited + kinds["timeout"], "every wait ends in a checkout or a timeout"
        assert all(e.wait_s > 0 for e in events if e.kind == "timeout")
    stats = db.events.get_stats()
    assert stats["requests_num"] == TOTAL
    assert stats["requests_errors"] == outcomes["timeout"]
    assert stats["requests_queued"] == kinds["wait"]
    assert (stats["pool_size"], stats["requests_waiting"]) == (kinds["connect"], 0)
    print(
        f"\n[{backend} timeout={timeout}] {THREADS}x{REQUESTS}: {outcomes['ok']} served, "
        f"{outcomes['timeout']} timed out, {kinds['wait']} waits, {len(events)} events"
    )


@pytest.mark.timeout(30)
def test_manual_close_never_shows_more_connections_in_use_than_the_limit(no_new_threads: None) -> None:
    """Regression: a checkout during manual_close() was recorded with in_use above max_connections.

    peewee's ``manual_close()`` frees the slot (pops ``_in_use``) under the pool
    lock, then closes the driver connection outside it; poolviz records the
    ``close`` (and lowers ``in_use``) only after the driver close returns. A
    checkout in between, which peewee rightly allows, is recorded with
    ``in_use == max_connections + 1``. A slow driver close (a dead server's
    socket) makes the window long; here the fake connection's close blocks.
    """
    db = InstrumentedFakePooledDatabase(max_connections=1)
    closing, finish = threading.Event(), threading.Event()

    def slow_close(conn: FakeConnection) -> None:
        closing.set()
        assert finish.wait(10)
        FakeConnection.close(conn)

    def close_by_hand() -> None:
        db.connect()
        conn = db.connection()
        conn.close = lambda: slow_close(conn)  # type: ignore[method-assign]
        db.manual_close()

    closer = threading.Thread(target=close_by_hand, name="closer")
    closer.start()
    try:
        assert closing.wait(10)
        db._connect()  # peewee has freed the slot: this checkout is allowed
    finally:
        finish.set()
        closer.join(10)
    assert not closer.is_alive()
    events = db.events.snapshot()
    assert [(e.kind, e.in_use) for e in events if e.kind == "checkout"] == [("checkout", 1), ("checkout", 1)]
    assert [e.kind for e in events] == ["connect", "checkout", "close", "connect", "checkout"]
    assert check_invariants(events, 1) == []
