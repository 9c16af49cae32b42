"""What notebook 13 ("three pools, one workload") says about each pool library, pinned on PostgreSQL.

peewee's pool and SQLAlchemy's ``QueuePool`` let a returning thread barge
ahead of the threads already waiting; psycopg_pool's ``ConnectionPool`` keeps
its waiters in a first-come-first-served queue. SQLAlchemy hands out idle
connections FIFO (rotating) or, with ``pool_use_lifo``, LIFO (the most
recently returned), and closes an overflow connection on its return.
psycopg_pool opens ``min_size`` connections in the background on its worker
threads, gives each connection a lifetime a little under ``max_lifetime``
(jitter), and ``check()`` replaces what is expired or broken, in the
background again. The races end after a number of requests (counted by the
workload's progress callback), never after a sleep, with wide margins.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from time import monotonic
from typing import Any

import pytest
from conftest import race_until

import poolviz
from poolviz.data import analysis
from poolviz.pools import factory
from poolviz.testing import wait_until
from poolviz.workload import run_closed_loop

WORKERS = 6
POOL = 2
REQUESTS = 300  # each race stops once this many requests are done
NAMES = [f"worker-{i}" for i in range(WORKERS)]
FAIR_SHARE = REQUESTS / WORKERS

# Races of hundreds of requests each: make test runs them, make check leaves them out.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def race(library: str, url: str, think: Any = 0.0, **settings: Any) -> Any:
    """WORKERS threads on a pool of POOL, 5 ms holds, stopped after REQUESTS requests; the run's events."""
    pool = factory.build(library, url, **settings)
    try:
        result = race_until(pool, WORKERS, REQUESTS, think=think, seed=3)
    finally:
        factory.close(pool)
    assert not result.requests_failed, result.summary()["errors"]
    return result.events


@pytest.fixture
def engine_of(pg_url: str) -> Iterator[Any]:
    """Builds instrumented SQLAlchemy engines on PostgreSQL; disposes of them afterwards."""
    built: list[Any] = []

    def make(**settings: Any) -> Any:
        built.append(factory.build("sqlalchemy", pg_url, **settings))
        return built[-1]

    yield make
    for engine in built:
        engine.dispose()


@pytest.fixture
def psycopg_pool_of(pg_url: str) -> Iterator[Any]:
    """Builds instrumented psycopg_pool ConnectionPools on PostgreSQL; closes them afterwards."""
    built: list[Any] = []

    def make(**settings: Any) -> Any:
        built.append(factory.build("psycopg", pg_url, **settings))
        return built[-1]

    yield make
    for pool in built:
        pool.close()


def checkouts(log: Any, since: int = 0) -> list[Any]:
    return [e for e in log.since(since) if e.kind == "checkout"]


# -- fairness: who gets a connection when six workers want two ---------------------------------


def test_psycopg_pool_serves_every_worker_in_turn_with_no_think_time(pg_url: str, no_new_threads: None) -> None:
    """Think 0: psycopg_pool's queue gives each of six workers its sixth of the checkouts, give or take two."""
    frame = race("psycopg", pg_url, max_size=POOL)
    stats = analysis.fairness_stats(frame, threads=NAMES)
    assert stats["starved"] == 0
    assert stats["checkouts_max"] - stats["checkouts_min"] <= 2
    assert stats["jain_index"] > 0.99


def test_sqlalchemy_queuepool_lets_two_workers_take_nearly_everything_with_no_think_time(
    pg_url: str, no_new_threads: None
) -> None:
    """Think 0: the two busiest of six workers make at least 80% of QueuePool's checkouts (a fair pool: 33%)."""
    frame = race("sqlalchemy", pg_url, pool_size=POOL, max_overflow=0)
    table = analysis.fairness(frame, threads=NAMES)
    total = table["checkouts"].sum()
    assert table["checkouts"].nlargest(POOL).sum() >= 0.8 * total
    assert analysis.fairness_stats(frame, threads=NAMES)["checkouts_min"] <= 0.1 * FAIR_SHARE


