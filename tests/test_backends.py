"""The instrumented pools on real SQLite, MariaDB and PostgreSQL: the tutorial model, threads, faults."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from playhouse.pool import PooledSqliteDatabase

from poolviz.models import User
from poolviz.servers.faults import kill_connections
from poolviz.testing import check_invariants, kinds, run_threads


def test_tutorial_model_runs_unchanged(make_pool: Any) -> None:
    """User.create(username=...) and User.select() run as in the tutorial on a pool."""
    db = make_pool(max_connections=4)
    db.bind([User])
    with db.connection_context():
        db.create_tables([User])
        User.delete().where(User.username == "john").execute()
    try:
        User.create(username="john")
        names = [user.username for user in User.select().where(User.username == "john")]
    finally:
        User.delete().where(User.username == "john").execute()
        db.close()
    assert names == ["john"]


def test_autoconnect_keeps_the_connection_until_close(make_pool: Any) -> None:
    """peewee's autoconnect checks a connection out on the first query and holds it until db.close()."""
    db = make_pool(max_connections=4)
    db.bind([User])
    with db.connection_context():
        db.create_tables([User])
    db.events.clear()
    User.select().count()
    User.select().count()
    assert kinds(db) == ["checkout"]
    assert not db.is_closed()
    db.close()
    assert kinds(db) == ["checkout", "checkin"]


def test_plain_peewee_sqlite_pool_refuses_another_thread(tmp_path: Any) -> None:
    """Why check_same_thread=False is our default: peewee's own pooled SQLite fails across threads."""
    db = PooledSqliteDatabase(str(tmp_path / "plain.db"), max_connections=1)
    db.connect()
    db.close()  # the connection made in this thread is now idle in the pool
    errors: list[BaseException] = []

    def use_it() -> None:
        try:
            db.execute_sql("SELECT 1")
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=use_it)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert errors and "thread" in str(errors[0]).lower()


def test_instrumented_sqlite_pool_is_shared_between_threads(tmp_path: Any) -> None:
    """The instrumented SQLite pool hands one thread's connection to another without error."""
    from poolviz import InstrumentedPooledSqliteDatabase

    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "shared.db"), max_connections=1)
    with db.connection_context():
        db.execute_sql("SELECT 1")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(db.execute_sql("SELECT 1").fetchone()))
    worker.start()
    worker.join(10)
    assert results == [(1,)]
    checkouts = [e for e in db.events.snapshot() if e.kind == "checkout"]
    assert [e.conn for e in checkouts] == [1, 1] and checkouts[1].reused


THREADS, REQUESTS, POOL = 32, 100, 4


@pytest.mark.timeout(120)
def test_stress_invariants_hold(make_pool: Any, no_new_threads: None) -> None:
    """32 threads x 100 requests on a pool of 4: the log proves every invariant, counts match."""
    db = make_pool(max_connections=POOL, timeout=60)
    barrier = threading.Barrier(THREADS, timeout=30)
    # Each thread's first request holds its connection until POOL holders meet, so the pool is
    # saturated however the threads are scheduled (SELECT 1 alone is too quick to be sure of it).
    saturated = threading.Barrier(POOL, timeout=60)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for i in range(REQUESTS):
                with db.connection_context():
                    db.execute_sql("SELECT 1").fetchone()
                    if i == 0:
                        saturated.wait()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(THREADS)]
    run_threads(threads, 100)
    assert failures == []
    events = db.events.snapshot()
    assert check_invariants(events, POOL, allow_open=False) == []
    seen = [e.kind for e in events]
    assert seen.count("checkout") == THREADS * REQUESTS
    assert max(e.in_use for e in events) == POOL, "the pool was saturated"
    assert seen.count("wait") > 0 and seen.count("timeout") == 0
    stats = db.events.get_stats()
    assert stats["requests_num"] == THREADS * REQUESTS
    assert stats["requests_queued"] == seen.count("wait")
    assert stats["connections_num"] == seen.count("connect") <= POOL


@pytest.mark.timeout(60)
def test_connection_killed_on_the_server_is_discarded(make_pool: Any) -> None:
    """A pooled connection killed server-side is recorded as a broken close and replaced at checkout."""
    db = make_pool(max_connections=2)
    with db.connection_context():
        db.execute_sql("SELECT 1")
    assert kill_connections(db) == 1
    db.events.clear()
    with db.connection_context():
        assert db.execute_sql("SELECT 1").fetchone()[0] == 1
    steps = [(e.kind, e.conn, e.reason) for e in db.events.snapshot()]
    assert steps == [("close", 1, "broken"), ("connect", 2, ""), ("checkout", 2, ""), ("checkin", 2, "")]
    assert check_invariants(db.events.snapshot()) == []
