"""The live numbers while workers starve: waits still going count, and per-worker service shows who is served.

peewee's pool lets a thread that checks a connection in and asks again at once
take it straight back (barging), so with 8 workers, 2 connections and no think
time two workers do nearly all the work and six wait for the whole run. A wait's
length is only written down when it ends, so numbers built from finished waits
read 0 ms while six workers have waited for seconds. These tests run that
starvation on SQLite and check, while it goes on, the numbers the dashboard
computes in Python and the ones the browser's view (poolviz/live/js) computes from the batches
the kernel ships (run in node, no browser needed), against :mod:`poolviz.data.analysis`.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NODE_INGEST, run_view_module

import poolviz
from poolviz.data import analysis
from poolviz.data.frames import events_to_frame
from poolviz.events import Event
from poolviz.live.packing import EventPacker, wire_format
from poolviz.live.shared import closed_loop_workers, frame_stats
from poolviz.live.view import Shipper
from poolviz.testing import wait_until
from poolviz.workload import WorkloadSpec

pytest.importorskip("anywidget")

WORKERS, POOL, HOLD_MS = 8, 2, 40
DEADLINE_S = 40.0
STARVED_FOR_S = 1.2


def poll(condition: Callable[[], Any]) -> Any:
    """The first truthy value of ``condition()`` within DEADLINE_S; fails the test when none comes."""
    return wait_until(condition, DEADLINE_S, every=0.1, what="starvation")


@pytest.fixture
def starving(tmp_path: Path) -> Iterator[Any]:
    """8 workers on a pool of 2 with 40 ms holds and no think time on SQLite, running until the test ends."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'starve.db'}", max_connections=POOL, timeout=60)
    stop = threading.Event()
    spec = WorkloadSpec(workers=WORKERS, hold_ms=HOLD_MS, think_ms=0, distribution="exp", duration=120, requests=None)
    runner = threading.Thread(target=spec.run, args=(db,), kwargs={"stop": stop}, daemon=True)
    runner.start()
    try:
        yield db
    finally:
        stop.set()
        runner.join(30)
        db.close_all()
        assert not runner.is_alive()


def oldest_wait_now(db: Any) -> float:
    waiting = analysis.waits_in_progress(db.events.to_frame(), now=db.events.now())
    return float(waiting["age_s"].max()) if len(waiting) else 0.0


def test_dashboard_numbers_show_the_oldest_wait_while_workers_starve(make_dashboard: Any) -> None:
    """Mid-run, dash.numbers() says who waits, for how long, and that most workers were never served."""
    dash = make_dashboard(workers=WORKERS, max_connections=POOL, hold_ms=HOLD_MS, think_ms=0, duration=120)
    assert dash.run()
    numbers = poll(lambda: (n := dash.numbers()) and n["oldest_wait_s"] > STARVED_FOR_S and n)
    assert numbers["running"]
    assert numbers["waiting_now"] > 0 and numbers["requests_waiting"] > 0
    # Percentiles count the waits still going: the tail is never 0 ms while a worker has waited over a second.
    assert numbers["wait_p99_s"] > 0.5 and numbers["wait_max_s"] >= numbers["oldest_wait_s"]
    assert numbers["workers"] == WORKERS
    assert numbers["checkouts_min"] == 0 and numbers["starved"] >= 1
    assert numbers["checkouts_max"] > 10
    assert numbers["longest_wait_s"] >= numbers["oldest_wait_s"]
    assert numbers["longest_wait_thread"] in closed_loop_workers(WORKERS)
    assert dash.stop()


def test_frame_stats_count_a_wait_still_going_and_a_worker_never_served() -> None:
    """A trace where w-2 has waited 3 s and w-3 never asked: the numbers say so, not 0 ms."""

    def event(seq: int, t: float, kind: str, thread: str, wait_s: float = 0.0, waiting: int = 0) -> Event:
        conn = 0 if kind == "wait" else 1
        return Event(seq, t, kind, conn, thread, wait_s, 0.0, False, "", "", 1, 0, waiting)

    trace = [
        event(0, 0.0, "checkout", "w-1"),
        event(1, 0.5, "wait", "w-2", waiting=1),
        event(2, 1.0, "checkin", "w-1", waiting=1),
        event(3, 1.0, "checkout", "w-1", waiting=1),
        event(4, 2.0, "checkin", "w-1", waiting=1),
        event(5, 2.0, "checkout", "w-1", waiting=1),
    ]
    stats = frame_stats(events_to_frame(trace), now=3.5, workers=["w-1", "w-2", "w-3"])
    assert stats["waiting_now"] == 1 and stats["oldest_wait_s"] == pytest.approx(3.0)
    assert stats["wait_max_s"] == pytest.approx(3.0) and stats["wait_p99_s"] > 2.0
    assert (stats["checkouts_min"], stats["checkouts_median"], stats["checkouts_max"]) == (0, 0, 3)
    assert stats["starved"] == 2
    assert (stats["longest_wait_thread"], stats["longest_wait_s"]) == ("w-2", pytest.approx(3.0))


