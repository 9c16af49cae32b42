"""What notebooks 01 and 06 say about plain peewee's pools, pinned without a server.

Pinned elsewhere, not repeated here: the leak watchdog reporting at the threshold with no other
traffic (tests/test_leaks.py), plain ``PooledSqliteDatabase`` failing across threads
(tests/test_backends.py), ``close_all()`` closing checked-out connections (tests/test_peewee_claims.py).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import peewee
import pytest
from playhouse.pool import PooledSqliteDatabase


def query_from_a_second_thread(db: Any) -> list[Any]:
    """Open a connection in this thread, return it to the pool, then query from another thread."""
    with db.connection_context():
        db.execute_sql("SELECT 1")
    outcome: list[Any] = []

    def other() -> None:
        try:
            with db.connection_context():
                outcome.append(db.execute_sql("SELECT 1").fetchone())
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=other, name="second-thread")
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    db.close_all()
    return outcome


def test_plain_sqlite_pool_raises_sqlite3s_programming_error_in_a_second_thread(tmp_path: Any) -> None:
    """A connection the first thread opened fails in the second: peewee.ProgrammingError with sqlite3's message."""
    outcome = query_from_a_second_thread(PooledSqliteDatabase(str(tmp_path / "plain.db"), max_connections=2))
    assert len(outcome) == 1 and isinstance(outcome[0], peewee.ProgrammingError)
    assert "can only be used in that same thread" in str(outcome[0])
    assert not isinstance(outcome[0], sqlite3.ProgrammingError)  # peewee's own class, not sqlite3's


def test_check_same_thread_false_lets_a_plain_sqlite_pool_serve_a_second_thread(tmp_path: Any) -> None:
    """With check_same_thread=False the second thread gets the first one's connection and its query runs."""
    db = PooledSqliteDatabase(str(tmp_path / "plain.db"), max_connections=1, check_same_thread=False)
    assert query_from_a_second_thread(db) == [(1,)]


@pytest.mark.parametrize("argument", ["leak_threshold"])
def test_poolviz_only_arguments_reach_the_driver_of_a_plain_peewee_pool(tmp_path: Any, argument: str) -> None:
    """leak_threshold on plain PooledSqliteDatabase goes to sqlite3.connect, which raises TypeError at connect."""
    db = PooledSqliteDatabase(str(tmp_path / "plain.db"), max_connections=2, **{argument: 1.0})
    assert argument in db.connect_params
    with pytest.raises(TypeError, match=argument):
        db.connect()


def test_plain_peewee_pool_has_no_leak_api_only_in_use_checkout_times(tmp_path: Any) -> None:
    """Plain peewee has no leaks() or reclaim_dead_threads(); _in_use holds each checkout's time, no holder."""
    db = PooledSqliteDatabase(str(tmp_path / "plain.db"), max_connections=2, check_same_thread=False)
    assert not hasattr(db, "leaks") and not hasattr(db, "reclaim_dead_threads")
    db.connect()
    (entry,) = db._in_use.values()
    assert entry.checked_out > 0 and entry.connection is db.connection()
    db.close()
    db.close_all()
