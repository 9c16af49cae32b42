"""Cost of poolviz on psycopg_pool: a plain pool against an instrumented one, in interleaved rounds in one process.

On PostgreSQL, for ``ConnectionPool`` (one thread) and ``AsyncConnectionPool``
(one task): bare ``getconn()`` + ``putconn()`` cycles, and checkout +
``SELECT 1`` + checkin through ``pool.connection()``. Each round times both
pools back to back (which goes first alternates), the ratio of the round is
instrumented / plain, and the figure is the median of the rounds' ratios
(targets: 1.25x bare, 1.03x with the query); beside it, the median time
poolviz adds per cycle. Hundreds of rounds of about a millisecond each keep
both pools under the same load from the rest of the machine (a shared
machine's PostgreSQL answers a SELECT 1 in 50 µs or in 250 µs from one
second to the next).

The query cycle is measured on several pool pairs, each with connections
(server processes) of its own, and the figure is the median over the pairs;
PostgreSQL runs on a CPU of its own meanwhile (``cpus.py``: otherwise where
the scheduler puts each server process decides a pair's ratio more than poolviz).
``POOLVIZ_PURE_PYTHON=1`` measures the Python busy path instead of the compiled one.

    .venv/bin/python benchmarks/psycopg_overhead.py [--cycles 200] [--rounds 401] [--pairs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cpus import median_of_pairs, server_on_its_own_cpu
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from poolviz import servers
from poolviz.pools.busypath import busy_path_in_use
from poolviz.pools.psycopg import instrument_psycopg

SIZE = 4


def bare(pool: ConnectionPool[Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        pool.putconn(pool.getconn())
    return time.perf_counter() - started


def query(pool: ConnectionPool[Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()
    return time.perf_counter() - started


async def abare(pool: AsyncConnectionPool[Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await pool.putconn(await pool.getconn())
    return time.perf_counter() - started


async def aquery(pool: AsyncConnectionPool[Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        async with pool.connection() as conn:
            await (await conn.execute("SELECT 1")).fetchone()
    return time.perf_counter() - started


def report(name: str, plain: list[float], ours: list[float], count: int, target: float) -> float:
    ratio = statistics.median(o / p for p, o in zip(plain, ours, strict=True))
    added = statistics.median(o - p for p, o in zip(plain, ours, strict=True)) / count
    p, o = statistics.median(plain) / count, statistics.median(ours) / count
    verdict = "ok" if ratio <= target else f"above the {target:.2f}x target"
    print(
        f"{name:<42} plain {p * 1e6:7.1f} µs  poolviz {o * 1e6:7.1f} µs  "
        f"{added * 1e6:+5.1f} µs  ratio {ratio:5.3f}x  ({verdict})"
    )
    return ratio


def interleave(run: Callable[[Any, int], float], plain: Any, ours: Any, count: int, rounds: int) -> tuple[list, list]:
    run(plain, count)  # warm up
    run(ours, count)
    base: list[float] = []
    inst: list[float] = []
    for i in range(rounds):
        first, second = (plain, ours) if i % 2 == 0 else (ours, plain)
        a, b = run(first, count), run(second, count)
        base.append(a if first is plain else b)
        inst.append(b if first is plain else a)
        ours._poolviz_events.clear()
    return base, inst


async def ainterleave(
    run: Callable[[Any, int], Awaitable[float]], plain: Any, ours: Any, count: int, rounds: int
) -> tuple[list, list]:
    await run(plain, count)
    await run(ours, count)
    base: list[float] = []
    inst: list[float] = []
    for i in range(rounds):
        first, second = (plain, ours) if i % 2 == 0 else (ours, plain)
        a, b = await run(first, count), await run(second, count)
        base.append(a if first is plain else b)
        inst.append(b if first is plain else a)
        ours._poolviz_events.clear()
    return base, inst


def threaded(dsn: str, count: int, rounds: int, pairs: int) -> None:
    ratios = []
    for pair in range(pairs):
        with (
            ConnectionPool(dsn, min_size=SIZE, open=True) as plain,
            ConnectionPool(dsn, min_size=SIZE, open=True) as ours,
        ):
            plain.wait()
            ours.wait()
            instrument_psycopg(ours)
            if pair == 0:
                report("ConnectionPool getconn+putconn", *interleave(bare, plain, ours, count, rounds), count, 1.25)
            name = f"ConnectionPool connection()+SELECT 1 [{pair + 1}]"
            ratios.append(report(name, *interleave(query, plain, ours, count // 10, rounds), count // 10, 1.03))
    median_of_pairs("ConnectionPool connection()+SELECT 1", ratios, 1.03)


async def asynchronous(dsn: str, count: int, rounds: int, pairs: int) -> None:
    ratios = []
    for pair in range(pairs):
        async with (
            AsyncConnectionPool(dsn, min_size=SIZE, open=False) as plain,
            AsyncConnectionPool(dsn, min_size=SIZE, open=False) as ours,
        ):
            await plain.wait()
            await ours.wait()
            instrument_psycopg(ours)
            if pair == 0:
                name = "AsyncConnectionPool getconn+putconn"
                report(name, *await ainterleave(abare, plain, ours, count, rounds), count, 1.25)
            name = f"AsyncConnectionPool connection()+SELECT 1 [{pair + 1}]"
            ratios.append(report(name, *await ainterleave(aquery, plain, ours, count // 10, rounds), count // 10, 1.03))
    median_of_pairs("AsyncConnectionPool connection()+SELECT 1", ratios, 1.03)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cycles", type=int, default=200, help="bare cycles per pool per round (a tenth with the query)"
    )
    parser.add_argument("--rounds", type=int, default=401, help="interleaved rounds")
    parser.add_argument("--pairs", type=int, default=3, help="pool pairs for the query cycle (fresh connections each)")
    args = parser.parse_args()
    url = servers.postgres_url()
    if reason := servers.reachable(url):
        sys.exit(f"PostgreSQL not reachable ({reason}): nothing to measure")
    dsn = re.sub(r"^[a-z]+(\+[a-z0-9]+)?://", "postgresql://", url)
    print(
        f"{args.cycles} bare / {args.cycles // 10} query cycles per pool per round, {args.rounds} interleaved rounds, "
        "median of the rounds' ratios"
    )
    print(busy_path_in_use())
    with server_on_its_own_cpu() as placement:
        print(placement)
        threaded(dsn, args.cycles, args.rounds, args.pairs)
        asyncio.run(asynchronous(dsn, args.cycles, args.rounds, args.pairs))


if __name__ == "__main__":
    main()
