"""What instrumenting a SQLAlchemy pool costs, each figure against the same plain pool, side by side in one process.

Two cycles, plain ``QueuePool`` and an instrumented one built the same way,
measured in interleaved rounds (the median per round, then the ratio):

- bare: ``pool.connect()`` then ``.close()`` on a SQLite file, one thread
  (target: at most 1.25x);
- realistic: ``engine.connect()``, ``SELECT 1``, close, on PostgreSQL (and
  MariaDB when reachable) (target: at most 1.03x).

Hundreds of rounds of about a millisecond each, plain and instrumented in
alternating order, and the median of the rounds' ratios: a local server's
latency swings from one second to the next, and short paired rounds see
the same weather. Beside the ratio, the median time poolviz adds per cycle.

    .venv/bin/python benchmarks/sqlalchemy_overhead.py [--cycles 200] [--rounds 401] [--server-cycles 20]
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


def timed(cycle: Callable[[], None], count: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(count):
        cycle()
    return clock() - start


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
    ratio = statistics.median(o / p for p, o in zip(theirs, ours, strict=True))
    added = statistics.median(o - p for p, o in zip(theirs, ours, strict=True)) / cycles * 1e6
    plain_us, ours_us = statistics.median(theirs) / cycles * 1e6, statistics.median(ours) / cycles * 1e6
    verdict = "within" if ratio <= target else "above"
    print(f"{label:<40} plain {plain_us:7.2f} µs  poolviz {ours_us:7.2f} µs  {added:+6.2f} µs  "
          f"ratio {ratio:5.3f}x  ({verdict} the {target}x target)")  # fmt: skip
    return ratio


def engines(url: str) -> tuple[Engine, Engine]:
    plain = create_engine(url, poolclass=QueuePool, pool_size=4)
    return plain, poolviz.instrument(create_engine(url, poolclass=QueuePool, pool_size=4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="bare cycles per pool per round")
    parser.add_argument("--rounds", type=int, default=401, help="interleaved rounds")
    parser.add_argument("--server-cycles", type=int, default=20, help="query cycles per pool per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, ours = engines(f"sqlite:///{Path(tmp) / 'bench.db'}")
        compare("bare connect+close, SQLite, 1 thread", bare_cycle(plain), bare_cycle(ours), args.cycles,
                args.rounds, time.perf_counter, 1.25)  # fmt: skip
        for engine in (plain, ours):
            engine.dispose()
    for name, url in (("PostgreSQL", servers.postgres_url()), ("MariaDB", servers.mysql_url())):
        problem = servers.reachable(url)
        if problem:
            print(f"{name}: skipped ({problem})")
            continue
        plain, ours = engines(sqlalchemy_url(url))
        compare(f"connect + SELECT 1 + close, {name}", query_cycle(plain), query_cycle(ours), args.server_cycles,
                args.rounds, time.perf_counter, 1.03)  # fmt: skip
        for engine in (plain, ours):
            engine.dispose()


if __name__ == "__main__":
    main()
