"""Specifications for poolviz.data.analysis, mostly on a small trace worked out by hand."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pandas as pd
import pytest
from playhouse.pool import MaxConnectionsExceeded

from poolviz.data import analysis
from poolviz.data.frames import events_to_frame
from poolviz.events import Event
from poolviz.live.shared import frame_stats
from poolviz.testing import InstrumentedFakePooledDatabase, run_threads, wait_until


def ev(
    seq: int,
    t: float,
    kind: str,
    conn: int = 0,
    thread: str = "",
    *,
    counts: tuple[int, int, int],
    wait_s: float = 0.0,
    duration_s: float = 0.0,
    reused: bool = False,
    reason: str = "",
) -> Event:
    in_use, idle, waiting = counts
    return Event(seq, t, kind, conn, thread, wait_s, duration_s, reused, reason, "", in_use, idle, waiting)


# A pool of max_connections=2 and four threads, times in exact binary fractions:
#   A holds conn 1 from 0.5 to 3.0;  B holds conn 2 from 1.0 until it is closed as stale at 4.5;
#   C waits from 1.5, gets conn 1 at 3.0 and returns it at 5.0;  D waits from 2.0 and times out at 4.0;
#   A takes conn 1 again at 5.5 and still holds it at the end;  B opens conn 3 at 6.0, returns it at 7.0.
HAND_EVENTS = [
    ev(0, 0.5, "connect", 1, "A", counts=(0, 0, 0), duration_s=0.0),
    ev(1, 0.5, "checkout", 1, "A", counts=(1, 0, 0)),
    ev(2, 1.0, "connect", 2, "B", counts=(1, 0, 0)),
    ev(3, 1.0, "checkout", 2, "B", counts=(2, 0, 0)),
    ev(4, 1.5, "wait", 0, "C", counts=(2, 0, 1)),
    ev(5, 2.0, "wait", 0, "D", counts=(2, 0, 2)),
    ev(6, 3.0, "checkin", 1, "A", counts=(1, 1, 2), duration_s=2.5),
    ev(7, 3.0, "checkout", 1, "C", counts=(2, 0, 1), wait_s=1.5, reused=True),
    ev(8, 4.0, "timeout", 0, "D", counts=(2, 0, 0), wait_s=2.0),
    ev(9, 4.5, "close", 2, "B", counts=(1, 0, 0), duration_s=3.5, reason="stale"),
    ev(10, 5.0, "checkin", 1, "C", counts=(0, 1, 0), duration_s=2.0),
    ev(11, 5.5, "checkout", 1, "A", counts=(1, 0, 0), reused=True),
    ev(12, 6.0, "connect", 3, "B", counts=(1, 0, 0)),
    ev(13, 6.0, "checkout", 3, "B", counts=(2, 0, 0)),
    ev(14, 7.0, "checkin", 3, "B", counts=(1, 1, 0), duration_s=1.0),
]


@pytest.fixture
def hand() -> pd.DataFrame:
    """The hand-worked trace as ``EventLog.to_frame()`` would give it."""
    return events_to_frame(HAND_EVENTS, {"dropped": 3, "max_connections": 2})


def test_hold_intervals_pair_each_checkout_with_its_end(hand: pd.DataFrame) -> None:
    """Each checkout becomes one hold ending at its connection's next checkin or close, in checkout order."""
    holds = analysis.hold_intervals(hand)
    assert list(holds.columns) == [*analysis.HOLD_COLUMNS]
    closed = holds.loc[~holds["open"]]
    assert closed.to_dict("records") == [
        {
            "conn": 1,
            "thread": "A",
            "start": 0.5,
            "end": 3.0,
            "duration": 2.5,
            "wait_s": 0.0,
            "end_kind": "checkin",
            "end_reason": "",
            "open": False,
        },
        {
            "conn": 2,
            "thread": "B",
            "start": 1.0,
            "end": 4.5,
            "duration": 3.5,
            "wait_s": 0.0,
            "end_kind": "close",
            "end_reason": "stale",
            "open": False,
        },
        {
            "conn": 1,
            "thread": "C",
            "start": 3.0,
            "end": 5.0,
            "duration": 2.0,
            "wait_s": 1.5,
            "end_kind": "checkin",
            "end_reason": "",
            "open": False,
        },
        {
            "conn": 3,
            "thread": "B",
            "start": 6.0,
            "end": 7.0,
            "duration": 1.0,
            "wait_s": 0.0,
            "end_kind": "checkin",
            "end_reason": "",
            "open": False,
        },
    ]
    assert list(holds["conn"]) == [1, 2, 1, 1, 3]


