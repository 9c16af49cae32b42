"""What instrumenting a SQLAlchemy pool costs, each figure against the same plain pool, side by side in one process.

Two cycles, plain ``QueuePool`` and an instrumented one built the same way,
measured in interleaved rounds (the median per round, then the ratio):

- bare: ``pool.connect()`` then ``.close()`` on a SQLite file, one thread
  (target: at most 1.25x);
- realistic: ``engine.connect()``, ``SELECT 1``, close, on PostgreSQL (and
  MariaDB when reachable) (target: at most 1.03x), on several engine pairs,
  each with connections (server processes) of its own: the figure is the
  median over the pairs, the servers on a CPU of their own meanwhile
  (``cpus.py``: otherwise where the scheduler puts each server process
  decides a pair's ratio more than poolviz);
- ``AsyncEngine``: ``async with engine.connect()`` and ``SELECT 1`` in one
  task, on SQLite (aiosqlite) and PostgreSQL (asyncpg).

Hundreds of rounds of about a millisecond each, plain and instrumented in
alternating order, and the median of the rounds' ratios: a local server's
latency swings from one second to the next, and short paired rounds see
the same weather. Beside the ratio, the median time poolviz adds per cycle.
``POOLVIZ_PURE_PYTHON=1`` measures the Python busy path instead of the compiled one.

    .venv/bin/python benchmarks/sqlalchemy_overhead.py [--cycles 200] [--rounds 401] [--server-cycles 20] [--pairs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cpus import median_of_pairs, server_on_its_own_cpu
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

import poolviz
from poolviz import servers
from poolviz.pools.busypath import busy_path_in_use
from poolviz.urls import sqlalchemy_url


def bare_cycle(engine: Engine) -> Callable[[], None]:
    checkout = engine.pool.connect

    def cycle() -> None:
        checkout().close()

    return cycle


def query_cycle(engine: Engine) -> Callable[[], None]:
    select_1 = text("SELECT 1")

    def cycle() -> None:
        with engine.connect() as conn:
            conn.execute(select_1).scalar()

    return cycle


def timed(cycle: Callable[[], None], count: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(count):
        cycle()
    return clock() - start


def report(label: str, theirs: list[float], ours: list[float], cycles: int, target: float) -> float:
    """Print one line: the medians, what poolviz adds per cycle, the median of the rounds' ratios; return that ratio."""
    ratio = statistics.median(o / p for p, o in zip(theirs, ours, strict=True))
    added = statistics.median(o - p for p, o in zip(theirs, ours, strict=True)) / cycles * 1e6
    plain_us, ours_us = statistics.median(theirs) / cycles * 1e6, statistics.median(ours) / cycles * 1e6
    verdict = "within" if ratio <= target else "above"
    print(f"{label:<40} plain {plain_us:7.2f} µs  poolviz {ours_us:7.2f} µs  {added:+6.2f} µs  "
          f"ratio {ratio:5.3f}x  ({verdict} the {target}x target)")  # fmt: skip
    return ratio


def compare(label: str, plain: Callable[[], None], instrumented: Callable[[], None], cycles: int, rounds: int,
            clock: Callable[[], float], target: float) -> float:  # fmt: skip
    """Median of the per-round ratios over many short interleaved rounds (a server's latency swings by the second)."""
    for cycle in (plain, instrumented):  # warm both (connections opened, code paths hot)
        timed(cycle, cycles, clock)
    theirs: list[float] = []
    ours: list[float] = []
    for round_no in range(rounds):
        pair = [(theirs, plain), (ours, instrumented)]
        for times, cycle in pair if round_no % 2 == 0 else reversed(pair):
            times.append(timed(cycle, cycles, clock))
    return report(label, theirs, ours, cycles, target)


def engines(url: str) -> tuple[Engine, Engine]:
    plain = create_engine(url, poolclass=QueuePool, pool_size=4)
    return plain, poolviz.instrument(create_engine(url, poolclass=QueuePool, pool_size=4))


def async_cycles(url: str, cycles: int, rounds: int, label: str, target: float) -> float:
    """``AsyncEngine``: ``async with engine.connect()`` (+ ``SELECT 1``) in one task, plain against instrumented."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def measure() -> float:
        plain = create_async_engine(url, pool_size=4)
        ours = poolviz.instrument(create_async_engine(url, pool_size=4))
        select_1 = text("SELECT 1")

        async def timed_async(engine: Any, count: int) -> float:
            start = time.perf_counter()
            for _ in range(count):
                async with engine.connect() as conn:
                    await conn.execute(select_1)
            return time.perf_counter() - start

        for engine in (plain, ours):
            await timed_async(engine, cycles)
        theirs: list[float] = []
        mine: list[float] = []
        for round_no in range(rounds):
            pair = [(theirs, plain), (mine, ours)]
            for times, engine in pair if round_no % 2 == 0 else reversed(pair):
                times.append(await timed_async(engine, cycles))
        for engine in (plain, ours):
            await engine.dispose()
        return report(label, theirs, mine, cycles, target)

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="bare cycles per pool per round")
    parser.add_argument("--rounds", type=int, default=401, help="interleaved rounds")
    parser.add_argument("--server-cycles", type=int, default=20, help="query cycles per pool per round")
    parser.add_argument("--pairs", type=int, default=3, help="engine pairs per server (fresh connections each)")
    args = parser.parse_args()
    print(busy_path_in_use())
    with server_on_its_own_cpu() as placement:
        print(placement)
        measure_all(args)


def measure_all(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain, ours = engines(f"sqlite:///{Path(tmp) / 'bench.db'}")
        compare("bare connect+close, SQLite, 1 thread", bare_cycle(plain), bare_cycle(ours), args.cycles,
                args.rounds, time.perf_counter, 1.25)  # fmt: skip
        for engine in (plain, ours):
            engine.dispose()
        async_cycles(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.server_cycles, args.rounds // 2,
                     "AsyncEngine connect + SELECT 1, SQLite", 1.25)  # fmt: skip
    for name, url in (("PostgreSQL", servers.postgres_url()), ("MariaDB", servers.mysql_url())):
        problem = servers.reachable(url)
        if problem:
            print(f"{name}: skipped ({problem})")
            continue
        ratios = []
        for pair in range(args.pairs):
            plain, ours = engines(sqlalchemy_url(url))
            label = f"connect + SELECT 1 + close, {name} [{pair + 1}]"
            ratios.append(compare(label, query_cycle(plain), query_cycle(ours), args.server_cycles, args.rounds,
                                  time.perf_counter, 1.03))  # fmt: skip
            for engine in (plain, ours):
                engine.dispose()
        median_of_pairs(f"connect + SELECT 1 + close, {name}", ratios, 1.03)
        if name == "PostgreSQL":
            async_cycles(sqlalchemy_url(url, asyncio=True), args.server_cycles, args.rounds // 2,
                         "AsyncEngine connect + SELECT 1, PostgreSQL", 1.03)  # fmt: skip


if __name__ == "__main__":
    main()
