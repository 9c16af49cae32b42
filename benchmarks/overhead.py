"""Cost of one acquire+release cycle: plain peewee, poolviz (0 and 1 listener), SQLAlchemy with listeners.

All four run side by side in this process on the same SQLite file, in
interleaved rounds, single-threaded and with 8 threads; the figure reported
for each is the median over rounds, and ratios are against plain peewee.

    .venv/bin/python benchmarks/overhead.py [--cycles 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from playhouse.pool import PooledSqliteDatabase
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from poolviz import InstrumentedPooledSqliteDatabase

POOL_SIZE = 8


def peewee_cycle(db: PooledSqliteDatabase) -> Callable[[], None]:
    connect, close = db.connect, db.close

    def cycle() -> None:
        connect()
        close()

    return cycle


def sqlalchemy_cycle(pool: QueuePool) -> Callable[[], None]:
    checkout = pool.connect

    def cycle() -> None:
        checkout().close()

    return cycle


def build(path: str) -> dict[str, Callable[[], None]]:
    plain = PooledSqliteDatabase(path, max_connections=POOL_SIZE, timeout=0, check_same_thread=False)
    quiet = InstrumentedPooledSqliteDatabase(path, max_connections=POOL_SIZE, timeout=0)
    heard = InstrumentedPooledSqliteDatabase(path, max_connections=POOL_SIZE, timeout=0)
    heard.events.subscribe(lambda e: None)
    sa = QueuePool(lambda: sqlite3.connect(path, check_same_thread=False), pool_size=POOL_SIZE, max_overflow=0)
    event.listen(sa, "checkout", lambda *a: None)
    event.listen(sa, "checkin", lambda *a: None)
    return {
        "peewee PooledSqliteDatabase": peewee_cycle(plain),
        "poolviz, no listener": peewee_cycle(quiet),
        "poolviz, one listener": peewee_cycle(heard),
        "SQLAlchemy QueuePool + listeners": sqlalchemy_cycle(sa),
    }


def per_cycle_us(cycle: Callable[[], None], cycles: int, threads: int) -> float:
    """Microseconds per cycle (wall time / total cycles) with ``threads`` threads sharing the pool."""
    per_thread = cycles // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            cycle()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return (time.perf_counter() - start) / (per_thread * threads) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20000, help="acquire+release cycles per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cycles = build(str(Path(tmp) / "bench.db"))
        for threads in (1, 8):
            samples: dict[str, list[float]] = {name: [] for name in cycles}
            for cycle in cycles.values():  # warm up: open the connections
                per_cycle_us(cycle, 1000, threads)
            for _ in range(args.rounds):
                for name, cycle in cycles.items():
                    samples[name].append(per_cycle_us(cycle, args.cycles, threads))
            base = statistics.median(samples["peewee PooledSqliteDatabase"])
            print(f"\n{threads} thread(s), {args.cycles} cycles x {args.rounds} rounds, pool of {POOL_SIZE}")
            for name, values in samples.items():
                median = statistics.median(values)
                print(f"  {name:34s} {median:7.2f} us/cycle  {median / base:5.2f}x peewee")


if __name__ == "__main__":
    main()