def test_hold_still_open_at_the_end_has_nan_end_and_open_flag(hand: pd.DataFrame) -> None:
    """A checkout never returned within the trace has end and duration NaN, empty end kind, open True."""
    still_held = analysis.hold_intervals(hand).iloc[3]
    assert (still_held["conn"], still_held["thread"], still_held["start"]) == (1, "A", 5.5)
    assert math.isnan(still_held["end"]) and math.isnan(still_held["duration"])
    assert (still_held["end_kind"], still_held["end_reason"], still_held["open"]) == ("", "", True)


def test_close_of_an_idle_connection_ends_no_hold() -> None:
    """A close that follows a checkin (close_idle, stale at checkout) leaves the hold ended by the checkin."""
    frame = events_to_frame(
        [
            ev(0, 0.0, "connect", 1, "A", counts=(0, 0, 0)),
            ev(1, 0.0, "checkout", 1, "A", counts=(1, 0, 0)),
            ev(2, 1.0, "checkin", 1, "A", counts=(0, 1, 0), duration_s=1.0),
            ev(3, 2.0, "close", 1, "MainThread", counts=(0, 0, 0), reason="idle"),
        ]
    )
    holds = analysis.hold_intervals(frame)
    assert holds[["conn", "end", "end_kind", "open"]].to_dict("records") == [
        {"conn": 1, "end": 1.0, "end_kind": "checkin", "open": False}
    ]


def test_leak_reports_inside_a_hold_leave_it_whole() -> None:
    """leak and unleak events on a held connection neither end its hold nor start one; summarize counts them."""
    frame = events_to_frame(
        [
            ev(0, 0.0, "connect", 1, "A", counts=(0, 0, 0)),
            ev(1, 0.0, "checkout", 1, "A", counts=(1, 0, 0)),
            ev(2, 5.0, "leak", 1, "A", counts=(1, 0, 0), duration_s=5.0, reason="held"),
            ev(3, 6.0, "unleak", 1, "A", counts=(1, 0, 0), duration_s=6.0),
            ev(4, 6.0, "checkin", 1, "A", counts=(0, 1, 0), duration_s=6.0),
        ]
    )
    holds = analysis.hold_intervals(frame)
    assert holds[["conn", "start", "end", "end_kind"]].to_dict("records") == [
        {"conn": 1, "start": 0.0, "end": 6.0, "end_kind": "checkin"}
    ]
    assert analysis.summarize(frame)["leaks"] == 1


def test_hold_intervals_ignore_a_checkin_whose_checkout_was_dropped() -> None:
    """A trace that begins mid-hold (its checkout dropped) yields holds only for the checkouts it holds."""
    frame = events_to_frame(HAND_EVENTS[7:])
    holds = analysis.hold_intervals(frame)
    assert list(zip(holds["conn"], holds["start"], strict=True)) == [(1, 3.0), (1, 5.5), (3, 6.0)]


def test_occupancy_is_a_step_series_with_a_zero_start(hand: pd.DataFrame) -> None:
    """Occupancy has one row per event plus a row of zeros at t=0 when the trace starts from an empty pool."""
    occ = analysis.occupancy(hand)
    assert list(occ.columns) == ["t", "in_use", "idle", "waiting"]
    assert len(occ) == len(HAND_EVENTS) + 1
    assert occ.iloc[0].tolist() == [0.0, 0, 0, 0]
    assert occ["t"].tolist()[1:] == [e.t for e in HAND_EVENTS]
    assert occ["in_use"].tolist() == [0, 0, 1, 1, 2, 2, 2, 1, 2, 2, 1, 0, 1, 1, 2, 1]
    assert occ["waiting"].tolist() == [0, 0, 0, 0, 0, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0]
    assert occ["in_use"].dtype == np.int64


