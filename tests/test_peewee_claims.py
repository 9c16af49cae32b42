"""What peewee's own pool does, as the notebooks teach it: a peewee upgrade that changes any of it fails here.

These tests use peewee's plain classes (no poolviz instrumentation): the pool over fake
connections from ``poolviz.testing`` with a fake clock where only pool logic is involved, SQLite
where peewee's connection handling is, and the real MariaDB server where the driver is.
"""

from __future__ import annotations

import gc
import threading
import time
import types
import uuid
from typing import Any
from urllib.parse import urlparse

import playhouse.pool
import pytest
from peewee import MySQLDatabase, OperationalError
from playhouse.db_url import parseresult_to_dict
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase, PooledMySQLDatabase

from poolviz.servers import faults
from poolviz.testing import FakeClock, FakeConnection, FakePooledDatabase, plain_sqlite_pool


def server_params(url: str) -> tuple[str, dict[str, Any]]:
    """The database name and the driver's keyword arguments (host, port, user, password) of a URL."""
    params = parseresult_to_dict(urlparse(url))
    return params.pop("database"), params


def connect_in_thread(db: PooledDatabase) -> tuple[threading.Thread, list[Any]]:
    """Start a thread that asks ``db`` for a connection; the list gets the connection or the exception."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            db.connect()
            outcome.append(db.connection())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="asker")
    thread.start()
    return thread, outcome


# stale_timeout


def test_stale_timeout_is_age_since_open_not_idle_time(clock: FakeClock) -> None:
    """A connection used every second is still retired once it is older than stale_timeout."""
    db = FakePooledDatabase(max_connections=1, stale_timeout=10)
    first = db._connect()
    db._close(first)
    for _ in range(10):
        clock.now += 1
        conn = db._connect()
        assert conn is first
        db._close(conn)
    clock.now += 1
    assert db._connect() is not first
    assert first.closed


def test_stale_timeout_is_checked_lazily_at_checkout(clock: FakeClock) -> None:
    """An idle connection past stale_timeout stays open in the pool until the next checkout closes it."""
    db = FakePooledDatabase(max_connections=1, stale_timeout=10)
    conn = db._connect()
    db._close(conn)
    clock.now += 100
    assert not conn.closed and [c for _ts, _n, c in db._connections] == [conn]
    assert db._connect() is not conn
    assert conn.closed and db._connections == []


def test_stale_timeout_is_checked_at_checkin(clock: FakeClock) -> None:
    """A connection that ages past stale_timeout while checked out is closed at check-in, not pooled."""
    db = FakePooledDatabase(max_connections=1, stale_timeout=10)
    conn = db._connect()
    clock.now += 11
    db._close(conn)
    assert conn.closed and db._connections == [] and db._in_use == {}


def test_liveness_is_checked_before_age(clock: FakeClock) -> None:
    """A dead connection that is also stale is discarded without a close call, not closed as stale."""
    db = FakePooledDatabase(max_connections=1, stale_timeout=10)
    conn = db._connect()
    db._close(conn)
    conn.break_()
    clock.now += 100
    assert db._connect() is not conn
    assert conn.close_calls == 0


# timeout


class ClockedWaits:
    """Stands in for the pool's condition and its monotonic clock: each wait moves the clock on by its timeout.

    So a test sees exactly how long peewee would wait, in which steps, without waiting.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.now += timeout
        return False

    def __enter__(self) -> ClockedWaits:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def clocked(db: PooledDatabase, monkeypatch: pytest.MonkeyPatch) -> ClockedWaits:
    """Make ``db`` wait on a :class:`ClockedWaits` (peewee's wall clock stays real)."""
    waits = ClockedWaits()
    monkeypatch.setattr(playhouse.pool, "time", types.SimpleNamespace(time=time.time, monotonic=waits.monotonic))
    monkeypatch.setattr(db, "_pool_available", waits)
    return waits


def test_timeout_none_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """timeout=None: a caller finding the pool full gets MaxConnectionsExceeded without waiting."""
    db = FakePooledDatabase(max_connections=1, timeout=None)
    waits = clocked(db, monkeypatch)
    db._connect()
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()
    assert waits.waits == []


