"""psycopg_pool's pools, instrumented: every transition is an event with the right kind, reason and counts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import (
    AsyncConnectionPool,
    AsyncNullConnectionPool,
    ConnectionPool,
    NullConnectionPool,
    PoolTimeout,
    TooManyRequests,
)

from poolviz.events import Event
from poolviz.pools.psycopg import instrument_psycopg
from poolviz.pools.psycopg.testing import libpq_url, sequence_problems, stats_at_each_event
from poolviz.testing import free_port, join_threads, wait_until


@pytest.fixture
def dsn(pg_url: str) -> str:
    """The test server as a libpq URL (poolviz's URLs name the pool in the scheme)."""
    return libpq_url(pg_url)


@pytest.fixture
def pools() -> Iterator[list[Any]]:
    """Threaded pools to close after the test."""
    made: list[Any] = []
    yield made
    for pool in made:
        pool.close()


def events(pool: Any) -> list[Event]:
    return pool._poolviz_events.snapshot()


def steps(pool: Any) -> list[tuple[str, str]]:
    """``(kind, reason)`` of each event."""
    return [(e.kind, e.reason) for e in events(pool)]


def counts(pool: Any) -> list[tuple[int, int, int]]:
    return [(e.in_use, e.idle, e.waiting) for e in events(pool)]


def test_threads_counts_are_psycopg_pool_s_on_every_event(dsn: str, pools: list[Any]) -> None:
    """Eight threads on a pool of 3, with timeouts: each event's counts are get_stats() at that moment."""
    pool = ConnectionPool(dsn, min_size=2, max_size=3, open=True, timeout=5.0)
    pools.append(pool)
    instrument_psycopg(pool)
    seen = stats_at_each_event(pool)
    start = threading.Barrier(8)
    outcome: dict[str, int] = {"ok": 0, "timeout": 0}
    lock = threading.Lock()

    def work(impatient: bool) -> None:
        start.wait(timeout=10)
        for _ in range(15):
            try:
                with pool.connection(timeout=0.001 if impatient else 5.0) as conn:
                    conn.execute("SELECT 1").fetchone()
            except PoolTimeout:
                with lock:
                    outcome["timeout"] += 1
            else:
                with lock:
                    outcome["ok"] += 1

    threads = [threading.Thread(target=work, args=(i % 4 == 0,), name=f"worker-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    join_threads(threads, 30)
    rows = events(pool)
    assert counts(pool) == seen
    assert sequence_problems(rows) == []
    kinds = [e.kind for e in rows]
    assert kinds.count("checkout") == outcome["ok"]
    assert kinds.count("timeout") == outcome["timeout"]
    stats = pool.get_stats()
    assert stats["requests_num"] == outcome["ok"] + outcome["timeout"]
    assert stats["requests_queued"] == kinds.count("wait")
    # Quiet now: the last event says what psycopg_pool says.
    last = rows[-1]
    assert (last.in_use, last.idle, last.waiting) == (
        stats["pool_size"] - stats["pool_available"],
        stats["pool_available"],
        stats["requests_waiting"],
    )


def test_asyncio_counts_are_psycopg_pool_s_on_every_event(dsn: str) -> None:
    """Twelve tasks on an asyncio pool of 3: each event's counts are get_stats() at that moment, names are tasks'."""

    async def main() -> tuple[Any, list[tuple[int, int, int]], int]:
        pool = AsyncConnectionPool(dsn, min_size=1, max_size=3, open=False, timeout=5.0)
        await pool.open(wait=True)
        instrument_psycopg(pool)  # adopts the one connection it holds
        seen = stats_at_each_event(pool)

        async def work() -> None:
            for _ in range(10):
                async with pool.connection() as conn:
                    await (await conn.execute("SELECT 1")).fetchone()

        await asyncio.gather(*(asyncio.create_task(work(), name=f"task-{i}") for i in range(12)))
        await pool.close()
        return pool, seen, 120

    pool, seen, served = asyncio.run(main())
    rows = events(pool)
    assert counts(pool) == seen
    assert sequence_problems(rows, adopted=1) == []
    assert [e.kind for e in rows].count("checkout") == served
    assert {e.thread for e in rows if e.kind == "checkout"} == {f"task-{i}" for i in range(12)}
    assert {e.thread for e in rows if e.kind == "connect"} <= {f"{pool.name}-worker-{i}" for i in range(3)}
    assert [e.reason for e in rows if e.kind == "close"] == ["all"] * (1 + [e.kind for e in rows].count("connect"))


def test_background_fill_and_growth_are_connects_on_worker_threads(dsn: str, pools: list[Any]) -> None:
    """min_size is filled by the pool's workers, growth too: connect events named after them, then the checkouts."""
    pool = ConnectionPool(dsn, min_size=2, max_size=3, open=False, name="fill")
    pools.append(pool)
    instrument_psycopg(pool)
    pool.open(wait=True)
    held = [pool.getconn() for _ in range(3)]
    for conn in held:
        pool.putconn(conn)
    rows = events(pool)
    connects = [e for e in rows if e.kind == "connect"]
    assert len(connects) == 3
    assert {e.thread for e in connects} <= {"fill-worker-0", "fill-worker-1", "fill-worker-2"}
    assert all(e.duration_s > 0 for e in connects)
    # The third caller found the pool empty: it waited for the connection the pool grew for it.
    assert [e.kind for e in rows if e.kind in ("wait", "checkout")] == ["checkout", "checkout", "wait", "checkout"]
    assert rows[-1][10:13] == (0, 3, 0)


def test_instrument_adopts_an_open_pool_silently(dsn: str, pools: list[Any]) -> None:
    """Connections the pool holds when instrumented get serials without events; one out then comes back silently."""
    pool = ConnectionPool(dsn, min_size=2, open=True)
    pools.append(pool)
    pool.wait()
    out = pool.getconn()
    assert instrument_psycopg(pool) is pool
    assert instrument_psycopg(pool) is pool  # twice is harmless
    assert events(pool) == []
    pool.putconn(out)
    conn = pool.getconn()
    pool.putconn(conn)
    assert steps(pool) == [("checkout", ""), ("checkin", "")]
    assert events(pool)[0].conn in (1, 2, 3)
    assert type(pool).__name__ == "ConnectionPool" and isinstance(pool, ConnectionPool)
    assert repr(pool).startswith("<psycopg_pool.pool.ConnectionPool ")


def test_meta_names_the_library_and_masks_the_password(dsn: str, pools: list[Any]) -> None:
    """log.meta records the library, class and settings; the password never appears."""
    conninfo = dsn.replace("postgres@", "postgres:s3cr3t-pw@")
    pool = ConnectionPool(conninfo, min_size=1, max_size=4, max_waiting=7, max_lifetime=900, max_idle=60, open=False)
    pools.append(pool)
    meta = instrument_psycopg(pool)._poolviz_events.meta
    assert {k: meta[k] for k in ("library", "pool", "backend", "min_size", "max_size", "max_waiting")} == {
        "library": "psycopg_pool",
        "pool": "ConnectionPool",
        "backend": "postgresql",
        "min_size": 1,
        "max_size": 4,
        "max_waiting": 7,
    }
    assert (meta["max_lifetime"], meta["max_idle"], meta["timeout"], meta["max_connections"]) == (900, 60, 30.0, 4)
    assert "s3cr3t-pw" not in str(meta) and "***" in meta["conninfo"]


def test_connect_error_is_recorded_masked(pools: list[Any]) -> None:
    """A connection that cannot be opened is an error event, the password masked; the caller gets psycopg's error."""
    port = free_port()
    pool = NullConnectionPool(
        f"host=127.0.0.1 port={port} user=postgres password=s3cr3t-pw connect_timeout=2", open=True
    )
    pools.append(pool)
    instrument_psycopg(pool)
    with pytest.raises(psycopg.OperationalError):
        pool.getconn(timeout=5)
    (error,) = [e for e in events(pool) if e.kind == "error"]
    assert error.reason == "OperationalError" and str(port) in error.message
    assert "s3cr3t-pw" not in error.message


def test_bad_input_is_refused_clearly(dsn: str) -> None:
    """Anything but a psycopg_pool pool is a TypeError naming what is accepted; a closed pool a ValueError."""
    with pytest.raises(TypeError, match="ConnectionPool, AsyncConnectionPool"):
        instrument_psycopg(object())
    pool = ConnectionPool(dsn, min_size=0, max_size=1, open=True)
    pool.close()
    with pytest.raises(ValueError, match="closed"):
        instrument_psycopg(pool)
    with pytest.raises(ValueError, match="leak_threshold"):
        instrument_psycopg(ConnectionPool(dsn, open=False), leak_threshold=-1)


def test_a_refusal_and_a_timeout_leave_timeout_events(dsn: str, pools: list[Any]) -> None:
    """max_waiting full: TooManyRequests is a timeout 'refused'; a waiter running out of time is a timeout ''."""
    pool = instrument_psycopg(ConnectionPool(dsn, min_size=1, max_size=1, max_waiting=1, open=True))
    pools.append(pool)
    pool.wait()
    held = pool.getconn()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            pool.getconn(timeout=0.3)
        except PoolTimeout as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter, name="waiter")
    thread.start()
    wait_until(lambda: pool.get_stats().get("requests_waiting") == 1, what="the waiter queued")
    with pytest.raises(TooManyRequests):
        pool.getconn(timeout=1)
    join_threads([thread])
    pool.putconn(held)
    assert len(errors) == 1
    rows = events(pool)
    timeouts = [(e.thread, e.reason) for e in rows if e.kind == "timeout"]
    assert timeouts == [("MainThread", "refused"), ("waiter", "")]
    assert [e.wait_s for e in rows if e.kind == "timeout"][1] >= 0.25
    assert sequence_problems(rows) == []


def test_waiters_are_served_first_come_first_served(dsn: str, pools: list[Any]) -> None:
    """psycopg_pool's queue is FIFO: the checkouts follow the waits in order."""
    pool = instrument_psycopg(ConnectionPool(dsn, min_size=1, max_size=1, open=True))
    pools.append(pool)
    pool.wait()
    held = pool.getconn()

    def worker() -> None:
        with pool.connection(timeout=10):
            pass

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=worker, name=f"w{i}"))
        threads[-1].start()
        wait_until(lambda n=i + 1: pool.get_stats().get("requests_waiting") == n, what=f"{i + 1} waiters queued")
    pool.putconn(held)
    join_threads(threads)
    rows = events(pool)
    assert [e.thread for e in rows if e.kind == "wait"] == ["w0", "w1", "w2", "w3"]
    assert [e.thread for e in rows if e.kind == "checkout"][1:] == ["w0", "w1", "w2", "w3"]
    assert all(e.wait_s > 0 for e in rows if e.kind == "checkout" and e.thread != "MainThread")