def test_occupancy_of_a_trace_starting_mid_run_starts_at_its_first_event(hand: pd.DataFrame) -> None:
    """Without the log's first event the state before the trace is unknown, so no zero row is added."""
    occ = analysis.occupancy(hand.iloc[6:])
    assert len(occ) == len(HAND_EVENTS) - 6
    assert occ.iloc[0].tolist() == [3.0, 1, 1, 2]


def test_wait_stats_cover_checkouts_and_timeouts(hand: pd.DataFrame) -> None:
    """Waits of 0, 0, 1.5, 0, 0 (checkouts) and 2.0 (timeout) give these linear-interpolated percentiles."""
    stats = analysis.wait_stats(hand)
    assert stats["count"] == 6
    assert stats["waited"] == 2
    assert stats["mean_s"] == pytest.approx(3.5 / 6)
    assert stats["p50_s"] == 0.0
    assert stats["p95_s"] == pytest.approx(1.875)
    assert stats["p99_s"] == pytest.approx(1.975)
    assert stats["max_s"] == 2.0


def test_throughput_utilisation_and_timeouts(hand: pd.DataFrame) -> None:
    """5 checkouts over 7 s; 10.5 connection-seconds in use over 7 s of a 2-connection pool; 1 timeout."""
    assert analysis.span(hand) == 7.0
    assert analysis.throughput(hand) == pytest.approx(5 / 7)
    assert analysis.utilisation(hand, 2) == pytest.approx(10.5 / 7 / 2)
    assert analysis.timeouts(hand) == 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_utilisation_refuses_a_limit_that_is_not_a_positive_integer(hand: pd.DataFrame, bad: object) -> None:
    """utilisation() names the bad max_connections it was given."""
    with pytest.raises(ValueError, match=f"max_connections must be a positive integer, got {bad!r}"):
        analysis.utilisation(hand, bad)  # type: ignore[arg-type]


def test_connection_lifetimes(hand: pd.DataFrame) -> None:
    """Each connection's open and close times, lifetime, checkout count and close reason."""
    life = analysis.connection_lifetimes(hand)
    assert list(life.columns) == list(analysis.LIFETIME_COLUMNS)
    assert life["conn"].tolist() == [1, 2, 3]
    assert life["opened"].tolist() == [0.5, 1.0, 6.0]
    assert life.loc[1, ["closed", "lifetime", "checkouts", "close_reason"]].tolist() == [4.5, 3.5, 1, "stale"]
    assert life["checkouts"].tolist() == [3, 1, 1]
    assert life["close_reason"].tolist() == ["", "stale", ""]
    assert life.loc[[0, 2], ["closed", "lifetime"]].isna().all().all()


def test_connection_lifetime_falls_back_on_the_age_a_close_reports() -> None:
    """When a connection's connect event was dropped, its close's age dates its opening."""
    frame = events_to_frame([ev(9, 4.5, "close", 2, "B", counts=(0, 0, 0), duration_s=3.5, reason="stale")])
    life = analysis.connection_lifetimes(frame)
    assert life[["conn", "opened", "closed", "lifetime"]].values.tolist() == [[2, 1.0, 4.5, 3.5]]


def test_littles_law_holds_exactly_on_the_hand_trace(hand: pd.DataFrame) -> None:
    """L = 14/7 = 2, λ = 6 requests / 7 s, W = (3.5 s waiting + 10.5 s holding) / 6, so λ·W = L."""
    little = analysis.littles_law(hand)
    assert little["L"] == pytest.approx(2.0)
    assert little["lambda_rps"] == pytest.approx(6 / 7)
    assert little["W_s"] == pytest.approx(14 / 6)
    assert little["L_from_lambda_W"] == pytest.approx(2.0)
    assert little["relative_error"] == pytest.approx(0.0, abs=1e-12)


def test_summarize_is_plain_json(hand: pd.DataFrame) -> None:
    """summarize() gives plain ints, floats, None and dicts (strict JSON), with the hand-worked figures."""
    summary = analysis.summarize(hand)
    json.dumps(summary, allow_nan=False)

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return value is None or type(value) in (int, float, bool, str)

    assert plain(summary)
    assert summary["requests"] == 6
    assert summary["checkouts"] == 5
    assert summary["timeouts"] == 1
    assert summary["pool_max"] == 2
    assert summary["utilisation"] == pytest.approx(0.75)
    assert summary["hold_mean_s"] == pytest.approx((2.5 + 3.5 + 2.0 + 1.0) / 4)
    assert summary["holds_open"] == 1
    assert summary["connections_opened"] == 3
    assert summary["connections_closed"] == 1
    assert summary["closed_by_reason"] == {"stale": 1}
    assert summary["events_dropped"] == 3
    assert summary["span_s"] == 7.0
    assert summary["littles_L"] == pytest.approx(2.0)
    assert summary["wait_p95_s"] == pytest.approx(1.875)