def test_peewee_serves_workers_far_less_evenly_than_psycopg_pool_with_no_think_time(
    pg_url: str, no_new_threads: None
) -> None:
    """Think 0 on PostgreSQL: peewee's busiest worker gets at least 30% of a fair share more than its least served."""
    frame = race("peewee", pg_url, max_connections=POOL)
    stats = analysis.fairness_stats(frame, threads=NAMES)
    assert stats["checkouts_max"] - stats["checkouts_min"] >= 0.3 * FAIR_SHARE


def test_with_a_little_think_time_sqlalchemy_serves_every_worker(pg_url: str, no_new_threads: None) -> None:
    """Think 2 ms: the returning thread is asleep when the woken waiter takes the connection: all are served."""
    frame = race("sqlalchemy", pg_url, think="fixed:0.002", pool_size=POOL, max_overflow=0)
    stats = analysis.fairness_stats(frame, threads=NAMES)
    assert stats["starved"] == 0 and stats["checkouts_min"] >= 0.5 * FAIR_SHARE


def test_psycopg_pool_queues_a_returning_caller_behind_the_waiters(psycopg_pool_of: Any) -> None:
    """Pool of 1, three callers queued in turn: the holder returns and asks again at once, and is served last."""
    pool = psycopg_pool_of(max_size=1)
    log = poolviz.events_of(pool)
    conn = pool.getconn()
    start = log.last.seq + 1
    waiters = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=_take_and_return, args=(pool,), name=name)
        thread.start()
        wait_until(
            lambda name=name: any(e.kind == "wait" and e.thread == name for e in log.since(start)),
            what=f"{name} waiting",
        )
        waiters.append(thread)
    pool.putconn(conn)
    again = pool.getconn()  # asks at once, after the three
    pool.putconn(again)
    for thread in waiters:
        thread.join(10)
        assert not thread.is_alive()
    assert [e.thread for e in checkouts(log, start)] == ["first", "second", "third", "MainThread"]


def _take_and_return(pool: Any) -> None:
    with pool.connection():
        pass


def test_sqlalchemy_queuepool_lets_a_returning_caller_barge_ahead_of_a_waiter(engine_of: Any) -> None:
    """Pool of 1, a caller waiting: the holder's return wakes it, yet the holder's next checkout usually wins."""
    engine = engine_of(pool_size=1, max_overflow=0)
    log = poolviz.events_of(engine)
    rounds, retaken = 10, 0
    conn = engine.raw_connection()
    try:
        for _ in range(rounds):
            got = threading.Event()

            def waiter(got: threading.Event = got) -> None:
                engine.raw_connection().close()
                got.set()

            start = log.last.seq + 1
            thread = threading.Thread(target=waiter, name="waiter")
            thread.start()
            wait_until(
                lambda start=start: any(e.kind == "wait" and e.thread == "waiter" for e in log.since(start)),
                every=0.001,
                what="the waiter waiting",
            )
            conn.close()  # back to the pool: QueuePool notifies the waiting thread ...
            conn = engine.raw_connection()  # ... and this thread asks again straight away
            retaken += not got.is_set()
            conn.close()  # let the waiter have it this time
            thread.join(10)
            assert got.is_set() and not thread.is_alive()
            conn = engine.raw_connection()
    finally:
        conn.close()
    assert retaken >= rounds - 2


# -- SQLAlchemy: FIFO or LIFO, and overflow --------------------------------------------------------


@pytest.mark.parametrize(("use_lifo", "expected"), [(False, [1, 2, 3, 1, 2, 3]), (True, [3, 3, 3, 3, 3, 3])])
def test_sqlalchemy_fifo_rotates_idle_connections_and_lifo_reuses_the_last_returned(
    engine_of: Any, use_lifo: bool, expected: list[int]
) -> None:
    """Three idle connections returned 1, 2, 3; one caller at a time: FIFO hands out 1, 2, 3, 1...; LIFO 3, 3, 3..."""
    engine = engine_of(pool_size=3, max_overflow=0, use_lifo=use_lifo)
    log = poolviz.events_of(engine)
    held = [engine.raw_connection() for _ in range(3)]
    for conn in held:
        conn.close()
    start = log.last.seq + 1
    for _ in range(6):
        engine.raw_connection().close()
    assert [e.conn for e in checkouts(log, start)] == expected
    assert sum(e.kind == "connect" for e in log.since(0)) == 3