def _kill(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_until(
            lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() == (0,),
            what=f"backend {pid} gone",
        )


def test_close_reasons_of_a_threaded_pool(dsn: str, pools: list[Any]) -> None:
    """Close reasons: broken (dead at return, failing check()), not_reusable (reset failed), stale, all."""
    resets: list[int] = []

    def reset(conn: Any) -> None:
        resets.append(1)
        if len(resets) == 1:
            raise RuntimeError("this reset fails")

    pool = instrument_psycopg(ConnectionPool(dsn, min_size=2, max_size=2, open=True, reset=reset))
    pools.append(pool)
    pool.wait()
    log = pool._poolviz_events

    def closes() -> list[str]:
        return [e.reason for e in log.snapshot() if e.kind == "close"]

    def refilled() -> bool:
        return pool.get_stats()["pool_available"] == 2

    # Dead at its return.
    conn = pool.getconn()
    _kill(dsn, conn.info.backend_pid)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    pool.putconn(conn)
    wait_until(lambda: closes() == ["broken"] and refilled(), what="broken at return, replaced")
    # The reset callback fails (the first call): not reusable.
    pool.putconn(pool.getconn())
    wait_until(lambda: closes() == ["broken", "not_reusable"] and refilled(), what="reset failed, replaced")
    # check() finds an idle connection dead.
    conn = pool.getconn()
    pid = conn.info.backend_pid
    pool.putconn(conn)
    wait_until(refilled)
    _kill(dsn, pid)
    pool.check()
    wait_until(lambda: closes()[2:] == ["broken"] and refilled(), what="check() dropped the dead one")
    # Past max_lifetime at its return.
    conn = pool.getconn()
    conn._expire_at = 0.0  # as if max_lifetime had passed, without waiting for it
    pool.putconn(conn)
    wait_until(lambda: closes()[3:] == ["stale"] and refilled(), what="stale at return")
    pool.drain()
    wait_until(lambda: closes()[4:] == ["all", "all"] and refilled(), what="drained")
    pool.close()
    assert closes()[6:] == ["all", "all"]
    assert sequence_problems(log.snapshot()) == []
    assert len(resets) == 3  # psycopg_pool still called the user's reset at each live return


def test_max_idle_shrinks_with_reason_idle(dsn: str, pools: list[Any]) -> None:
    """A connection grown beyond min_size and unused for max_idle is closed with reason 'idle'."""
    pool = instrument_psycopg(ConnectionPool(dsn, min_size=1, max_size=2, max_idle=0.2, open=True))
    pools.append(pool)
    pool.wait()
    a = pool.getconn()
    b = pool.getconn()  # the pool grows to 2
    pool.putconn(a)
    pool.putconn(b)
    wait_until(lambda: any(e.reason == "idle" for e in events(pool)), timeout=10, what="a shrink")
    assert pool.get_stats()["pool_size"] == 1
    assert sequence_problems(events(pool)) == []


def test_null_pool_closes_on_return_as_overflow_and_hands_to_waiters(dsn: str, pools: list[Any]) -> None:
    """A null pool opens for each caller and closes on return ('overflow'), unless a caller waits: then a checkin."""
    pool = instrument_psycopg(NullConnectionPool(dsn, max_size=1, open=True))
    pools.append(pool)
    seen = stats_at_each_event(pool)
    held = pool.getconn()
    thread = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=10)), name="waiter")
    thread.start()
    wait_until(lambda: pool.get_stats().get("requests_waiting") == 1, what="the waiter queued")
    pool.putconn(held)
    join_threads([thread])
    assert [(e.kind, e.reason, e.thread) for e in events(pool)] == [
        ("connect", "", "MainThread"),
        ("checkout", "", "MainThread"),
        ("wait", "", "waiter"),
        ("checkin", "", "MainThread"),
        ("checkout", "", "waiter"),
        ("close", "overflow", "waiter"),
    ]
    assert counts(pool) == seen
    assert events(pool)[-1][10:13] == (0, 0, 0)