def test_summarize_without_a_limit_reports_no_utilisation(hand: pd.DataFrame) -> None:
    """An unlimited pool (no max_connections anywhere) has utilisation None rather than a made-up figure."""
    hand.attrs.pop("max_connections")
    assert analysis.summarize(hand)["utilisation"] is None
    assert analysis.summarize(hand, max_connections=4)["utilisation"] == pytest.approx(0.375)


def test_empty_trace_gives_empty_tables_and_no_numbers() -> None:
    """An empty frame yields empty tables, zero counts and NaN (None in the summary) for rates and means."""
    empty = events_to_frame([])
    assert analysis.hold_intervals(empty).empty
    assert list(analysis.hold_intervals(empty).columns) == [*analysis.HOLD_COLUMNS]
    assert analysis.occupancy(empty).empty
    assert analysis.connection_lifetimes(empty).empty
    assert analysis.wait_stats(empty)["count"] == 0
    assert math.isnan(analysis.throughput(empty))
    assert analysis.timeouts(empty) == 0
    summary = analysis.summarize(empty)
    json.dumps(summary, allow_nan=False)
    assert summary["throughput_rps"] is None and summary["requests"] == 0


def test_unsorted_frame_is_read_in_seq_order(hand: pd.DataFrame) -> None:
    """Rows shuffled out of seq order give the same holds and occupancy."""
    shuffled = hand.sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(analysis.hold_intervals(shuffled), analysis.hold_intervals(hand))
    pd.testing.assert_frame_equal(analysis.occupancy(shuffled), analysis.occupancy(hand))


def test_real_fake_pool_trace_is_consistent() -> None:
    """On a trace from peewee's own pool code: holds match check-in durations and Little's law holds."""
    db = InstrumentedFakePooledDatabase("fake", max_connections=2, timeout=1.0)
    start = threading.Barrier(4, timeout=5)

    def work() -> None:
        start.wait()
        for _ in range(3):
            db.connect()
            time.sleep(0.01)  # a hold that must last (4 callers on 2 connections wait); it orders no thread
            db.close()

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(4)]
    run_threads(threads, 10)

    # One more caller finds the pool full and times out at once.
    quick = InstrumentedFakePooledDatabase("fake", max_connections=1, timeout=None)
    quick.connect()
    failed: list[BaseException] = []
    other = threading.Thread(target=lambda: failed.append(_connect_error(quick)), name="late")
    other.start()
    other.join(timeout=5)
    assert not other.is_alive() and isinstance(failed[0], MaxConnectionsExceeded)
    quick.close()
    quick.close_all()
    db.close_all()

    frame = db.events.to_frame()
    holds = analysis.hold_intervals(frame)
    checkins = frame.loc[frame["kind"] == "checkin"]
    assert len(holds) == 12 and not holds["open"].any()
    assert (holds["end_kind"] == "checkin").all()
    paired = holds.merge(checkins, left_on=["conn", "end"], right_on=["conn", "t"], validate="one_to_one")
    assert len(paired) == 12
    assert paired["duration"].to_numpy() == pytest.approx(paired["duration_s"].to_numpy(), abs=1e-3)
    for _conn, group in holds.groupby("conn"):
        assert (group["start"].to_numpy()[1:] >= group["end"].to_numpy()[:-1]).all()
    assert analysis.wait_stats(frame)["waited"] >= 1
    assert abs(analysis.littles_law(frame)["relative_error"]) < 0.01
    assert set(analysis.connection_lifetimes(frame)["close_reason"]) == {"all"}

    quick_frame = quick.events.to_frame()
    assert analysis.timeouts(quick_frame) == 1
    assert analysis.wait_stats(quick_frame)["count"] == 2


def _connect_error(db: InstrumentedFakePooledDatabase) -> BaseException:
    try:
        db.connect()
    except MaxConnectionsExceeded as exc:
        return exc
    raise AssertionError("connect() did not raise MaxConnectionsExceeded")