def test_sqlalchemy_overflow_connections_close_on_return(engine_of: Any) -> None:
    """pool_size 2, max_overflow 2: four held at once open four; returned, the two beyond pool_size close (overflow)."""
    engine = engine_of(pool_size=2, max_overflow=2)
    log = poolviz.events_of(engine)
    held = [engine.raw_connection() for _ in range(4)]
    assert engine.pool.overflow() == 2
    assert sum(e.kind == "connect" for e in log.since(0)) == 4
    for conn in held:
        conn.close()
    closes = [e for e in log.since(0) if e.kind == "close"]
    assert [e.reason for e in closes] == ["overflow", "overflow"]
    assert (log.last.in_use, log.last.idle) == (0, 2) == (engine.pool.checkedout(), engine.pool.checkedin())


# -- psycopg_pool: background fill, max_lifetime jitter, check() --------------------------------


def test_psycopg_pool_opens_min_size_in_the_background_on_its_worker_threads(psycopg_pool_of: Any) -> None:
    """min_size 2: both connections are opened by the pool's worker threads, before anyone asks for one."""
    pool = psycopg_pool_of(min_size=2, max_size=4)
    pool.wait(10)
    connects = [e for e in poolviz.events_of(pool).since(0) if e.kind == "connect"]
    assert len(connects) == 2
    assert all(e.thread.startswith(f"{pool.name}-worker-") for e in connects), [e.thread for e in connects]
    assert not any(e.kind == "checkout" for e in poolviz.events_of(pool).since(0))
    assert pool.get_stats()["pool_available"] == 2


def test_psycopg_pool_gives_each_connection_a_lifetime_a_little_under_max_lifetime(psycopg_pool_of: Any) -> None:
    """max_lifetime 100 s: each connection expires between 95 and 100 s after it opened, not all at once."""
    pool = psycopg_pool_of(min_size=6, max_size=6, max_lifetime=100.0)
    pool.wait(10)
    lifetimes = [conn._expire_at - conn._created_at for conn in list(pool._pool)]
    assert len(lifetimes) == 6
    assert all(95.0 <= life <= 100.0 for life in lifetimes), lifetimes
    assert len(set(lifetimes)) > 1


def test_psycopg_pool_check_replaces_expired_connections_in_the_background(psycopg_pool_of: Any) -> None:
    """Past max_lifetime, check() closes each idle connection as stale and the workers open new ones."""
    pool = psycopg_pool_of(min_size=2, max_size=2, max_lifetime=0.2)
    pool.wait(10)
    log = poolviz.events_of(pool)
    idle = list(pool._pool)
    wait_until(lambda: all(conn._expire_at <= monotonic() for conn in idle), what="both connections expired")
    start = log.last.seq + 1
    pool.check()
    wait_until(lambda: sum(e.kind == "connect" for e in log.since(start)) == 2, what="two replacements")
    events = log.since(start)
    assert [e.reason for e in events if e.kind == "close"] == ["stale", "stale"]
    assert all(e.thread.startswith(f"{pool.name}-worker-") for e in events if e.kind == "connect")


def test_psycopg_pool_check_drops_a_connection_whose_server_session_died(psycopg_pool_of: Any, pg_url: str) -> None:
    """A backend killed on the server: check() closes that connection as broken and a worker opens another."""
    pool = psycopg_pool_of(min_size=2, max_size=2)
    pool.wait(10)
    log = poolviz.events_of(pool)
    end_sessions(pg_url, [pool._pool[0].info.backend_pid])  # one idle connection's
    start = log.last.seq + 1
    pool.check()
    wait_until(lambda: any(e.kind == "connect" for e in log.since(start)), what="a replacement")
    assert [e.reason for e in log.since(start) if e.kind == "close"] == ["broken"]
    assert pool.get_stats()["pool_size"] == 2


