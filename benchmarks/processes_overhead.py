"""What shipping events from worker processes costs: throughput with and without it, in the same run.

Each round runs the same closed loop in N worker processes twice on SQLite
(hold 0, so the pool's own work dominates and shipping is as visible as it
can be): once with every event shipped to the parent and merged, once with
events left in the workers. Rounds alternate the order; the ratio is printed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import poolviz
from poolviz.workload import ensure_schema
from poolviz.workload.processes import run_processes


def main() -> None:
    processes = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    url = f"sqlite+pool:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    db = poolviz.connect(url, max_connections=1)
    ensure_schema(db)
    db.close_all()
    rates: dict[bool, list[float]] = {True: [], False: []}
    events = 0
    for round_ in range(3):
        for ship in (True, False) if round_ % 2 == 0 else (False, True):
            result = run_processes(url, processes, 4, 300, 0, max_connections=4, ship=ship, wait_timeout=300)
            rates[ship].append(result.throughput_rps)
            if ship:
                events = len(result.events)
    with_, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"{processes} processes x 4 threads x 300 requests, SQLite, hold 0 (median of 3):")
    print(f"  without shipping {without:8.0f} requests/s")
    print(f"  with shipping    {with_:8.0f} requests/s ({events} events merged per run)")
    print(f"  ratio with/without: {with_ / without:.2f}")


if __name__ == "__main__":
    main()