def test_asyncio_pools_record_the_same_kinds(dsn: str) -> None:
    """AsyncConnectionPool and AsyncNullConnectionPool: the same events as the threaded pools, with task names."""

    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        pool = AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False, timeout=0.2)
        await pool.open(wait=True)
        instrument_psycopg(pool)
        conn = await pool.getconn()
        with pytest.raises(PoolTimeout):
            await pool.getconn()
        await pool.putconn(conn)
        await pool.close()
        null = instrument_psycopg(AsyncNullConnectionPool(dsn, max_size=2, open=False))
        await null.open()
        async with null.connection() as conn:
            await conn.execute("SELECT 1")
        await null.close()
        return steps(pool), steps(null)

    plain, null = asyncio.run(main())
    assert plain == [("checkout", ""), ("wait", ""), ("timeout", ""), ("checkin", ""), ("close", "all")]
    assert null == [("connect", ""), ("checkout", ""), ("close", "overflow")]


def test_listeners_are_called_outside_the_pool_lock(dsn: str, pools: list[Any]) -> None:
    """Every event reaches a listener, in the thread that caused it, never while that thread holds the pool lock."""
    pool = instrument_psycopg(ConnectionPool(dsn, min_size=1, max_size=2, open=True, timeout=5.0))
    pools.append(pool)
    heard: list[Event] = []
    under_lock: list[str] = []

    def listener(event: Event) -> None:
        if pool._lock._is_owned():
            under_lock.append(event.kind)
        heard.append(event)

    pool._poolviz_events.subscribe(listener)
    start = threading.Barrier(4)

    def work() -> None:
        start.wait(timeout=10)
        for _ in range(10):
            with pool.connection() as conn:
                conn.execute("SELECT 1")

    threads = [threading.Thread(target=work, name=f"l{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    join_threads(threads)
    pool.close()
    assert under_lock == []
    assert sorted(e.seq for e in heard) == [e.seq for e in events(pool)]
    assert {"connect", "checkout", "wait", "checkin", "close"} <= {e.kind for e in heard}


def test_a_failed_check_callback_drops_a_dead_connection_as_broken(dsn: str, pools: list[Any]) -> None:
    """A check callback finds the idle connection dead: close 'broken', and the caller waits for a new one."""
    checked: list[int] = []

    def check(conn: Any) -> None:
        checked.append(conn.info.backend_pid)
        ConnectionPool.check_connection(conn)

    pool = instrument_psycopg(ConnectionPool(dsn, min_size=1, max_size=1, open=True, check=check))
    pools.append(pool)
    pool.wait()
    conn = pool.getconn()
    dead = conn.info.backend_pid
    pool.putconn(conn)
    _kill(dsn, dead)
    with pool.connection() as conn:
        assert conn.info.backend_pid != dead
    assert checked[1:] == [dead, conn.info.backend_pid]
    rows = events(pool)
    assert [(e.kind, e.reason) for e in rows][3:] == [
        ("close", "broken"),
        ("wait", ""),
        ("connect", ""),
        ("checkout", ""),
        ("checkin", ""),
    ]
    assert sequence_problems(rows) == []


def test_poolviz_instrument_and_events_of_take_psycopg_pools(dsn: str, pools: list[Any]) -> None:
    """poolviz.instrument() hands a psycopg_pool pool to instrument_psycopg; events_of() finds its log."""
    import poolviz

    pool = ConnectionPool(dsn, min_size=1, open=False)
    pools.append(pool)
    assert poolviz.instrument(pool, leak_threshold=30) is pool
    assert poolviz.events_of(pool) is pool._poolviz_events
    assert pool._poolviz_events.meta["leak_threshold"] == 30


def test_a_background_connect_failure_is_an_error_on_the_worker(pools: list[Any]) -> None:
    """The min_size fill failing: an error event on the worker's thread, password masked; no connect."""
    port = free_port()
    pool = ConnectionPool(
        f"host=127.0.0.1 port={port} user=postgres password=s3cr3t-pw", min_size=1, open=False, name="bad"
    )
    pools.append(pool)
    instrument_psycopg(pool)
    pool.open()
    error = wait_until(lambda: [e for e in events(pool) if e.kind == "error"], what="the error event")[0]
    assert error.thread.startswith("bad-worker-") and error.reason == "OperationalError"
    assert str(port) in error.message and "s3cr3t-pw" not in error.message
    assert "connect" not in [e.kind for e in events(pool)]


def _backoff_sleeps(monkeypatch: pytest.MonkeyPatch, asynchronous: bool, pause: float = 0.05) -> list[float]:
    """psycopg_pool's backoff sleeps made short (``pause`` each, whatever the delay): the real seconds each took."""
    import time

    import psycopg_pool.pool as threaded_module
    import psycopg_pool.pool_async as async_module

    slept: list[float] = []

    def sleep(_delay: float) -> None:
        began = time.perf_counter()
        time.sleep(pause)
        slept.append(time.perf_counter() - began)

    async def asleep(_delay: float) -> None:
        began = time.perf_counter()
        await asyncio.sleep(pause)
        slept.append(time.perf_counter() - began)

    if asynchronous:
        monkeypatch.setattr(async_module, "asleep", asleep)
    else:
        monkeypatch.setattr(threaded_module, "sleep", sleep)
    return slept


def test_failed_checks_and_their_backoff_count_in_the_checkout_s_wait(
    dsn: str, pools: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead idle connections met by check_connection: the checkout's wait_s, like a timeout's, covers the backoff."""
    import time

    pool = ConnectionPool(dsn, min_size=3, max_size=3, open=False, check=ConnectionPool.check_connection)
    pools.append(pool)
    pool.open(wait=True)
    instrument_psycopg(pool)  # adopts the three idle connections
    slept = _backoff_sleeps(monkeypatch, asynchronous=False)
    for conn in list(pool._pool)[:2]:
        _kill(dsn, conn.info.backend_pid)
    start = _next_seq(pool)
    began = time.perf_counter()
    with pool.connection():
        took = time.perf_counter() - began
    rows = pool._poolviz_events.since(start)
    (checkout,) = [e for e in rows if e.kind == "checkout"]
    assert [e.reason for e in rows if e.kind == "close"] == ["broken", "broken"]
    assert len(slept) == 2 and sum(slept) <= checkout.wait_s <= took
    # Nobody queued: no wait event, and requests_waiting (the events' waiting) stayed 0.
    assert "wait" not in [e.kind for e in rows] and {e.waiting for e in rows} == {0}

    wait_until(lambda: len(pool._pool) == 3, what="the replacements")
    for conn in list(pool._pool):
        _kill(dsn, conn.info.backend_pid)
    slept = _backoff_sleeps(monkeypatch, asynchronous=False, pause=0.1)
    start = _next_seq(pool)
    began = time.perf_counter()
    with pytest.raises(PoolTimeout):
        pool.getconn(timeout=0.15)  # dead ones met, 0.1 s after each: past the timeout before a live one
    took = time.perf_counter() - began
    (timeout,) = [e for e in pool._poolviz_events.since(start) if e.kind == "timeout"]
    assert slept and sum(slept) <= timeout.wait_s <= took
    assert sequence_problems(events(pool), adopted=3) == []


def test_asyncio_failed_checks_and_their_backoff_count_in_the_checkout_s_wait(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on an AsyncConnectionPool: the checkout after failed checks carries the backoff in its wait_s."""
    import time

    slept = _backoff_sleeps(monkeypatch, asynchronous=True)

    async def main() -> tuple[list[Event], float]:
        pool = AsyncConnectionPool(
            dsn, min_size=3, max_size=3, open=False, check=AsyncConnectionPool.check_connection, timeout=5.0
        )
        await pool.open(wait=True)
        instrument_psycopg(pool)
        for conn in list(pool._pool)[:2]:
            _kill(dsn, conn.info.backend_pid)
        start = _next_seq(pool)
        began = time.perf_counter()
        async with pool.connection():
            took = time.perf_counter() - began
        await pool.close()
        return pool._poolviz_events.since(start), took

    rows, took = asyncio.run(main())
    (checkout,) = [e for e in rows if e.kind == "checkout"]
    assert [e.reason for e in rows if e.kind == "close"][:2] == ["broken", "broken"]
    assert len(slept) == 2 and sum(slept) <= checkout.wait_s <= took
    assert "wait" not in [e.kind for e in rows]


def _next_seq(pool: Any) -> int:
    last = pool._poolviz_events.last
    return last.seq + 1 if last is not None else 0