def test_peewee_hands_out_its_oldest_idle_connection(pg_url: str) -> None:
    """Three idle connections: one caller at a time always gets the first one opened (peewee's heap is by age)."""
    db = factory.build("peewee", pg_url, max_connections=3)
    all_in = threading.Barrier(3, timeout=10)

    def hold() -> None:
        with db.connection_context():
            all_in.wait()

    try:
        threads = [threading.Thread(target=hold, name=f"warm-{i}") for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive()
        first = next(e.conn for e in db.events.since(0) if e.kind == "connect")
        start = db.events.last.seq + 1
        for _ in range(6):
            with db.connection_context():
                pass
        assert [e.conn for e in checkouts(db.events, start)] == [first] * 6
    finally:
        db.close_all()


@pytest.mark.parametrize(("use_lifo", "used"), [(False, 4), (True, 2)])
def test_under_a_light_load_lifo_leaves_idle_connections_untouched_and_fifo_uses_them_all(
    engine_of: Any, use_lifo: bool, used: int
) -> None:
    """Two workers on four warm connections: FIFO checks out all four, LIFO only the two in use at once."""
    engine = engine_of(pool_size=4, max_overflow=0, use_lifo=use_lifo)
    warm = [engine.raw_connection() for _ in range(4)]
    for conn in warm:
        conn.close()
    result = run_closed_loop(engine, workers=2, requests=20, hold="fixed:0.002", think="fixed:0.004", seed=1)
    assert not result.requests_failed
    assert result.events.query("kind == 'checkout'")["conn"].nunique() == used


def test_psycopg_pool_hands_out_idle_connections_first_in_first_out(psycopg_pool_of: Any) -> None:
    """Three idle connections returned 1, 2, 3; one caller at a time gets 1, 2, 3, 1, 2, 3."""
    pool = psycopg_pool_of(max_size=3)
    log = poolviz.events_of(pool)
    held = [pool.getconn() for _ in range(3)]
    for conn in held:
        pool.putconn(conn)
    start = log.last.seq + 1
    for _ in range(6):
        _take_and_return(pool)
    assert [e.conn for e in checkouts(log, start)] == [1, 2, 3, 1, 2, 3]


def end_sessions(pg_url: str, pids: list[int]) -> None:
    """Terminate these server sessions from a connection of the test's own; return once they are gone.

    Autocommit: inside one transaction pg_stat_activity keeps showing the snapshot it first read.
    """
    import psycopg

    with psycopg.connect("postgresql" + pg_url[pg_url.index("://") :], autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        gone = "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)"
        wait_until(lambda: not admin.execute(gone, (pids,)).fetchall(), what="the sessions gone")


def _killed_pool(pg_url: str, size: int, check: bool) -> Any:
    """An instrumented ConnectionPool of ``size`` idle connections whose server sessions were all terminated."""
    from psycopg_pool import ConnectionPool

    conninfo = "postgresql" + pg_url[pg_url.index("://") :]
    pool = ConnectionPool(
        conninfo,
        min_size=size,
        max_size=size,
        check=ConnectionPool.check_connection if check else None,
        open=False,
        name="killed",
    )
    poolviz.instrument(pool)
    pool.open()
    pool.wait(10)
    end_sessions(pg_url, [conn.info.backend_pid for conn in list(pool._pool)])
    return pool


def test_a_health_checked_psycopg_pool_replaces_dead_connections_at_checkout_backing_off(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check=check_connection (Django's CONN_HEALTH_CHECKS): three dead met in turn, sleeps 0, ~1 s, ~2 s, no error;
    the checkout's wait_s counts the checks and sleeps (no wait event: the caller never queued)."""
    import time

    import psycopg_pool.pool as pool_module

    pool = _killed_pool(pg_url, 3, check=True)
    delays: list[float] = []
    slept: list[float] = []

    def sleep(delay: float) -> None:  # what the caller would sleep, noted; 0.02 s slept instead
        delays.append(delay)
        began = time.perf_counter()
        time.sleep(0.02)
        slept.append(time.perf_counter() - began)

    monkeypatch.setattr(pool_module, "sleep", sleep)
    try:
        log = poolviz.events_of(pool)
        start = log.last.seq + 1
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        found = log.since(start)
        assert [e.reason for e in found if e.kind == "close"] == ["broken"] * 3
        assert len(delays) == 3 and delays[0] == 0.0
        assert 0.9 <= delays[1] <= 1.1 and delays[2] == pytest.approx(2 * delays[1])
        (checkout,) = [e for e in found if e.kind == "checkout"]
        assert checkout.wait_s >= sum(slept)
        assert "wait" not in [e.kind for e in found]
    finally:
        pool.close()


def test_without_a_check_psycopg_pool_hands_out_a_dead_connection(pg_url: str) -> None:
    """No check callback: the caller gets the dead connection and its query fails; the next caller gets a new one."""
    import psycopg

    pool = _killed_pool(pg_url, 1, check=False)
    try:
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:
            conn.execute("SELECT 1")
        with pool.connection(timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()


def test_sqlalchemy_overflow_churns_when_the_load_moves_around_pool_size(pg_url: str) -> None:
    """max_overflow 4: busy back to back, overflow closes only at the end; with random pauses, again and again."""
    steady = race("sqlalchemy", pg_url, pool_size=POOL, max_overflow=WORKERS - POOL)
    bursty = race("sqlalchemy", pg_url, think="exp:0.005", pool_size=POOL, max_overflow=WORKERS - POOL)

    def overflow_closes(frame: Any) -> int:
        return int(((frame["kind"] == "close") & (frame["reason"] == "overflow")).sum())

    assert overflow_closes(steady) <= WORKERS - POOL
    assert overflow_closes(bursty) >= 20
    assert (bursty["kind"] == "connect").sum() >= overflow_closes(bursty)


def test_psycopg_pool_grows_on_its_worker_threads_while_callers_wait(psycopg_pool_of: Any) -> None:
    """min_size 2, four callers at once: two wait, the workers open two more, each waiter gets one; size stays 4."""
    pool = psycopg_pool_of(min_size=2, max_size=4)
    pool.wait(10)
    log = poolviz.events_of(pool)
    start = log.last.seq + 1
    asked, all_in = threading.Barrier(4, timeout=10), threading.Barrier(4, timeout=10)

    def caller() -> None:
        asked.wait()
        with pool.connection():
            all_in.wait()  # nobody returns a connection before all four hold one

    callers = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(10)
        assert not thread.is_alive()
    events = log.since(start)
    assert sum(e.kind == "wait" for e in events) == 2
    grown = [e for e in events if e.kind == "connect"]
    assert len(grown) == 2 and all(e.thread.startswith(f"{pool.name}-worker-") for e in grown)
    assert pool.get_stats()["pool_size"] == 4


def test_psycopg_pool_shrinks_towards_min_size_only_after_max_idle(pg_url: str) -> None:
    """Grown to 4, the pool keeps them while used; idle past max_idle, its worker closes the surplus (reason idle)."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        "postgresql" + pg_url[pg_url.index("://") :], min_size=1, max_size=4, max_idle=0.2, open=False, name="shrink"
    )
    poolviz.instrument(pool)
    pool.open()
    try:
        pool.wait(10)
        held = [pool.getconn() for _ in range(4)]
        for conn in held:
            pool.putconn(conn)
        assert pool.get_stats()["pool_size"] == 4
        log = poolviz.events_of(pool)
        wait_until(lambda: pool.get_stats()["pool_size"] < 4, what="the pool shrinking")
        closes = [e for e in log.since(0) if e.kind == "close"]
        assert closes and {e.reason for e in closes} == {"idle"}
    finally:
        pool.close()
