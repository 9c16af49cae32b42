"""What notebooks 07-09 say about peewee's pools, pinned on the real MariaDB and PostgreSQL servers."""

from __future__ import annotations

import threading
import time
from typing import Any

import peewee
import pytest
from playhouse.db_url import connect as plain_connect

from poolviz.backends import HOLD_SQL, SESSION_SQL, backend_of
from poolviz.servers.faults import kill_connections, running_statement
from poolviz.testing import kind_reasons, kinds, wait_until

SERVERS = ["mysql", "postgresql", "psycopg3"]
# What each driver says when the server ends a connection under a caller (notebook 07 quotes these).
LOST_CONNECTION_WORDS = (
    "Lost connection",  # PyMySQL 2013
    "gone away",  # PyMySQL 2006
    "server closed the connection unexpectedly",  # psycopg2
    "terminating connection due to administrator command",  # psycopg 3
)

servers_only = pytest.mark.parametrize("backend", SERVERS)


def server_id(db: Any) -> int:
    """The server's id for the connection this thread holds (MariaDB thread id, PostgreSQL pid)."""
    return int(db.execute_sql(SESSION_SQL[backend_of(db)]).fetchone()[0])


@servers_only
@pytest.mark.timeout(60)
def test_connection_killed_while_idle_is_discarded_at_checkout_not_handed_out(make_pool: Any) -> None:
    """A connection killed server-side while idle is dropped at the next checkout and a new one is opened."""
    db = make_pool(max_connections=2)
    with db.connection_context():
        first = server_id(db)
        dead = db.connection()
    kill_connections(db)
    db.events.clear()
    with db.connection_context():
        assert db.connection() is not dead
        assert server_id(db) != first
    assert kind_reasons(db) == [("close", "broken"), ("connect", ""), ("checkout", ""), ("checkin", "")]


@servers_only
@pytest.mark.timeout(60)
def test_peewee_drops_a_dead_idle_connection_without_closing_it(make_pool: Any, monkeypatch: Any) -> None:
    """peewee never calls _close_raw on a connection its liveness check found dead; poolviz still records it."""
    db = make_pool(max_connections=2)
    with db.connection_context():
        dead = db.connection()
    closed: list[Any] = []
    real_close_raw = db._close_raw
    monkeypatch.setattr(db, "_close_raw", lambda conn: (closed.append(conn), real_close_raw(conn)))
    kill_connections(db)
    with db.connection_context():
        db.execute_sql("SELECT 1")
    assert dead not in closed
    assert ("close", "broken") in kind_reasons(db)


@servers_only
@pytest.mark.timeout(60)
def test_every_reused_checkout_pays_one_liveness_check(make_pool: Any, monkeypatch: Any) -> None:
    """peewee checks an idle connection (ping on MySQL, SELECT 1 on PostgreSQL) each time it hands it out again."""
    db = make_pool(max_connections=1)
    calls: list[Any] = []
    real_is_closed = db._is_closed
    monkeypatch.setattr(db, "_is_closed", lambda conn: calls.append(conn) or real_is_closed(conn))
    for _ in range(5):
        with db.connection_context():
            pass
    reused = [e for e in db.events.snapshot() if e.kind == "checkout" and e.reused]
    assert len(reused) == 4 and len(calls) == 4


@servers_only
@pytest.mark.timeout(60)
def test_caller_holding_a_killed_connection_gets_operational_error(make_pool: Any) -> None:
    """Killing a checked-out connection makes its holder's next query raise peewee.OperationalError."""
    db = make_pool(max_connections=2)
    with pytest.raises(peewee.OperationalError) as caught, db.connection_context():
        kill_connections(db, [db.connection()])
        db.execute_sql("SELECT 1")
    assert any(words in str(caught.value) for words in LOST_CONNECTION_WORDS), str(caught.value)


