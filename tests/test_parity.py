"""Instrumenting a pool changes none of peewee's behaviour: same state, same errors, same order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playhouse.pool import PooledSqliteDatabase

from poolviz import InstrumentedPooledSqliteDatabase, MaxConnectionsExceeded, instrument
from poolviz.testing import FakePooledDatabase, InstrumentedFakePooledDatabase, check_invariants


def script(db: Any) -> list[Any]:
    """A scripted run through every pool operation; returns what a caller could observe."""
    seen: list[Any] = []
    handed: dict[int, int] = {}

    def label(conn: Any) -> int:
        return handed.setdefault(id(conn), len(handed) + 1)

    def attempt(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except Exception as exc:
            seen.append(("raised", type(exc).__name__))
            return None

    a = db._connect()
    b = db._connect()
    seen.append(("got", label(a), label(b)))
    attempt(db._connect)  # the pool of 2 is full
    db._close(b)
    db._close(a)
    c = db._connect()
    seen.append(("reuse order", label(c)))
    db._close(c)
    db._close(c)  # closing twice is ignored
    seen.append(("state", len(db._in_use), len(db._connections)))
    d = db._connect()
    seen.append(("stale closed", db.close_stale(age=0)))
    db.close_idle()
    seen.append(("after close_idle", len(db._in_use), len(db._connections)))
    db.connect()
    db.manual_close()
    db._close(d)
    e = db._connect()
    seen.append(("after manual", label(e), len(db._in_use), len(db._connections)))
    db._close(e)
    db.close_all()
    seen.append(("after close_all", len(db._in_use), len(db._connections), db.is_closed()))
    db.connect()
    db.dispose()
    seen.append(("after dispose", len(db._in_use), len(db._connections), db.is_closed()))
    return seen


@pytest.mark.parametrize(
    ("plain", "instrumented"),
    [
        (
            lambda tmp: FakePooledDatabase(max_connections=2),
            lambda tmp: InstrumentedFakePooledDatabase(max_connections=2),
        ),
        (
            lambda tmp: PooledSqliteDatabase(str(tmp / "a.db"), max_connections=2, check_same_thread=False),
            lambda tmp: InstrumentedPooledSqliteDatabase(str(tmp / "b.db"), max_connections=2),
        ),
        (
            lambda tmp: PooledSqliteDatabase(str(tmp / "a.db"), max_connections=2, check_same_thread=False),
            lambda tmp: instrument(PooledSqliteDatabase(str(tmp / "b.db"), max_connections=2, check_same_thread=False)),
        ),
    ],
    ids=["fake", "sqlite", "sqlite-instrument()"],
)
def test_same_script_same_observations(plain: Any, instrumented: Any, tmp_path: Any) -> None:
    """The scripted scenario observes the same on a plain peewee pool and an instrumented one."""
    db = instrumented(tmp_path)
    assert script(plain(tmp_path)) == script(db)
    assert check_invariants(db.events, 2) == []


def test_same_exception_class_for_a_full_pool() -> None:
    """A full pool raises peewee's own MaxConnectionsExceeded, with peewee's message."""
    plain, instrumented = (
        FakePooledDatabase(max_connections=1),
        InstrumentedFakePooledDatabase(max_connections=1),
    )
    messages = []
    for db in (plain, instrumented):
        db._connect()
        with pytest.raises(MaxConnectionsExceeded) as info:
            db._connect()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_rollback_on_checkin_is_peewee_s(tmp_path: Any) -> None:
    """A transaction left open is rolled back at check-in, on plain and instrumented pools alike."""
    for name, db in (
        ("plain", PooledSqliteDatabase(str(tmp_path / "p.db"), max_connections=1, check_same_thread=False)),
        ("instrumented", InstrumentedPooledSqliteDatabase(str(tmp_path / "i.db"), max_connections=1)),
    ):
        with db.connection_context():
            db.execute_sql("CREATE TABLE t (x INTEGER)")
        conn = db._connect()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1)")
        db._close(conn)
        assert not conn.in_transaction, name
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (0,), name
        db._close(db._connect())
