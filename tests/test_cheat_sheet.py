"""Notebook 12's cheat-sheet claims that no other test pins, on peewee's plain classes.

Pinned elsewhere and not repeated here: ``timeout`` None / N / 0 and ``stale_timeout``
(test_peewee_claims.py), ``dispose()`` forgetting without close events (test_pool_events.py),
``close_all()``/``dispose()`` in a forked child (test_fork_servers.py), the asyncio pool's
``OperationalError`` (test_aio_pools.py, test_aio_claims_servers.py), and the servers' 1226 and
53300 refusals coming at once as ``peewee.OperationalError`` (test_server_view_servers.py).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import peewee
import pytest
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase, PooledSqliteDatabase
from playhouse.pwasyncio import AsyncDatabaseMixin

from poolviz.servers import roles
from poolviz.testing import plain_sqlite_pool


class Holder:
    """A thread holding a connection of ``db`` until ``release()``, which returns its next query's outcome."""

    def __init__(self, db: PooledSqliteDatabase) -> None:
        self.db = db
        self.outcome: Exception | str | None = None
        self.ready, self.go = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.run, name="holder")
        self.thread.start()
        assert self.ready.wait(10), "the holder got no connection"

    def run(self) -> None:
        self.db.connect()
        self.ready.set()
        self.go.wait(10)
        try:
            self.db.execute_sql("SELECT 1")
            self.outcome = "ok"
        except Exception as exc:
            self.outcome = exc
        self.db.close()

    def release(self) -> Exception | str | None:
        self.go.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.outcome


def test_defaults_are_no_wait_no_max_age_and_twenty_connections() -> None:
    """peewee 4.5's PooledDatabase defaults: max_connections=20, stale_timeout=None, timeout=None (fail at once)."""
    defaults = {k: p.default for k, p in inspect.signature(PooledDatabase.__init__).parameters.items()}
    assert (defaults["max_connections"], defaults["stale_timeout"], defaults["timeout"]) == (20, None, None)


def test_asyncio_pool_defaults_are_ten_connections_and_a_ten_second_acquire_timeout(tmp_path: Any) -> None:
    """The asyncio databases default to pool_size=10, pool_min_size=1, acquire_timeout=10 s."""
    from playhouse.pwasyncio import AsyncSqliteDatabase

    db = AsyncSqliteDatabase(str(tmp_path / "aio.db"))
    assert isinstance(db, AsyncDatabaseMixin)
    assert (db._pool_size, db._pool_min_size, db._acquire_timeout) == (10, 1, 10)


def test_max_connections_exceeded_is_a_value_error_not_an_operational_error(tmp_path: Any) -> None:
    """A full threaded pool raises MaxConnectionsExceeded, which `except peewee.OperationalError` does not catch."""
    db = plain_sqlite_pool(tmp_path / "cheat.db", max_connections=1)
    holder = Holder(db)
    try:
        with pytest.raises(MaxConnectionsExceeded) as info:
            db.connect()
        assert not isinstance(info.value, peewee.OperationalError)
        assert isinstance(info.value, ValueError)
        assert not isinstance(info.value, peewee.PeeweeException)
    finally:
        holder.release()
        db.close_all()


def _setup(db: PooledSqliteDatabase) -> Holder:
    holder = Holder(db)
    with db.connection_context():  # a second connection, left idle
        pass
    assert (len(db._in_use), len(db._connections)) == (1, 1)
    return holder


def _counts(db: PooledSqliteDatabase) -> tuple[int, int]:
    return len(db._in_use), len(db._connections)


@pytest.mark.parametrize(
    ("method", "counts", "holder_ok"),
    [
        (lambda db: db.close_idle(), (1, 0), True),
        (lambda db: db.close_stale(age=-1), (0, 1), False),
        (lambda db: db.close_all(), (0, 0), False),
        (lambda db: db.dispose(), (0, 0), True),
    ],
    ids=["close_idle", "close_stale", "close_all", "dispose"],
)
def test_what_each_closing_method_does_to_a_holders_next_query(
    tmp_path: Any, method: Callable[[Any], Any], counts: tuple[int, int], holder_ok: bool
) -> None:
    """close_idle and dispose leave another thread's connection working; close_stale and close_all break it."""
    db = plain_sqlite_pool(tmp_path / "cheat.db", max_connections=4)
    holder = _setup(db)
    method(db)
    assert _counts(db) == counts
    outcome = holder.release()
    if holder_ok:
        assert outcome == "ok"
    else:
        assert isinstance(outcome, peewee.ProgrammingError) and "closed database" in str(outcome)
    db.close_all()


def test_dispose_leaves_the_forgotten_connections_open(tmp_path: Any) -> None:
    """dispose() closes nothing: the idle connection it forgot still answers a query."""
    db = plain_sqlite_pool(tmp_path / "cheat.db", max_connections=2)
    with db.connection_context():
        idle = db.connection()
    db.dispose()
    assert _counts(db) == (0, 0)
    assert idle.execute("SELECT 1").fetchone() == (1,)
    idle.close()


def test_close_returns_the_callers_connection_and_manual_close_closes_it(tmp_path: Any) -> None:
    """db.close() puts the caller's connection back idle; manual_close() closes it, freeing its slot."""
    db = plain_sqlite_pool(tmp_path / "cheat.db", max_connections=4)
    holder = _setup(db)
    db.connect()
    db.close()
    assert _counts(db) == (1, 1)
    db.connect()
    mine = db.connection()
    db.manual_close()
    assert _counts(db) == (1, 0)
    with pytest.raises(Exception, match="closed database"):
        mine.execute("SELECT 1")
    assert holder.release() == "ok"
    db.close_all()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("(1040, 'Too many connections')", "1040"),
        (
            "(1226, \"User 'poolviz_cheat' has exceeded the 'max_user_connections' resource (current value: 1)\")",
            "1226",
        ),
        ('FATAL:  too many connections for role "poolviz_cheat"', "53300"),
        ("FATAL:  sorry, too many clients already", "53300"),
    ],
)
def test_limit_codes_are_read_from_the_servers_messages(message: str, code: str) -> None:
    """roles.limit_error names the code of each refusal the cheat sheet lists (1040 from its text: not provoked)."""
    error = roles.limit_error(message)
    assert error is not None and error.code == code
