"""Cost of one acquire+release cycle: plain peewee, poolviz (0 and 1 listener), SQLAlchemy with listeners.

All four run side by side in this process on the same SQLite file, in
interleaved rounds, single-threaded and with 8 threads; the figure reported
for each is the median over rounds, and ratios are against plain peewee.

Then contention: 64 threads on a pool of 16 (SQLite, ``SELECT 1`` and a ~1 ms
hold), requests served per round by plain peewee and by poolviz, rounds
interleaved (alternating which goes first), the median of the per-round ratios.

Then the realistic cycle on each reachable server: checkout, ``SELECT 1``,
checkin, plain ``PooledMySQLDatabase``/``PooledPostgresqlDatabase`` against
poolviz's, interleaved the same way.

The SQLite figures for one thread are the benchmark thread's CPU time
(``time.thread_time``), so other work on the machine moves the ratios less;
with 8 threads, and on the servers (where the application waits for the
round trip too), wall time.

    .venv/bin/python benchmarks/overhead.py [--cycles 20000] [--rounds 7] [--server-cycles 2000]
        [--contention-rounds 12] [--contention-seconds 1.5] [--only single|contention|all]
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
from typing import Any

from playhouse.db_url import connect as plain_connect
from playhouse.pool import PooledSqliteDatabase
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

import poolviz
from poolviz import InstrumentedPooledSqliteDatabase, servers

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


def query_cycle(db: Any) -> Callable[[], None]:
    connect, close, execute = db.connect, db.close, db.execute_sql

    def cycle() -> None:
        connect()
        execute("SELECT 1").fetchone()
        close()

    return cycle


def per_cycle_us(cycle: Callable[[], None], cycles: int, threads: int, clock: Callable[[], float]) -> float:
    """Microseconds per cycle: one thread timed by ``clock``, or ``threads`` threads sharing the pool (wall time)."""
    if threads == 1:
        start = clock()
        for _ in range(cycles):
            cycle()
        return (clock() - start) / cycles * 1e6
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


def compare(
    cycles: dict[str, Callable[[], None]],
    count: int,
    rounds: int,
    threads: int,
    title: str,
    clock: Callable[[], float] = time.thread_time,
) -> None:
    """Run the cycles in interleaved rounds and print each median against the first."""
    samples: dict[str, list[float]] = {name: [] for name in cycles}
    for cycle in cycles.values():  # warm up: open the connections
        per_cycle_us(cycle, max(count // 20, 100), threads, clock)
    for _ in range(rounds):
        for name, cycle in cycles.items():
            samples[name].append(per_cycle_us(cycle, count, threads, clock))
    base = statistics.median(next(iter(samples.values())))
    print(f"\n{title}, {count} cycles x {rounds} rounds")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:38s} {median:7.2f} us/cycle  {median / base:5.3f}x")


CONTENTION_THREADS = 64
CONTENTION_POOL = 16
HOLD_S = 0.001


def served_in(db: Any, seconds: float, threads: int = CONTENTION_THREADS) -> int:
    """Requests served in ``seconds`` by ``threads`` threads: checkout, ``SELECT 1``, hold ~1 ms, checkin."""
    stop = threading.Event()
    start = threading.Barrier(threads + 1)
    served = [0] * threads

    def work(index: int) -> None:
        connect, close, execute = db.connect, db.close, db.execute_sql
        start.wait()
        count = 0
        while not stop.is_set():
            connect()
            execute("SELECT 1").fetchone()
            time.sleep(HOLD_S)
            close()
            count += 1
        served[index] = count

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(served)


def contention(path: str, rounds: int, seconds: float) -> None:
    """64 threads on a pool of 16: requests served per round, poolviz against plain peewee, interleaved."""
    plain = PooledSqliteDatabase(path, max_connections=CONTENTION_POOL, timeout=30, check_same_thread=False)
    instrumented = InstrumentedPooledSqliteDatabase(path, max_connections=CONTENTION_POOL, timeout=30)
    dbs = {"peewee PooledSqliteDatabase": plain, "poolviz, no listener": instrumented}
    counts: dict[str, list[int]] = {name: [] for name in dbs}
    ratios = []
    for db in dbs.values():  # warm up: open the connections
        served_in(db, seconds / 4)
    for index in range(rounds):
        # Alternate which goes first, so neither always runs on a machine just warmed by the other.
        order = list(dbs.items()) if index % 2 == 0 else list(dbs.items())[::-1]
        for name, db in order:
            counts[name].append(served_in(db, seconds))
        ratios.append(counts["poolviz, no listener"][-1] / counts["peewee PooledSqliteDatabase"][-1])
    print(
        f"\nContention: {CONTENTION_THREADS} threads on a pool of {CONTENTION_POOL}, SQLite, SELECT 1 + "
        f"{HOLD_S * 1000:g} ms hold, {rounds} interleaved rounds of {seconds:g} s (requests served per round)"
    )
    for name, values in counts.items():
        print(f"  {name:38s} median {statistics.median(values):8.0f}  rounds {values}")
    print(f"  poolviz / peewee per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    low, _mid, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    print(f"  median ratio {statistics.median(ratios):.3f} (quartiles {low:.3f} - {high:.3f})")
    plain.close_all()
    instrumented.close_all()


def server_cycles(count: int, rounds: int) -> None:
    """Checkout, SELECT 1, checkin on each reachable server: plain peewee against poolviz."""
    for label, url in (("MariaDB", servers.mysql_url()), ("PostgreSQL", servers.postgres_url())):
        problem = servers.reachable(url)
        if problem:
            print(f"\n{label}: skipped ({problem})")
            continue
        plain = plain_connect(url, max_connections=POOL_SIZE)
        instrumented = poolviz.connect(url, max_connections=POOL_SIZE)
        try:
            compare(
                {f"peewee, {label}": query_cycle(plain), f"poolviz, {label}": query_cycle(instrumented)},
                count,
                rounds,
                1,
                f"checkout + SELECT 1 + checkin on {label}, 1 thread, wall time (what the application waits)",
                time.perf_counter,
            )
        finally:
            plain.close_all()
            instrumented.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20000, help="acquire+release cycles per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    parser.add_argument("--server-cycles", type=int, default=2000, help="query cycles per round on each server")
    parser.add_argument("--contention-rounds", type=int, default=12, help="interleaved rounds of the contention case")
    parser.add_argument("--contention-seconds", type=float, default=1.5, help="length of one contention round")
    parser.add_argument(
        "--only", choices=("single", "contention", "all"), default="all", help="run one part (default: all)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in ("single", "all"):
            cycles = build(str(Path(tmp) / "bench.db"))
            for threads in (1, 8):
                compare(
                    cycles,
                    args.cycles,
                    args.rounds,
                    threads,
                    f"SQLite acquire+release, {threads} thread(s), pool of {POOL_SIZE}",
                )
        if args.only in ("contention", "all"):
            contention(str(Path(tmp) / "contention.db"), args.contention_rounds, args.contention_seconds)
    if args.only == "all":
        server_cycles(args.server_cycles, args.rounds)


if __name__ == "__main__":
    main()