# The hand trace, then E finds the pool full at 6.5 and is still waiting when the trace ends at 7.0.
STARVED_EVENTS = [*HAND_EVENTS[:14], ev(14, 6.5, "wait", 0, "E", counts=(2, 0, 1)), HAND_EVENTS[14]._replace(seq=15)]


@pytest.fixture
def starved() -> pd.DataFrame:
    """The hand trace with one caller (E) still waiting at its end."""
    return events_to_frame(STARVED_EVENTS, {"max_connections": 2})


def test_a_wait_still_going_is_found_with_its_age(starved: pd.DataFrame) -> None:
    """A wait with no later checkout, timeout or error by its thread is in progress; its age runs to `now`."""
    assert analysis.waits_in_progress(starved).to_dict("records") == [{"thread": "E", "since": 6.5, "age_s": 0.5}]
    assert analysis.waits_in_progress(starved, now=9.0)["age_s"].tolist() == [2.5]
    assert analysis.waits_in_progress(events_to_frame(HAND_EVENTS)).empty


def test_wait_stats_count_waits_in_progress_at_their_age(starved: pd.DataFrame) -> None:
    """Six finished waits (0, 0, 1.5, 0, 0, 2.0) and E's 5.0 s so far: seven requests, the max is E's."""
    stats = analysis.wait_stats(starved, now=11.5)
    assert stats["count"] == 7 and stats["waited"] == 3
    assert stats["in_progress"] == 1 and stats["oldest_wait_s"] == 5.0
    assert stats["max_s"] == 5.0
    assert stats["mean_s"] == pytest.approx(8.5 / 7)
    assert stats["p95_s"] == pytest.approx(np.quantile([0, 0, 1.5, 0, 0, 2.0, 5.0], 0.95))


def test_summarize_reports_who_is_waiting_now(starved: pd.DataFrame) -> None:
    """summarize() counts finished requests apart from the caller still waiting, and the oldest wait's age."""
    summary = analysis.summarize(starved, now=9.0)
    assert summary["requests"] == 6
    assert summary["waiting_now"] == 1 and summary["oldest_wait_s"] == 2.5
    assert summary["wait_max_s"] == 2.5


def test_fairness_counts_each_workers_checkouts_and_longest_wait(starved: pd.DataFrame) -> None:
    """Per thread: checkouts, timeouts, waits, the longest wait (E's ongoing one at its age), who waits now."""
    table = analysis.fairness(starved, now=9.0)
    assert list(table.columns) == list(analysis.FAIRNESS_COLUMNS)
    rows = {row["thread"]: row for row in table.to_dict("records")}
    assert table["thread"].tolist()[:2] == ["A", "B"]  # busiest first
    assert (rows["A"]["checkouts"], rows["B"]["checkouts"], rows["C"]["checkouts"]) == (2, 2, 1)
    assert (rows["D"]["checkouts"], rows["D"]["timeouts"], rows["D"]["wait_max_s"]) == (0, 1, 2.0)
    assert (rows["E"]["checkouts"], rows["E"]["waits"], rows["E"]["wait_max_s"], rows["E"]["waiting_now"]) == (
        0,
        1,
        2.5,
        True,
    )
    assert not rows["A"]["waiting_now"] and rows["C"]["wait_max_s"] == 1.5


def test_fairness_reports_named_workers_that_never_reached_the_pool(starved: pd.DataFrame) -> None:
    """A worker named in `threads` with no event gets a row of zeros, and only the named workers are reported."""
    table = analysis.fairness(starved, threads=["A", "C", "F"])
    assert table["thread"].tolist() == ["A", "C", "F"]
    assert table.loc[2, ["checkouts", "timeouts", "waits", "wait_max_s", "waiting_now"]].tolist() == [
        0,
        0,
        0,
        0.0,
        False,
    ]