NODE_RUNNER = (
    NODE_INGEST
    + """
const out = input.queries.map((q) => {
  const hi = q.upto === null ? s.n : s.cols.t.findIndex((t, i) => i >= s.n || t > q.upto);
  const end = q.upto === null ? s.n : (hi < 0 ? s.n : hi);
  const sv = q.upto === null ? s.service : view.serviceUpTo(s, end);
  const n = view.viewNumbers(s, q.t0, q.tEnd, end, sv, q.workers);
  return { waiting: n.waiting, ongoing: n.ongoing, oldest: n.oldest, p50: n.p50, p99: n.p99, max: n.max,
    workers: n.workers, min: n.checkoutsMin, median: n.checkoutsMedian, max_checkouts: n.checkoutsMax,
    starved: n.starved, longest: n.longest.waitMax, longestName: n.longest.name, held: s.n };
});
process.stdout.write(JSON.stringify(out));
"""
)


class PackingSink:
    """Packs what a Shipper sends as LiveView.send_batch does, keeping each batch for the node runner."""

    def __init__(self) -> None:
        self.packer = EventPacker()
        self.batches: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, events: list[Event], **info: Any) -> None:
        header, buffers = self.packer.pack(events)
        header.update(info)
        with self.lock:
            self.batches.append({"header": header, "buffers": [base64.b64encode(b).decode() for b in buffers]})


def run_view_js(batches: list[dict[str, Any]], queries: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = run_view_module(
        NODE_RUNNER, {"wire": wire_format(), "batches": batches, "queries": queries}, tmp_path
    )
    return answers


def test_view_js_counts_ongoing_waits_and_service_as_analysis_does_while_workers_starve(
    starving: Any, tmp_path: Path
) -> None:
    """Batches shipped mid-starvation, fed to the view: waiting, oldest wait and per-worker service match analysis."""
    db = starving
    sink = PackingSink()
    shipper = Shipper(db.events, sink).start()
    try:
        poll(lambda: oldest_wait_now(db) > STARVED_FOR_S)
        shipper.ship(force=True)
        with sink.lock:
            batches = list(sink.batches)
        cursor = shipper.next_seq
    finally:
        shipper.stop()
    now = batches[-1]["header"]["now"]
    shipped = db.events.to_frame()
    shipped = shipped.loc[shipped["seq"] < cursor] if "seq" in shipped else shipped.iloc[:cursor]
    workers = closed_loop_workers(WORKERS)
    # A cursor between two events well apart, so microsecond times in the batches cannot move an event across it.
    times = shipped["t"].to_numpy()
    gap = next(k for k in range(len(times) // 2, len(times) - 1) if times[k + 1] - times[k] > 1e-3)
    middle = float(times[gap] + times[gap + 1]) / 2
    live, replay = run_view_js(
        batches,
        [
            {"t0": max(0.0, now - 10.0), "tEnd": now, "upto": None, "workers": workers},
            {"t0": 0.0, "tEnd": middle, "upto": middle, "workers": workers},
        ],
        tmp_path,
    )
    assert live["held"] == len(shipped)
    waiting = analysis.waits_in_progress(shipped, now=now)
    fair = analysis.fairness_stats(shipped, workers, now=now)
    assert live["waiting"] > 0 and len(live["ongoing"]) == len(waiting) > 0
    assert live["oldest"] == pytest.approx(float(waiting["age_s"].max()), abs=2e-3)
    assert live["oldest"] > STARVED_FOR_S
    assert live["p99"] > 0.5 and live["max"] >= live["oldest"] - 1e-9
    assert (live["workers"], live["min"], live["median"], live["max_checkouts"], live["starved"]) == (
        fair["workers"],
        fair["checkouts_min"],
        fair["checkouts_median"],
        fair["checkouts_max"],
        fair["starved"],
    )
    assert live["min"] == 0 and live["starved"] >= 1
    assert live["longest"] == pytest.approx(fair["longest_wait_s"], abs=2e-3)
    # A replay's cursor recounts from the held events: the same figures as analysis on the trace up to it.
    upto = shipped.loc[shipped["t"] <= middle]
    fair_then = analysis.fairness_stats(upto, workers, now=middle)
    assert (replay["min"], replay["median"], replay["max_checkouts"]) == (
        fair_then["checkouts_min"],
        fair_then["checkouts_median"],
        fair_then["checkouts_max"],
    )
    assert len(replay["ongoing"]) == len(analysis.waits_in_progress(upto, now=middle))
