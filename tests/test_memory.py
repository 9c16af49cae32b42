"""A bounded EventLog stays bounded: 10 million events through a capacity of one million.

Events are recorded straight into the log (as a pool does, holding its lock),
so the test measures the log and nothing else. Counters must still count
every event, and the drop count must be exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from poolviz.events import EventLog
from poolviz.testing import fill

pytestmark = pytest.mark.slow

CAPACITY = 1_000_000
TOTAL = 10_000_000
BOUND_BYTES = 400 * CAPACITY  # 400 bytes an event: about twice what one costs (a 13-field tuple and its values)
ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter so its peak RSS is the log's alone, not the test session's.
TEN_MILLION = """
import json, resource, sys
from poolviz.events import EventLog

capacity, total = int(sys.argv[1]), int(sys.argv[2])
log = EventLog(capacity=capacity)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
record = log.record
with log.lock:
    for _ in range(total):
        record("checkout", 1, "worker", 1, 0, 0)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
stats = log.get_stats()
print(json.dumps({"peak_rss_growth_bytes": peak_kb * 1024, "held": len(log), "dropped": log.dropped,
                  "requests_num": stats["requests_num"], "events_dropped": stats["events_dropped"]}))
"""


@pytest.mark.timeout(180)
def test_ten_million_events_keep_the_log_at_capacity() -> None:
    """10M events through capacity 1M: peak RSS growth under 400 MB, exact drop count, every event counted."""
    done = subprocess.run(
        [sys.executable, "-c", TEN_MILLION, str(CAPACITY), str(TOTAL)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["held"] == CAPACITY
    assert result["dropped"] == result["events_dropped"] == TOTAL - CAPACITY
    assert result["requests_num"] == TOTAL
    assert result["peak_rss_growth_bytes"] < BOUND_BYTES
    print(f"\n10M events, capacity 1M: peak RSS growth {result['peak_rss_growth_bytes'] / 1e6:.0f} MB")


@pytest.mark.timeout(120)
def test_memory_stops_growing_once_the_log_is_full() -> None:
    """Traced memory after 2M events is no more than at the moment the log first held 1M."""
    log = EventLog(capacity=CAPACITY)
    tracemalloc.start()
    try:
        fill(log, CAPACITY)
        at_capacity = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fill(log, CAPACITY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(log) == CAPACITY and log.dropped == CAPACITY
    assert log.get_stats()["requests_num"] == 2 * CAPACITY
    assert peak < BOUND_BYTES
    assert peak <= at_capacity * 1.01, f"grew from {at_capacity / 1e6:.0f} MB to a peak of {peak / 1e6:.0f} MB"
    print(
        f"\ntracemalloc: {at_capacity / 1e6:.0f} MB at capacity ({at_capacity / CAPACITY:.0f} B/event), "
        f"peak {peak / 1e6:.0f} MB after twice as many events"
    )
