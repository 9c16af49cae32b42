"""peewee's pool barges: a thread that checks in and asks again at once goes ahead of the threads already waiting.

Notebook 04 (section 4) explains the mechanism in peewee's ``connect()`` and
measures it; these tests pin what it shows. The runs end after a number of
requests (counted by the workload's progress callback), never after a sleep,
and the margins are wide: a fair pool would give each of 6 workers a sixth
of the checkouts, barging gives nearly all of them to one or two.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import race_until

import poolviz
from poolviz.data import analysis
from poolviz.testing import wait_until

# Races of hundreds of requests each: make test runs them, make check leaves them out.
pytestmark = pytest.mark.slow

WORKERS = 6
POOL = 2
REQUESTS = 300  # the run stops once this many requests are done
NAMES = [f"worker-{i}" for i in range(WORKERS)]


def _race(tmp_path: Path, think: Any) -> Any:
    """WORKERS threads on a pool of POOL, 5 ms holds, stopped after REQUESTS requests; the run's events."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'race.db'}", max_connections=POOL, timeout=60)
    try:
        result = race_until(db, WORKERS, REQUESTS, think=think, seed=3)
    finally:
        db.close_all()
    assert not result.requests_failed
    return result.events


def test_with_no_think_time_the_busiest_workers_take_nearly_every_checkout(
    tmp_path: Path, no_new_threads: None
) -> None:
    """Think 0: the two busiest of six workers make at least 80% of the checkouts (a fair pool: 33%)."""
    frame = _race(tmp_path, think=0.0)
    table = analysis.fairness(frame, threads=NAMES)
    total = table["checkouts"].sum()
    assert total >= REQUESTS
    assert table["checkouts"].nlargest(POOL).sum() >= 0.8 * total
    stats = analysis.fairness_stats(frame, threads=NAMES)
    assert stats["checkouts_min"] <= 0.1 * total / WORKERS
    assert stats["jain_index"] < 0.6


def test_with_no_think_time_some_worker_waits_far_longer_than_the_mean(tmp_path: Path, no_new_threads: None) -> None:
    """Think 0: the longest single wait is at least ten times the mean wait, and the median request does not wait."""
    frame = _race(tmp_path, think=0.0)
    waits = analysis.wait_stats(frame)
    stats = analysis.fairness_stats(frame, threads=NAMES)
    assert waits["p50_s"] == 0
    assert stats["longest_wait_s"] >= 10 * waits["mean_s"]
    # The starved worker waited for a good part of the run: longer than 20 holds back to back.
    assert stats["longest_wait_s"] >= 20 * 0.005


def test_with_a_little_think_time_every_worker_is_served(tmp_path: Path, no_new_threads: None) -> None:
    """Think 2 ms: the returning thread is asleep when the woken waiter retries, so every worker gets its turns."""
    frame = _race(tmp_path, think="fixed:0.002")
    stats = analysis.fairness_stats(frame, threads=NAMES)
    fair_share = sum(analysis.fairness(frame, threads=NAMES)["checkouts"]) / WORKERS
    assert stats["starved"] == 0
    assert stats["checkouts_min"] >= 0.4 * fair_share
    assert stats["top_share"] <= 0.35
    assert stats["jain_index"] > 0.85


def test_a_thread_that_checks_in_and_asks_again_at_once_goes_ahead_of_a_waiter(tmp_path: Path) -> None:
    """Pool of 1, a caller waiting: the holder's check-in wakes it, yet the holder's next connect() wins."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'one.db'}", max_connections=1, timeout=60)
    rounds, retaken = 10, 0
    try:
        db.connect()
        for _ in range(rounds):
            got = threading.Event()

            def waiter(got: threading.Event = got) -> None:
                with db.connection_context():
                    got.set()

            seq = db.events.last.seq
            thread = threading.Thread(target=waiter, name="waiter")
            thread.start()
            wait_until(
                lambda seq=seq: any(e.kind == "wait" and e.thread == "waiter" for e in db.events.since(seq)),
                every=0.001,
                what="the waiter waiting",
            )
            db.close()  # check in: peewee notifies the waiting thread ...
            db.connect()  # ... and asks again straight away
            retaken += not got.is_set()
            db.close()  # let the waiter have it this time
            thread.join(10)
            assert got.is_set() and not thread.is_alive()
            db.connect()
    finally:
        db.close()
        db.close_all()
    assert retaken >= rounds - 2


@pytest.mark.parametrize("think", [0.0, "fixed:0.002"])
def test_barging_never_loses_a_request(tmp_path: Path, think: Any) -> None:
    """However unevenly it serves, every request that was made got a checkout and a check-in."""
    frame = _race(tmp_path, think=think)
    assert (frame["kind"] == "checkout").sum() == (frame["kind"] == "checkin").sum()
    assert analysis.timeouts(frame) == 0