def test_fairness_stats_sum_up_how_evenly_workers_were_served(starved: pd.DataFrame) -> None:
    """Checkouts 2, 2, 1, 0, 0 over five workers: min, median, max, two starved, Jain's index 25/45."""
    stats = analysis.fairness_stats(starved, now=10.0)
    assert stats["workers"] == 5
    assert (stats["checkouts_min"], stats["checkouts_median"], stats["checkouts_max"]) == (0, 1.0, 2)
    assert stats["starved"] == 2
    assert stats["top_share"] == pytest.approx(2 / 5)
    assert stats["jain_index"] == pytest.approx(25 / (5 * 9))
    assert (stats["longest_wait_thread"], stats["longest_wait_s"]) == ("E", 3.5)
    assert analysis.fairness_stats(events_to_frame([]))["workers"] == 0


def test_a_waiter_on_a_live_pool_shows_in_the_numbers_while_it_waits() -> None:
    """While a thread waits on a full pool, the frame taken mid-wait reports it; at `now` its age has grown."""
    db = InstrumentedFakePooledDatabase("fake", max_connections=1, timeout=30)
    db.connect()
    waiter = threading.Thread(target=lambda: (db.connect(), db.close()), name="starved-worker")
    waiter.start()
    wait_until(lambda: db.events.last is not None and db.events.last.kind == "wait", what="the second caller waiting")
    frame = db.events.to_frame()
    since = analysis.waits_in_progress(frame)["since"].tolist()
    assert analysis.waits_in_progress(frame)["thread"].tolist() == ["starved-worker"]
    later = since[0] + 1.25
    stats = analysis.wait_stats(frame, now=later)
    assert stats["in_progress"] == 1 and stats["oldest_wait_s"] == pytest.approx(1.25)
    assert stats["p50_s"] > 0 and stats["max_s"] == pytest.approx(1.25)
    db.close()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    db.close_all()
    assert analysis.waits_in_progress(db.events.to_frame()).empty


def test_frame_stats_summarize_and_get_stats_agree_on_their_shared_keys() -> None:
    """Mid-run, one caller waiting and events dropped: the pool's state has one name and one value in all three."""
    db = InstrumentedFakePooledDatabase("fake", max_connections=2, timeout=30, event_capacity=6)
    for _ in range(4):  # churn enough events that the log of 6 drops some
        db.connect()
        db.close()
    db.connect()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        db.connect()
        held.set()
        release.wait(timeout=10)
        db.close()

    def waiter() -> None:
        db.connect()
        db.close()

    threads = [threading.Thread(target=holder, name="holder"), threading.Thread(target=waiter, name="waiter")]
    threads[0].start()
    assert held.wait(timeout=10)
    threads[1].start()
    try:
        wait_until(lambda: db.events.get_stats()["requests_waiting"] == 1, what="the waiter to wait")
        got = db.events.get_stats()
        frame = db.events.to_frame()
        summary, live = analysis.summarize(frame), frame_stats(frame)
    finally:
        release.set()
        db.close()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    db.close_all()
    shared = ("events_dropped", "pool_max", "pool_size", "pool_available", "requests_waiting")
    assert [got[key] for key in shared] == [summary[key] for key in shared] == [live[key] for key in shared]
    assert (got["pool_size"], got["pool_available"], got["requests_waiting"], got["pool_max"]) == (2, 0, 1, 2)
    assert got["events_dropped"] > 0
    assert summary["in_use"] == live["in_use"] == 2 and summary["waiting_now"] == live["waiting_now"] == 1


def test_the_table_of_summary_keys_says_where_each_key_is(hand: pd.DataFrame) -> None:
    """Each key of the module's table is in exactly the dicts it marks: summarize S, frame_stats F, get_stats G."""
    marked: dict[str, set[str]] = {}
    for line in (analysis.__doc__ or "").splitlines():
        parts = line.split()
        if not line.startswith("``") or "<" in parts[0]:
            continue
        while parts[-1] in ("S", "F", "G"):
            marked.setdefault(parts[0].strip("`"), set()).add(parts.pop())
    found = {
        "S": set(analysis.summarize(hand)),
        "F": set(frame_stats(hand)),
        "G": set(InstrumentedFakePooledDatabase("fake", max_connections=2).events.get_stats()),
    }
    assert len(marked) >= 20
    for key, where in marked.items():
        assert {source for source in "SFG" if key in found[source]} == where, key
    patterns = ("wait_", "fair_", "littles_")
    unlisted = {key for key in found["S"] if not key.startswith(patterns)} - set(marked)
    assert not unlisted, f"summarize has keys the table lacks: {unlisted}"