@servers_only
@pytest.mark.timeout(60)
def test_query_running_when_its_connection_is_killed_fails_fast_and_the_pool_recovers(
    make_pool: Any, no_new_threads: None
) -> None:
    """A 10-second server-side query killed after it starts raises at once; later callers get new connections."""
    db = make_pool(max_connections=2)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def slow_request() -> None:
        began = time.perf_counter()
        try:
            with db.connection_context():
                holder["conn"], holder["id"] = db.connection(), server_id(db)
                started.set()
                db.execute_sql(HOLD_SQL[backend_of(db)], (10,))
        except peewee.OperationalError as exc:
            holder["error"] = exc
        holder["elapsed"] = time.perf_counter() - began

    victim = threading.Thread(target=slow_request, name="victim")
    victim.start()
    assert started.wait(10)
    observer = make_pool(max_connections=1)
    wait_until(lambda: running_statement(observer, holder["id"]), what="the server running the victim's query")
    kill_connections(db, [holder["conn"]])
    victim.join(10)
    assert not victim.is_alive()
    assert "error" in holder and holder["elapsed"] < 5
    assert any(words in str(holder["error"]) for words in LOST_CONNECTION_WORDS), str(holder["error"])
    assert ("close", "not_reusable") in kind_reasons(db), "the holder's check-in closed the dead connection"
    ids = set()
    for _ in range(3):
        with db.connection_context():
            ids.add(server_id(db))
    assert holder["id"] not in ids and len(ids) == 1


@servers_only
@pytest.mark.timeout(60)
def test_unpooled_database_opens_a_server_connection_per_request(backend: str, request: Any) -> None:
    """Plain MySQLDatabase/PostgresqlDatabase with connect/close per request gets a new server id every time."""
    url = request.getfixturevalue("mysql_url" if backend == "mysql" else "pg_url")
    kwargs = {"prefer_psycopg3": True} if backend == "psycopg3" else {}
    db = plain_connect(url.replace("+pool", "", 1), **kwargs)
    ids = []
    for _ in range(5):
        db.connect()
        try:
            ids.append(server_id(db))
        finally:
            db.close()
    assert len(set(ids)) == 5


@servers_only
@pytest.mark.timeout(60)
def test_pool_serves_sequential_requests_from_one_server_connection(make_pool: Any) -> None:
    """Requests one after another through connection_context() reuse a single server connection."""
    db = make_pool(max_connections=4)
    ids = set()
    for _ in range(5):
        with db.connection_context():
            ids.add(server_id(db))
    assert len(ids) == 1
    assert kinds(db).count("connect") == 1


@servers_only
@pytest.mark.timeout(60)
def test_close_in_an_after_request_hook_returns_the_connection_to_the_pool(make_pool: Any) -> None:
    """db.connect() before and db.close() after each request checks out and back in, never closing the driver."""
    db = make_pool(max_connections=4)
    ids = set()
    for _ in range(3):
        db.connect()
        try:
            ids.add(server_id(db))
        finally:
            db.close()
    assert len(ids) == 1
    assert kinds(db) == ["connect"] + ["checkout", "checkin"] * 3


@servers_only
@pytest.mark.timeout(60)
def test_a_newcomer_can_take_a_released_connection_ahead_of_a_waiting_caller(
    make_pool: Any, no_new_threads: None
) -> None:
    """peewee's wakeups are not first-come first-served: the releasing thread can check out again at once."""
    db = make_pool(max_connections=1, timeout=10)
    barged = False
    for _ in range(10):
        db.connect()
        waiting = threading.Event()
        unsub = db.events.subscribe(lambda e, w=waiting: w.set() if e.kind == "wait" else None)

        def wait_for_it() -> None:
            with db.connection_context():
                pass

        waiter = threading.Thread(target=wait_for_it, name="waiter")
        waiter.start()
        assert waiting.wait(5)
        unsub()
        db.close()
        db.connect()  # straight back, while "waiter" is still waiting
        newcomer = db.events.last
        db.close()
        waiter.join(10)
        assert not waiter.is_alive()
        if newcomer is not None and newcomer.kind == "checkout" and newcomer.wait_s == 0 and newcomer.waiting == 1:
            barged = True
            break
    assert barged