def test_timeout_n_waits_n_seconds_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """timeout=N: a caller finding the pool full waits N seconds in all (woken at least once a second), then fails."""
    db = FakePooledDatabase(max_connections=1, timeout=2.5)
    waits = clocked(db, monkeypatch)
    db._connect()
    with pytest.raises(MaxConnectionsExceeded, match="timed out"):
        db.connect()
    assert waits.waits == [1.0, 1.0, 0.5]


def test_timeout_zero_means_wait_forever() -> None:
    """timeout=0 is read as no limit: the caller waits until a connection comes back."""
    db = FakePooledDatabase(max_connections=1, timeout=0)
    assert db._wait_timeout == float("inf")
    held = db._connect()
    waiting = threading.Event()
    condition = db._pool_available
    real_wait = condition.wait

    def wait(timeout: float | None = None) -> bool:
        waiting.set()
        return real_wait(timeout)

    condition.wait = wait  # type: ignore[method-assign]
    asker, outcome = connect_in_thread(db)
    assert waiting.wait(5), "the caller never waited"
    assert asker.is_alive() and outcome == []
    db._close(held)
    asker.join(5)
    assert not asker.is_alive()
    assert outcome == [held]


# Which connection a checkout gets


def test_oldest_idle_connection_is_handed_out_first(clock: FakeClock) -> None:
    """Idle connections come back oldest-opened first, whatever order they were returned in."""
    db = FakePooledDatabase(max_connections=3)
    opened: list[FakeConnection] = []
    for _ in range(3):
        opened.append(db._connect())
        clock.now += 1
    oldest, middle, newest = opened
    for conn in (newest, oldest, middle):
        db._close(conn)
    assert [db._connect() for _ in range(3)] == [oldest, middle, newest]


# Connections, threads and close()


def test_autoconnect_holds_the_connection_until_close(tmp_path: Any) -> None:
    """The first query checks a connection out and the thread keeps it, across queries, until db.close()."""
    db = plain_sqlite_pool(tmp_path / "claims.db", max_connections=2)
    db.execute_sql("SELECT 1")
    conn = db.connection()
    db.execute_sql("SELECT 2")
    assert db.connection() is conn
    assert list(db._in_use) == [id(conn)] and db._connections == []
    db.close()
    assert db._in_use == {} and [c for _ts, _n, c in db._connections] == [conn]
    db.close_all()


def test_connection_context_and_with_db_check_out_only_for_the_block(tmp_path: Any) -> None:
    """connection_context() and `with db:` check a connection out for the block and back in after it."""
    db = plain_sqlite_pool(tmp_path / "claims.db", max_connections=2)
    for block in (db.connection_context(), db):
        with block:
            db.execute_sql("SELECT 1")
            assert len(db._in_use) == 1
        assert db._in_use == {} and len(db._connections) == 1 and db.is_closed()
    db.close_all()


def test_close_returns_the_connection_to_the_pool_still_open() -> None:
    """db.close() on a pool keeps the driver connection open for reuse; manual_close() really closes it."""
    db = FakePooledDatabase(max_connections=2)
    db.connect()
    conn = db.connection()
    db.close()
    assert not conn.closed and [c for _ts, _n, c in db._connections] == [conn]
    db.connect()
    assert db.connection() is conn
    db.manual_close()
    assert conn.closed and db._connections == [] and db._in_use == {}


def test_thread_that_dies_holding_a_connection_keeps_its_slot(tmp_path: Any) -> None:
    """A thread that exits without closing leaves its connection checked out: peewee never takes it back."""
    db = plain_sqlite_pool(tmp_path / "claims.db", max_connections=1)
    worker = threading.Thread(target=lambda: db.execute_sql("SELECT 1"), name="forgetful")
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    gc.collect()
    assert len(db._in_use) == 1 and db._connections == []
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()
    db.close_all()


