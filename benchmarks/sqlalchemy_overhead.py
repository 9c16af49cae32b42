"""What instrumenting a SQLAlchemy pool costs, each figure against the same plain pool, side by side in one process.

Two cycles, plain ``QueuePool`` and an instrumented one built the same way,
measured in interleaved rounds (the median per round, then the ratio):

- bare: ``pool.connect()`` then ``.close()`` on a SQLite file, one thread,
  the thread's CPU time (target: at most 1.25x);
- realistic: ``engine.connect()``, ``SELECT 1``, close, on PostgreSQL (and
  MariaDB when reachable), wall time (target: at most 1.03x).

    .venv/bin/python benchmarks/sqlalchemy_overhead.py [--cycles 20000] [--rounds 7] [--server-cycles 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

import poolviz
from poolviz import servers
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


def per_cycle_us(cycle: Callable[[], None], cycles: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(cycles):
        cycle()
    return (clock() - start) / cycles * 1e6


def compare(label: str, plain: Callable[[], None], instrumented: Callable[[], None], cycles: int, rounds: int,
            clock: Callable[[], float]) -> float:  # fmt: skip
    for cycle in (plain, instrumented):  # warm both (connections opened, code paths hot)
        per_cycle_us(cycle, max(1, cycles // 10), clock)
    times: dict[str, list[float]] = {"plain": [], "poolviz": []}
    for round_no in range(rounds):
        order = [("plain", plain), ("poolviz", instrumented)]
        for name, cycle in order if round_no % 2 == 0 else reversed(order):
            times[name].append(per_cycle_us(cycle, cycles, clock))
    plain_us, ours_us = statistics.median(times["plain"]), statistics.median(times["poolviz"])
    ratio = ours_us / plain_us
    print(f"{label:<44} plain {plain_us:8.2f} µs   poolviz {ours_us:8.2f} µs   ratio {ratio:5.3f}x")
    return ratio


def engines(url: str) -> tuple[Engine, Engine]:
    plain = create_engine(url, poolclass=QueuePool, pool_size=4)
    return plain, poolviz.instrument(create_engine(url, poolclass=QueuePool, pool_size=4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--server-cycles", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, ours = engines(f"sqlite:///{Path(tmp) / 'bench.db'}")
        compare("bare connect+close, SQLite, 1 thread", bare_cycle(plain), bare_cycle(ours), args.cycles,
                args.rounds, time.thread_time)  # fmt: skip
        for engine in (plain, ours):
            engine.dispose()
    for name, url in (("PostgreSQL", servers.postgres_url()), ("MariaDB", servers.mysql_url())):
        problem = servers.reachable(url)
        if problem:
            print(f"{name}: skipped ({problem})")
            continue
        plain, ours = engines(sqlalchemy_url(url))
        compare(f"connect + SELECT 1 + close, {name}", query_cycle(plain), query_cycle(ours), args.server_cycles,
                args.rounds, time.perf_counter)  # fmt: skip
        for engine in (plain, ours):
            engine.dispose()


if __name__ == "__main__":
    main()
