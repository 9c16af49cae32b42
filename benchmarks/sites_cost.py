"""Cost of checkout sites: the same pools with ``sites=False`` and with sites on (the default), interleaved.

Two questions, each answered by rounds run side by side in this one process
(the order of the variants rotates from round to round; each figure is the
median over rounds, each ratio the median of the rounds' ratios):

1. What does capturing the site add to one checkout? Bare checkout + checkin
   cycles for every library, instrumented with ``sites=False`` and with sites:
   peewee's threaded pool and asyncio database (SQLite), SQLAlchemy's
   ``QueuePool`` and ``AsyncEngine`` (SQLite), psycopg_pool's ``ConnectionPool``
   and ``AsyncConnectionPool`` (PostgreSQL). CPU time of the benchmark thread
   (``time.thread_time``), so the rest of the machine moves it less.
2. Does the whole recording, sites included, fit the issue's budget? The
   realistic cycle (checkout + ``SELECT 1`` + checkin on PostgreSQL): the plain
   pool, poolviz with ``sites=False``, poolviz with sites; budget: sites on at
   most 1.05x the plain pool. Wall time (the application waits for the server)
   in short rounds, so a server's latency swinging from one second to the next
   hits every variant alike; beside it, the CPU time poolviz adds per cycle
   (this thread's, paired by round), as a share of the plain cycle: the same
   cost measured without the server's noise.

    .venv/bin/python benchmarks/sites_cost.py [--bare-cycles 2000] [--bare-rounds 31]
        [--cycles 10] [--rounds 601] [--only bare|realistic|all]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

import poolviz
from poolviz import InstrumentedPooledSqliteDatabase, servers
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase

BUDGET = 1.05
Run = Callable[[int], float]  # runs `count` cycles, returns the seconds they took


def rounds_of(variants: dict[str, Run], count: int, rounds: int) -> dict[str, list[float]]:
    """Each variant's seconds per cycle in every round, the variants' order rotating round by round."""
    names = list(variants)
    for name in names:  # warm up: caches filled, connections open
        variants[name](count)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(variants[name](count) / count)
    return times


def report(title: str, times: dict[str, list[float]], budget: float | None = None) -> None:
    """Each variant's median µs per cycle and its median ratio to the first; the sites' cost against sites off."""
    names = list(times)
    base = times[names[0]]
    print(f"\n{title}")
    for name in names:
        ratio = statistics.median(t / b for t, b in zip(times[name], base, strict=True))
        print(f"  {name:34s} {statistics.median(times[name]) * 1e6:8.2f} µs/cycle  {ratio:6.3f}x")
    off, on = times.get("poolviz, sites=False"), times.get("poolviz, sites on")
    if off is not None and on is not None:
        added = statistics.median(b - a for a, b in zip(off, on, strict=True))
        ratio = statistics.median(b / a for a, b in zip(off, on, strict=True))
        print(f"  sites add {added * 1e6:+.2f} µs per checkout ({ratio:.3f}x of sites=False)")
    if budget is not None:
        whole = statistics.median(t / b for t, b in zip(times[names[-1]], base, strict=True))
        verdict = "within" if whole <= budget else "OVER"
        print(f"  whole recording with sites: {whole:.3f}x the plain pool ({verdict} the {budget:.2f}x budget)")


def cpu_timed(cycle: Callable[[], Any]) -> Run:
    def run(count: int) -> float:
        started = time.thread_time()
        for _ in range(count):
            cycle()
        return time.thread_time() - started

    return run


def wall_timed(cycle: Callable[[], Any], cpu: list[float]) -> Run:
    """Times ``count`` cycles on the wall clock; appends their CPU time per cycle (this thread's) to ``cpu``."""

    def run(count: int) -> float:
        started, started_cpu = time.perf_counter(), time.thread_time()
        for _ in range(count):
            cycle()
        cpu.append((time.thread_time() - started_cpu) / count)
        return time.perf_counter() - started

    return run


def realistic_report(title: str, variants: dict[str, Callable[[], Any]], count: int, rounds: int) -> None:
    """The realistic cycle's wall times against the budget, and the CPU time poolviz adds, paired round by round."""
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    times = rounds_of({name: wall_timed(cycle, cpu[name]) for name, cycle in variants.items()}, count, rounds)
    report(title, times, BUDGET)
    names = list(variants)
    plain_cpu, plain_wall = cpu[names[0]][1:], statistics.median(times[names[0]])
    for name in names[1:]:
        added = statistics.median(c - p for p, c in zip(plain_cpu, cpu[name][1:], strict=True))
        print(f"  CPU added by {name}: {added * 1e6:+.2f} µs per cycle = {added / plain_wall:+.2%} of the plain cycle")


def loop_timed(loop: asyncio.AbstractEventLoop, cycle: Callable[[], Any], clock: Callable[[], float]) -> Run:
    async def cycles(count: int) -> float:
        started = clock()
        for _ in range(count):
            await cycle()
        return clock() - started

    return lambda count: loop.run_until_complete(cycles(count))


def peewee_cycle(db: Any) -> Callable[[], None]:
    def cycle() -> None:
        db.connect()
        db.close()

    return cycle


def sqlalchemy_cycle(engine: Any) -> Callable[[], None]:
    def cycle() -> None:
        engine.connect().close()

    return cycle


def bare(directory: Path, count: int, rounds: int, dsn: str | None) -> None:
    """Bare checkout + checkin per library, sites off against sites on."""
    path = str(directory / "bare.db")
    dbs = {on: InstrumentedPooledSqliteDatabase(path, max_connections=4, sites=on) for on in (False, True)}
    report(
        "peewee PooledSqliteDatabase, connect() + close()",
        rounds_of({_name(on): cpu_timed(peewee_cycle(db)) for on, db in dbs.items()}, count, rounds),
    )
    engines = {
        on: poolviz.instrument(create_engine(f"sqlite:///{path}", poolclass=QueuePool), sites=on)
        for on in (False, True)
    }
    report(
        "SQLAlchemy QueuePool (SQLite), engine.connect() + close()",
        rounds_of({_name(on): cpu_timed(sqlalchemy_cycle(e)) for on, e in engines.items()}, count, rounds),
    )
    loop = asyncio.new_event_loop()
    try:
        bare_asyncio(loop, path, count, rounds, dsn)
    finally:
        loop.close()
    if dsn is None:
        print("\n(PostgreSQL not reachable: psycopg_pool skipped)")
        return
    pools = {on: poolviz.instrument(ConnectionPool(dsn, min_size=2, open=False), sites=on) for on in (False, True)}
    for pool in pools.values():
        pool.open(wait=True)

    def getconn_putconn(pool: Any) -> Callable[[], None]:
        return lambda: pool.putconn(pool.getconn())

    try:
        report(
            "psycopg_pool ConnectionPool (PostgreSQL), getconn() + putconn()",
            rounds_of({_name(on): cpu_timed(getconn_putconn(p)) for on, p in pools.items()}, count, rounds),
        )
    finally:
        for pool in pools.values():
            pool.close()


def bare_asyncio(loop: asyncio.AbstractEventLoop, path: str, count: int, rounds: int, dsn: str | None) -> None:
    """The asyncio pools' bare cycles, on one event loop."""
    dbs = {on: InstrumentedAsyncSqliteDatabase(path, pool_size=2, sites=on) for on in (False, True)}

    def aconnect_aclose(db: Any) -> Callable[[], Any]:
        async def cycle() -> None:
            await db.aconnect()
            await db.aclose()

        return cycle

    report(
        "peewee AsyncSqliteDatabase, aconnect() + aclose()",
        rounds_of(
            {_name(on): loop_timed(loop, aconnect_aclose(db), time.thread_time) for on, db in dbs.items()},
            count // 4,
            rounds,
        ),
    )
    for db in dbs.values():
        loop.run_until_complete(db.close_pool())
    engines = {
        on: poolviz.instrument(create_async_engine(f"sqlite+aiosqlite:///{path}"), sites=on) for on in (False, True)
    }

    def async_connect(engine: Any) -> Callable[[], Any]:
        async def cycle() -> None:
            async with engine.connect():
                pass

        return cycle

    report(
        "SQLAlchemy AsyncEngine (aiosqlite), async with engine.connect()",
        rounds_of(
            {_name(on): loop_timed(loop, async_connect(e), time.thread_time) for on, e in engines.items()},
            count // 4,
            rounds,
        ),
    )
    for engine in engines.values():
        loop.run_until_complete(engine.dispose())
    if dsn is None:
        return
    pools = {on: poolviz.instrument(AsyncConnectionPool(dsn, min_size=2, open=False), sites=on) for on in (False, True)}
    for pool in pools.values():
        loop.run_until_complete(pool.open(wait=True))

    def agetconn_putconn(pool: Any) -> Callable[[], Any]:
        async def cycle() -> None:
            await pool.putconn(await pool.getconn())

        return cycle

    report(
        "psycopg_pool AsyncConnectionPool (PostgreSQL), getconn() + putconn()",
        rounds_of(
            {_name(on): loop_timed(loop, agetconn_putconn(p), time.thread_time) for on, p in pools.items()},
            count // 4,
            rounds,
        ),
    )
    for pool in pools.values():
        loop.run_until_complete(pool.close())


def _name(sites: bool) -> str:
    return "poolviz, sites on" if sites else "poolviz, sites=False"


def realistic(url: str, dsn: str, count: int, rounds: int) -> None:
    """Checkout + SELECT 1 + checkin on PostgreSQL: the plain pool, poolviz without sites, poolviz with sites."""
    from playhouse.pool import PooledPostgresqlDatabase

    from poolviz.urls import sqlalchemy_url

    def peewee_query(db: Any) -> Callable[[], None]:
        def cycle() -> None:
            with db.connection_context():
                db.execute_sql("SELECT 1").fetchone()

        return cycle

    params = {"database": "test", "host": "127.0.0.1", "port": 5432, "user": "postgres", "max_connections": 4}
    params.update(_peewee_params(url))
    plain_db = PooledPostgresqlDatabase(**params)
    dbs = {on: poolviz.instrument(PooledPostgresqlDatabase(**params), sites=on) for on in (False, True)}
    variants = {"plain PooledPostgresqlDatabase": peewee_query(plain_db)}
    variants.update({_name(on): peewee_query(db) for on, db in dbs.items()})
    realistic_report("peewee, checkout + SELECT 1 + checkin (PostgreSQL, psycopg2)", variants, count, rounds)
    for db in (plain_db, *dbs.values()):
        db.close_all()

    def sqlalchemy_query(engine: Any) -> Callable[[], None]:
        statement = text("SELECT 1")

        def cycle() -> None:
            with engine.connect() as conn:
                conn.execute(statement).fetchone()

        return cycle

    sa_url = sqlalchemy_url(url)
    plain_engine = create_engine(sa_url, pool_size=4)
    engines = {on: poolviz.instrument(create_engine(sa_url, pool_size=4), sites=on) for on in (False, True)}
    variants = {"plain QueuePool": sqlalchemy_query(plain_engine)}
    variants.update({_name(on): sqlalchemy_query(e) for on, e in engines.items()})
    realistic_report("SQLAlchemy, checkout + SELECT 1 + checkin (PostgreSQL, psycopg2)", variants, count, rounds)
    for engine in (plain_engine, *engines.values()):
        engine.dispose()

    def psycopg_query(pool: Any) -> Callable[[], None]:
        def cycle() -> None:
            with pool.connection() as conn:
                conn.execute("SELECT 1").fetchone()

        return cycle

    plain_pool = ConnectionPool(dsn, min_size=2, open=False)
    pools = {on: poolviz.instrument(ConnectionPool(dsn, min_size=2, open=False), sites=on) for on in (False, True)}
    for pool in (plain_pool, *pools.values()):
        pool.open(wait=True)
    variants = {"plain ConnectionPool": psycopg_query(plain_pool)}
    variants.update({_name(on): psycopg_query(p) for on, p in pools.items()})
    realistic_report("psycopg_pool, checkout + SELECT 1 + checkin (PostgreSQL, psycopg 3)", variants, count, rounds)
    for pool in (plain_pool, *pools.values()):
        pool.close()


def _peewee_params(url: str) -> dict[str, Any]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    found: dict[str, Any] = {"database": parsed.path.lstrip("/") or "test"}
    if parsed.hostname:
        found["host"] = parsed.hostname
    if parsed.port:
        found["port"] = parsed.port
    if parsed.username:
        found["user"] = parsed.username
    if parsed.password:
        found["password"] = parsed.password
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bare-cycles", type=int, default=2000, help="bare cycles per variant per round")
    parser.add_argument("--bare-rounds", type=int, default=31, help="interleaved rounds of the bare cycles")
    parser.add_argument("--cycles", type=int, default=10, help="realistic cycles per variant per round")
    parser.add_argument("--rounds", type=int, default=601, help="interleaved rounds of the realistic cycle")
    parser.add_argument("--only", choices=["bare", "realistic", "all"], default="all")
    args = parser.parse_args()
    url = servers.postgres_url()
    reason = servers.reachable(url)
    dsn = None if reason else re.sub(r"^[a-z]+(\+[a-z0-9]+)?://", "postgresql://", url)
    print(f"Python {sys.version.split()[0]}; PostgreSQL: {'reachable' if dsn else reason}")
    if args.only in ("bare", "all"):
        print(
            f"Bare cycles: {args.bare_cycles} per variant per round (a quarter for asyncio), {args.bare_rounds} rounds"
        )
        with tempfile.TemporaryDirectory() as tmp:
            bare(Path(tmp), args.bare_cycles, args.bare_rounds, dsn)
    if args.only in ("realistic", "all"):
        if dsn is None:
            sys.exit(f"PostgreSQL not reachable ({reason}): the realistic cycle is not measured")
        print(f"\nRealistic cycles: {args.cycles} per variant per round, {args.rounds} rounds")
        realistic(url, dsn, args.cycles, args.rounds)


if __name__ == "__main__":
    main()