def test_open_transaction_is_rolled_back_at_checkin(tmp_path: Any) -> None:
    """A transaction left open when the connection is returned is rolled back, not committed."""
    db = plain_sqlite_pool(tmp_path / "claims.db", max_connections=1)
    db.execute_sql("CREATE TABLE t (x INTEGER)")
    db.execute_sql("BEGIN")
    db.execute_sql("INSERT INTO t VALUES (1)")
    conn = db.connection()
    assert conn.in_transaction and not db.in_transaction(), "peewee does not know about the raw BEGIN"
    db.close()
    assert not conn.in_transaction
    with db.connection_context():
        assert db.connection() is conn
        assert db.execute_sql("SELECT COUNT(*) FROM t").fetchone() == (0,)
    db.close_all()


# Close methods


def test_close_idle_closes_only_idle_connections() -> None:
    """close_idle() closes the connections in the pool and leaves checked-out ones alone."""
    db = FakePooledDatabase(max_connections=3)
    idle, busy = db._connect(), db._connect()
    db._close(idle)
    db.close_idle()
    assert idle.closed and not busy.closed and list(db._in_use) == [id(busy)]


def test_close_stale_closes_connections_checked_out_too_long_even_in_use(clock: FakeClock) -> None:
    """close_stale(age) closes connections checked out longer than age, in use or not; age since opening is ignored."""
    db = FakePooledDatabase(max_connections=2)
    old = db._connect()
    db._close(old)
    clock.now += 1000
    assert db._connect() is old
    assert db.close_stale(age=600) == 0, "opened long ago, but checked out just now"
    clock.now += 700
    assert db.close_stale(age=600) == 1
    assert old.closed and db._in_use == {}


def test_close_all_closes_idle_and_in_use_connections() -> None:
    """close_all() closes every connection, including ones other code has checked out."""
    db = FakePooledDatabase(max_connections=2)
    idle, busy = db._connect(), db._connect()
    db._close(idle)
    db.close_all()
    assert idle.closed and busy.closed and db._in_use == {} and db._connections == []


# The real driver (MariaDB)


def test_plain_mysql_database_passes_max_connections_to_the_driver(mysql_url: str) -> None:
    """MySQLDatabase(..., max_connections=10) does not pool: PyMySQL gets max_connections and raises TypeError."""
    database, params = server_params(mysql_url)
    db = MySQLDatabase(database, max_connections=10, **params)
    assert not isinstance(db, PooledDatabase)
    assert db.connect_params["max_connections"] == 10
    with pytest.raises(TypeError, match="max_connections"):
        db.connect()


def test_open_transaction_is_rolled_back_at_checkin_on_mariadb(mysql_url: str) -> None:
    """On MariaDB too, an uncommitted insert is rolled back when the connection is returned to the pool."""
    database, params = server_params(mysql_url)
    db = PooledMySQLDatabase(database, max_connections=1, **params)
    table = f"pv_claims_{uuid.uuid4().hex[:8]}"
    db.execute_sql(f"CREATE TABLE {table} (x INT) ENGINE=InnoDB")
    try:
        db.execute_sql("BEGIN")
        db.execute_sql(f"INSERT INTO {table} VALUES (1)")
        conn = db.connection()
        db.close()
        with db.connection_context():
            assert db.connection() is conn
            assert db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    finally:
        with db.connection_context():
            db.execute_sql(f"DROP TABLE IF EXISTS {table}")
        db.close_all()


def test_ping_at_checkout_replaces_a_connection_the_server_dropped(mysql_url: str) -> None:
    """peewee 4's MySQL pool pings an idle connection at checkout and hands out a new one if it is dead."""
    database, params = server_params(mysql_url)
    db = PooledMySQLDatabase(database, max_connections=1, **params)
    with db.connection_context():
        dead = db.connection()
    assert faults.kill_connections(db) == 1
    with db.connection_context():
        assert db.connection() is not dead
        assert db.execute_sql("SELECT 1").fetchone() == (1,)
    db.close_all()


def test_connection_dropped_while_checked_out_fails_and_is_not_pooled_again(mysql_url: str) -> None:
    """A held connection the server dropped fails its next query and is closed, not pooled, at check-in."""
    database, params = server_params(mysql_url)
    db = PooledMySQLDatabase(database, max_connections=1, **params)
    db.connect()
    conn = db.connection()
    faults.kill_connections(db, [conn])
    with pytest.raises(OperationalError):
        db.execute_sql("SELECT 1")
    db.close()
    assert db._in_use == {} and db._connections == []
    db.close_all()
