"""SQLAlchemy's pools, instrumented: the events and counts poolviz records, checked against SQLAlchemy's own.

Every SQLAlchemy pool class on SQLite (always there), QueuePool on PostgreSQL
and MariaDB with threads, AsyncAdaptedQueuePool on PostgreSQL with tasks.
Counts are compared with ``checkedout()`` / ``checkedin()`` after every step
of a scripted run: poolviz's ``idle`` counts open connections, so a record
SQLAlchemy keeps without one (invalidated, not reopened yet) is left out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AssertionPool, NullPool, QueuePool, SingletonThreadPool, StaticPool

import poolviz
from poolviz.testing import kinds, wait_until, wait_until_async
from poolviz.urls import sqlalchemy_url


def counts_agree(engine: Engine) -> None:
    """The last event's counts are SQLAlchemy's own (for a pool that is not mid-operation)."""
    pool: Any = engine.pool
    last = poolviz.events_of(engine).last
    assert last is not None
    idle_records = list(pool._pool.queue)
    without_connection = sum(1 for rec in idle_records if rec.dbapi_connection is None)
    assert (last.in_use, last.idle, last.waiting) == (pool.checkedout(), pool.checkedin() - without_connection, 0)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pool.db'}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def queue_engine(request: pytest.FixtureRequest, sqlite_file: str) -> Iterator[Callable[..., Engine]]:
    """Make an instrumented QueuePool engine on each backend; dispose of them after the test."""
    if request.param == "sqlite":
        url = sqlite_file
    else:
        url = sqlalchemy_url(request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url"))
    made: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("poolclass", QueuePool)
        engine = create_engine(url, **kwargs)
        made.append(engine)
        return poolviz.instrument(engine)

    yield make
    for engine in made:
        engine.dispose()


def test_counts_follow_sqlalchemys_after_every_step(queue_engine: Callable[..., Engine]) -> None:
    engine = queue_engine(pool_size=2, max_overflow=1, pool_timeout=0.05)
    first = engine.connect()
    counts_agree(engine)
    second = engine.connect()
    counts_agree(engine)
    overflow = engine.connect()
    overflow.execute(text("SELECT 1"))
    counts_agree(engine)
    with pytest.raises(sa_exc.TimeoutError, match="QueuePool limit of size 2 overflow 1 reached"):
        engine.connect()
    counts_agree(engine)
    for conn in (overflow, first):
        conn.close()
        counts_agree(engine)
    again = engine.connect()
    again.invalidate()
    counts_agree(engine)
    again.close()
    counts_agree(engine)
    second.close()  # the queue is full again (with the invalidated record): this one goes
    counts_agree(engine)
    log = poolviz.events_of(engine)
    assert kinds(log) == [
        "connect", "checkout", "connect", "checkout", "connect", "checkout", "wait", "timeout",
        "checkin", "checkin", "checkout", "close", "checkin", "close",
    ]  # fmt: skip
    timeout = next(e for e in log if e.kind == "timeout")
    assert timeout.wait_s >= 0.05
    assert "QueuePool limit" in timeout.message
    assert [e.reason for e in log if e.kind == "close"] == ["invalidated", "overflow"]


def test_an_overflow_connection_is_closed_on_return_with_reason_overflow(sqlite_file: str) -> None:
    engine = poolviz.instrument(create_engine(sqlite_file, poolclass=QueuePool, pool_size=1, max_overflow=1))
    a, b = engine.connect(), engine.connect()
    a.close()
    b.close()  # the pool keeps pool_size=1 connection: the second goes
    log = poolviz.events_of(engine)
    close = log.last
    assert close is not None and (close.kind, close.reason) == ("close", "overflow")
    assert (close.in_use, close.idle) == (0, 1)
    counts_agree(engine)
    engine.dispose()


def test_recycle_detach_and_dispose_each_say_why(sqlite_file: str) -> None:
    engine = poolviz.instrument(create_engine(sqlite_file, poolclass=QueuePool, pool_size=2, pool_recycle=3600))
    log = poolviz.events_of(engine)
    engine.connect().close()
    engine.pool._recycle = 0  # type: ignore[attr-defined]  # every connection is now past its age
    engine.connect().close()
    assert [e.reason for e in log if e.kind == "close"] == ["stale"]
    engine.pool._recycle = -1  # type: ignore[attr-defined]
    held = engine.connect()
    held.connection.detach()
    held.close()
    engine.connect().close()
    engine.dispose()
    assert [e.reason for e in log if e.kind == "close"] == ["stale", "detached", "all"]
    assert (log.last.in_use, log.last.idle) == (0, 0)  # type: ignore[union-attr]


def test_threads_that_wait_are_seen_waiting_then_served(queue_engine: Callable[..., Engine]) -> None:
    engine = queue_engine(pool_size=2, max_overflow=0, pool_timeout=30)
    log = poolviz.events_of(engine)
    holders_in = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with engine.connect():
            holders_in.wait()
            release.wait(30)

    def ask() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    holders = [threading.Thread(target=hold, name=f"holder-{i}") for i in range(2)]
    askers = [threading.Thread(target=ask, name=f"asker-{i}") for i in range(4)]
    for t in holders:
        t.start()
    holders_in.wait()
    for t in askers:
        t.start()
    wait_until(lambda: log.last is not None and log.last.waiting == 4, timeout=10, what="four askers waiting")
    release.set()
    for t in holders + askers:
        t.join(10)
    waits = [e for e in log if e.kind == "wait"]
    assert sorted(e.thread for e in waits) == [f"asker-{i}" for i in range(4)]
    served = {e.thread: e for e in log if e.kind == "checkout" and e.thread.startswith("asker")}
    assert set(served) == {f"asker-{i}" for i in range(4)} and all(e.wait_s > 0 for e in served.values())
    counts_agree(engine)
    assert (log.last.in_use, log.last.idle, log.last.waiting) == (0, 2, 0)  # type: ignore[union-attr]


@pytest.mark.parametrize("poolclass", [NullPool, StaticPool, SingletonThreadPool, AssertionPool])
def test_every_other_pool_class_records_balanced_events(poolclass: type, sqlite_file: str) -> None:
    engine = poolviz.instrument(create_engine(sqlite_file, poolclass=poolclass))
    log = poolviz.events_of(engine)
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    engine.dispose()
    checkouts = [e for e in log if e.kind == "checkout"]
    assert len(checkouts) == 3 and len([e for e in log if e.kind == "checkin"]) == 3
    assert log.last is not None and log.last.in_use == 0
    assert all(e.reason for e in log if e.kind == "close")
    if poolclass is NullPool:
        assert [e.reason for e in log if e.kind == "close"] == ["overflow"] * 3  # nothing is kept
        assert not any(e.reused for e in checkouts)
    else:
        assert [e.reused for e in checkouts] == [False, True, True]


def test_a_pool_built_and_used_before_instrument_is_adopted(sqlite_file: str) -> None:
    engine = create_engine(sqlite_file, poolclass=QueuePool, pool_size=3)
    engine.connect().close()
    out = engine.connect()
    out2 = engine.connect()
    assert poolviz.instrument(engine) is engine
    assert poolviz.instrument(engine) is engine  # twice is harmless
    log = poolviz.events_of(engine)
    assert len(log) == 0
    out.close()
    counts_agree(engine)
    out2.close()
    counts_agree(engine)
    assert kinds(log) == ["checkin", "checkin"]
    engine.dispose()


def test_the_applications_own_listeners_see_what_they_saw_before(sqlite_file: str) -> None:
    seen: dict[str, list[str]] = {}

    def run(instrumented: bool) -> list[str]:
        engine = create_engine(sqlite_file, poolclass=QueuePool, pool_size=1, max_overflow=1)
        calls: list[str] = []
        for name in ("connect", "checkout", "checkin", "close", "invalidate"):
            event.listen(engine.pool, name, lambda *a, _n=name: calls.append(_n))
        if instrumented:
            poolviz.instrument(engine)
        a, b = engine.connect(), engine.connect()
        b.invalidate()
        a.close()
        b.close()
        engine.dispose()
        return calls

    seen["plain"], seen["instrumented"] = run(False), run(True)
    assert seen["plain"] == seen["instrumented"]


def test_after_engine_dispose_events_of_says_the_pool_was_replaced(sqlite_file: str) -> None:
    engine = poolviz.instrument(create_engine(sqlite_file, poolclass=QueuePool))
    old = engine.pool
    engine.connect().close()
    engine.dispose()
    with pytest.raises(ValueError, match=r"pool was replaced .* 4 events are kept"):
        poolviz.events_of(engine)
    assert kinds(poolviz.events_of(old)) == ["connect", "checkout", "checkin", "close"]
    engine.connect().close()  # the new pool is a plain one: nothing lands in the old log
    assert len(poolviz.events_of(old)) == 4
    poolviz.instrument(engine)
    engine.connect().close()
    assert kinds(poolviz.events_of(engine)) == ["checkout", "checkin"]
    engine.dispose()


def test_bad_input_names_what_is_accepted(sqlite_file: str) -> None:
    with pytest.raises(TypeError, match="SQLAlchemy Engine, AsyncEngine or Pool"):
        poolviz.instrument(object())
    with pytest.raises(TypeError, match="events_of"):
        poolviz.events_of(42)
    engine = create_engine(sqlite_file)
    with pytest.raises(ValueError, match="not instrumented"):
        poolviz.events_of(engine)
    with pytest.raises(ValueError, match="leak_threshold must be None or a number of seconds > 0, got 0"):
        poolviz.instrument(engine, leak_threshold=0)
    engine.dispose()


def test_asyncio_tasks_wait_under_their_task_names(pg_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> tuple[list[Any], tuple[int, int]]:
        engine = poolviz.instrument(
            create_async_engine(sqlalchemy_url(pg_url, asyncio=True), pool_size=2, max_overflow=0, pool_timeout=30)
        )
        log = poolviz.events_of(engine)
        release = asyncio.Event()

        async def hold() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                await release.wait()

        async def ask() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        holders = [asyncio.create_task(hold(), name=f"holder-{i}") for i in range(2)]
        await wait_until_async(lambda: sum(e.kind == "checkout" for e in log) == 2)
        askers = [asyncio.create_task(ask(), name=f"asker-{i}") for i in range(3)]
        await wait_until_async(lambda: log.last is not None and log.last.waiting == 3)
        release.set()
        await asyncio.gather(*holders, *askers)
        pool: Any = engine.sync_engine.pool
        counts = (pool.checkedout(), pool.checkedin())
        await engine.dispose()
        return list(log), counts

    events, (out, idle) = asyncio.run(main())
    assert sorted(e.thread for e in events if e.kind == "wait") == ["asker-0", "asker-1", "asker-2"]
    last_checkin = [e for e in events if e.kind == "checkin"][-1]
    assert (last_checkin.in_use, last_checkin.idle) == (out, idle) == (0, 2)


def parity_script(engine: Engine) -> list[Any]:
    """A scripted run through QueuePool's paths; returns what a caller (and SQLAlchemy's counts) show."""
    pool: Any = engine.pool
    seen: list[Any] = []
    label: dict[int, int] = {}

    def step(name: str, action: Callable[[], Any]) -> Any:
        try:
            result = action()
        except Exception as error:
            seen.append((name, "raised", type(error).__name__, str(error).split(" (Background")[0]))
            result = None
        got = getattr(result, "dbapi_connection", None)
        which = label.setdefault(id(got), len(label)) if got is not None else None
        seen.append((name, which, pool.checkedout(), pool.checkedin(), pool.overflow(), pool.status()))
        return result

    a = step("a", pool.connect)
    b = step("b", pool.connect)
    c = step("c overflow", pool.connect)
    step("full", pool.connect)
    step("return b", b.close)
    step("return a", a.close)
    step("return c (queue full: closed)", c.close)
    d = step("d", pool.connect)
    e = step("e", pool.connect)
    step("invalidate d", d.invalidate)
    step("return d", d.close)
    step("return e", e.close)
    f = step("f", pool.connect)
    step("detach f", f.detach)
    step("close detached f", f.close)
    step("dispose", pool.dispose)
    return seen


@pytest.mark.parametrize("use_lifo", [False, True], ids=["fifo", "lifo"])
def test_instrumenting_changes_nothing_sqlalchemy_does(sqlite_file: str, use_lifo: bool) -> None:
    """Same connections handed out in the same order, same errors, same counts, plain or instrumented."""

    def build() -> Engine:
        return create_engine(
            sqlite_file, poolclass=QueuePool, pool_size=2, max_overflow=1, pool_timeout=0.01, pool_use_lifo=use_lifo
        )

    plain, instrumented = build(), poolviz.instrument(build())
    assert parity_script(plain) == parity_script(instrumented)
    assert kinds(poolviz.events_of(instrumented)).count("checkout") == 6


def test_a_connection_killed_on_the_server_fails_pre_ping_and_is_closed_as_broken(pg_url: str) -> None:
    engine = poolviz.instrument(create_engine(sqlalchemy_url(pg_url), pool_size=1, pool_pre_ping=True))
    log = poolviz.events_of(engine)
    with engine.connect() as conn:
        victim = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    with create_engine(sqlalchemy_url(pg_url), poolclass=NullPool).connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
    wait_until(lambda: _backend_gone(pg_url, victim), timeout=5, what="the server to end the session")
    with engine.connect() as conn:  # pre-ping finds it dead: SQLAlchemy reconnects, the caller never sees it
        assert conn.execute(text("SELECT 1")).scalar() == 1
    closes = [e for e in log if e.kind == "close"]
    assert [(e.conn, e.reason) for e in closes] == [(1, "broken")]
    assert kinds(log)[-4:] == ["close", "connect", "checkout", "checkin"]
    engine.dispose()


def _backend_gone(pg_url: str, pid: int) -> bool:
    with create_engine(sqlalchemy_url(pg_url), poolclass=NullPool).connect() as admin:
        found = admin.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()
    return found == 0


def test_the_log_of_an_engine_reads_as_a_frame_while_the_pool_is_in_use(sqlite_file: str) -> None:
    engine = poolviz.instrument(create_engine(sqlite_file, poolclass=QueuePool))
    with engine.connect():
        frame = poolviz.events_of(engine).to_frame()
    assert list(frame["kind"]) == ["connect", "checkout"]
    engine.dispose()
