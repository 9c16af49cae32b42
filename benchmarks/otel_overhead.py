"""What publishing OpenTelemetry metrics costs the application: a pool with and without ``poolviz.otel.observe``.

On PostgreSQL, two poolviz pools of the same size side by side in this
process: one instrumented only, one also observed (``poolviz.otel.observe``,
its drain thread at the default 1 s) through a meter provider whose periodic
reader collects every second into an exporter that discards, as an
application exporting to a collector would. Two cycles:

* realistic: checkout, ``SELECT 1``, checkin (what an application does);
* bare: checkout and checkin only (the pool's own path, the worst case).

Rounds are interleaved, the order alternating; each figure is the median over
rounds of the wall time per cycle (what the application waits) and of the
process CPU time per cycle (every thread: the drain and the exporter
included), with the ratios observed / instrumented. Each observed round ends
with a drain, timed with it, so every event of the round is published at its
cost (and none of it lands in the other pool's round): the wall figures are an
upper bound, as in an application the drain runs while the pool waits on the
server.

    .venv/bin/python benchmarks/otel_overhead.py [--cycles 3000] [--bare-cycles 30000] [--rounds 9] [--threads 1,8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from overhead import per_cycle_us, query_cycle

import poolviz
from poolviz import otel, servers

POOL_SIZE = 8
NAMES = ("instrumented", "instrumented + otel")


class Discard(MetricExporter):
    """An exporter that counts the batches it is given and keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.exports = 0

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exports += 1
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def bare_cycle(db: Any) -> Callable[[], None]:
    connect, close = db.connect, db.close

    def cycle() -> None:
        connect()
        close()

    return cycle


def timed(cycle: Callable[[], None], count: int, threads: int, after: Callable[[], Any]) -> tuple[float, float]:
    """``(wall us, process CPU us)`` per cycle, ``after()`` (publishing what is left) included."""
    cpu, wall = time.process_time(), time.perf_counter()
    per_cycle_us(cycle, count, threads, time.perf_counter)
    after()
    return (time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6


def measure(
    cycles: dict[str, Callable[[], None]], count: int, rounds: int, threads: int, after: dict[str, Callable[[], Any]]
) -> dict[str, list[Any]]:
    samples: dict[str, list[Any]] = {name: [] for name in cycles}
    for name, cycle in cycles.items():  # warm up: open the connections
        per_cycle_us(cycle, max(count // 10, 50), threads, time.perf_counter)
        after[name]()
    names = list(cycles)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            samples[name].append(timed(cycles[name], count, threads, after[name]))
    return samples


def report(title: str, samples: dict[str, list[Any]]) -> None:
    base = samples[NAMES[0]]
    base_wall = statistics.median(w for w, _ in base)
    base_cpu = statistics.median(c for _, c in base)
    print(f"\n{title}")
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        per_round = statistics.median(v[0] / b[0] for v, b in zip(values, base, strict=True))
        print(
            f"  {name:22s} wall {wall:8.2f} us/cycle {wall / base_wall:6.3f}x (median per-round {per_round:6.3f}x)"
            f"   cpu {cpu:8.2f} us/cycle {cpu / base_cpu:6.3f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=3000, help="realistic cycles per round")
    parser.add_argument("--bare-cycles", type=int, default=30000, help="bare cycles per round")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds; the median is reported")
    parser.add_argument(
        "--threads", type=lambda text: [int(t) for t in text.split(",")], default=[1, 8], help="thread counts"
    )
    args = parser.parse_args()
    url = servers.postgres_url()
    problem = servers.reachable(url)
    if problem:
        print(f"PostgreSQL: skipped ({problem})")
        return
    exporter = Discard()
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=1000)])
    instrumented = poolviz.connect(url, max_connections=POOL_SIZE)
    observed = poolviz.connect(url, max_connections=POOL_SIZE)
    metrics = otel.observe(observed, provider, pool_name="bench")
    pools = (instrumented, observed)
    after = dict(zip(NAMES, (lambda: None, metrics.drain), strict=True))
    try:
        for threads in args.threads:
            realistic = dict(zip(NAMES, map(query_cycle, pools), strict=True))
            report(
                f"PostgreSQL: checkout + SELECT 1 + checkin, {threads} thread(s), pool of {POOL_SIZE}, "
                f"{args.cycles} cycles x {args.rounds} rounds",
                measure(realistic, args.cycles, args.rounds, threads, after),
            )
        bare = dict(zip(NAMES, map(bare_cycle, pools), strict=True))
        report(
            f"PostgreSQL: checkout + checkin (bare), 1 thread, {args.bare_cycles} cycles x {args.rounds} rounds",
            measure(bare, args.bare_cycles, args.rounds, 1, after),
        )
    finally:
        metrics.close()
        provider.shutdown()
        for db in pools:
            db.close_all()
    print(f"\n  otel: {metrics.drained} events published, {metrics.lost} lost, {exporter.exports} exports")


if __name__ == "__main__":
    main()
