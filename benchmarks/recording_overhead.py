"""What recording costs the application: the realistic cycle with and without ``poolviz.record``.

On each reachable server (PostgreSQL, MariaDB), three pools of the same size
side by side in this process: plain peewee (``PooledPostgresqlDatabase`` /
``PooledMySQLDatabase``), poolviz's instrumented pool, and an instrumented
pool recorded to a temporary directory by ``poolviz.record`` (its flusher
thread writing every 50 ms). The cycle is the application's: checkout,
``SELECT 1``, checkin. Rounds are interleaved, the order rotating each round;
each figure is the median over rounds of wall time per cycle (what the
application waits), with 1 thread and with 8 threads sharing the pool, and
the ratios are against plain peewee (the target: recording <= 1.05x), both
the ratio of medians and the median of the per-round ratios. The same rounds
are also reported as this process's CPU time per cycle (every thread's, the
flusher's included, each round ending after a pause long enough for the
flusher to write it): steadier than wall time on a busy machine, and exactly
what recording adds to the application's process. Last, the flusher thread's
own CPU time per event written, and first, its CPU per event alone (the
thread's own CPU time writing out a log of 100,000 events at once), and
one instrumented pool whose rounds alternate with and without a recorder
(the steadiest view of what recording alone adds: the same connections).

    .venv/bin/python benchmarks/recording_overhead.py [--cycles 2000] [--rounds 9] [--threads 1,8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playhouse.db_url import connect as plain_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import per_cycle_us, query_cycle

import poolviz
from poolviz import servers
from poolviz.recording.writer import FLUSH_PERIOD_S

POOL_SIZE = 8
NAMES = ("plain peewee", "poolviz instrumented", "instrumented + record")


def measure(
    cycles: dict[str, Callable[[], None]], count: int, rounds: int, threads: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Microseconds per cycle of each, per round, as wall time and as this process's CPU time (every thread's,
    the recorder's flusher included): interleaved, the order rotating so none always goes first."""
    wall: dict[str, list[float]] = {name: [] for name in cycles}
    cpu: dict[str, list[float]] = {name: [] for name in cycles}
    for cycle in cycles.values():  # warm up: open the connections
        per_cycle_us(cycle, max(count // 10, 50), threads, time.perf_counter)
    names = list(cycles)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.process_time()
            wall[name].append(per_cycle_us(cycles[name], count, threads, time.perf_counter))
            # The flusher writes up to 50 ms after the last cycle: let it, and count its CPU in this round.
            time.sleep(2 * FLUSH_PERIOD_S)
            cpu[name].append((time.process_time() - start) / count * 1e6)
    return wall, cpu


def report(title: str, samples: dict[str, list[float]]) -> None:
    base_name = NAMES[0]
    base = statistics.median(samples[base_name])
    print(f"\n{title}")
    for name, values in samples.items():
        median = statistics.median(values)
        per_round = [v / b for v, b in zip(values, samples[base_name], strict=True)]
        print(
            f"  {name:24s} {median:8.1f} us/cycle  {median / base:5.3f}x  "
            f"(median per-round ratio {statistics.median(per_round):5.3f})"
        )
    alone, recorded = samples[NAMES[1]], samples[NAMES[2]]
    own = [r / a for r, a in zip(recorded, alone, strict=True)]
    print(
        f"  recording's own cost: {statistics.median(recorded) - statistics.median(alone):+.1f} us/cycle, "
        f"{statistics.median(recorded) / statistics.median(alone):5.3f}x the instrumented pool "
        f"(median per-round ratio {statistics.median(own):5.3f})"
    )


def server(label: str, url: str, args: argparse.Namespace, directory: Path) -> None:
    plain = plain_connect(url, max_connections=POOL_SIZE)
    instrumented = poolviz.connect(url, max_connections=POOL_SIZE)
    recorded: Any = poolviz.connect(url, max_connections=POOL_SIZE)
    recorder = poolviz.record(recorded, directory / label, name="bench")
    try:
        cycles = dict(zip(NAMES, map(query_cycle, (plain, instrumented, recorded)), strict=True))
        for threads in args.threads:
            wall, cpu = measure(cycles, args.cycles, args.rounds, threads)
            what = f"{label}: checkout + SELECT 1 + checkin, {threads} thread(s), pool of {POOL_SIZE}, "
            what += f"{args.cycles} cycles x {args.rounds} rounds"
            report(f"{what}, wall time (what the application waits)", wall)
            report(f"{what}, this process's CPU time (all its threads)", cpu)
    finally:
        flusher_cpu = time.clock_gettime(time.pthread_getcpuclockid(recorder._thread.ident or 0))
        recorder.stop()
        for db in (plain, instrumented, recorded):
            db.close_all()
    stats = recorder.stats()
    print(f"  recorder's flusher thread: {flusher_cpu / max(stats['events_written'], 1) * 1e6:.2f} us CPU per event")
    print(
        f"  recorder: {stats['events_written']} events in {stats['batches']} lines, "
        f"{stats['bytes_written'] / 1e6:.1f} MB, {stats['segments']} segment(s), dropped {stats['dropped']}"
    )


def same_pool(label: str, url: str, count: int, rounds: int, directory: Path) -> None:
    """One instrumented pool, pairs of rounds without and with a recorder: no second pool, no other connections.

    A recorded round starts a recorder before the clocks start and stops it (its last write and end marker,
    done by the calling thread) before they stop; the pair's order alternates. Per pair, the ratio of wall
    time and of the application thread's own CPU time (does recording make it work more?); the flusher
    thread's CPU per cycle beside. Medians and quartiles over pairs.
    """
    db = poolviz.connect(url, max_connections=POOL_SIZE)
    cycle = query_cycle(db)
    per_cycle_us(cycle, max(count // 10, 50), 1, time.perf_counter)
    wall: list[float] = []
    cpu: list[float] = []
    flusher: list[float] = []
    try:
        for index in range(rounds):
            measured: dict[bool, tuple[float, float]] = {}
            for recording in (False, True) if index % 2 else (True, False):
                recorder = poolviz.record(db, directory / label / f"same{index}", name="same") if recording else None
                start_cpu, start = time.thread_time(), time.perf_counter()
                for _ in range(count):
                    cycle()
                if recorder is not None:
                    # Read while the thread lives; the last write, in stop(), is the calling thread's.
                    flusher.append(time.clock_gettime(time.pthread_getcpuclockid(recorder._thread.ident or 0)))
                    recorder.stop()
                    flusher[-1] = flusher[-1] / count * 1e6
                measured[recording] = (time.perf_counter() - start, time.thread_time() - start_cpu)
            wall.append(measured[True][0] / measured[False][0])
            cpu.append(measured[True][1] / measured[False][1])
    finally:
        db.close_all()
    print(f"\n{label}, one instrumented pool, {rounds} pairs of rounds without and with recording, {count} cycles each")
    for what, ratios in (("wall time", wall), ("app thread CPU", cpu)):
        low, median, high = statistics.quantiles(ratios, n=4)
        print(f"  {what:14s} with / without: median {median:5.3f} (quartiles {low:.3f} - {high:.3f})")
    print(f"  flusher thread CPU {statistics.median(flusher):.2f} us/cycle (on another core when one is free)")


def flusher_alone(events: int, rounds: int, directory: Path) -> None:
    """The flusher's CPU per event, alone: a log holding ``events`` checkouts and check-ins written out at once."""
    from poolviz.events import EventLog
    from poolviz.recording.writer import Recorder

    samples = []
    for index in range(rounds):
        log = EventLog()
        recorder = Recorder(log, directory / f"alone{index}", "alone", period_s=3600)
        with log.lock:
            for i in range(events // 2):
                now = time.perf_counter()
                log.write(now, "checkout", 1 + i % 8, "worker-3", 1, 7, 0, None)
                log.write(now, "checkin", 1 + i % 8, "worker-3", 0, 8, 0, now - 0.0002)
        start = time.thread_time()
        recorder.flush()
        samples.append((time.thread_time() - start) / events * 1e6)
        recorder.stop()
    print(
        f"\nThe flusher alone: {events} events read, encoded and written, {rounds} rounds: "
        f"median {statistics.median(samples):.2f} us CPU per event (best {min(samples):.2f}), "
        "about twice that per checkout + checkin cycle"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=2000, help="query cycles per round")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds; the median is reported")
    parser.add_argument(
        "--threads",
        type=lambda text: [int(t) for t in text.split(",")],
        default=[1, 8],
        help="comma-separated thread counts to run (default: 1,8)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flusher_alone(100_000, 7, Path(tmp))
        for label, url in (("PostgreSQL", servers.postgres_url()), ("MariaDB", servers.mysql_url())):
            problem = servers.reachable(url)
            if problem:
                print(f"\n{label}: skipped ({problem})")
                continue
            same_pool(label, url, args.cycles // 2, 2 * args.rounds + 1, Path(tmp))
            server(label, url, args, Path(tmp))


if __name__ == "__main__":
    main()
