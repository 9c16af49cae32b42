"""Closed- and open-loop workloads, their records and events, seeding, stopping, validation and sweeps."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

import poolviz
from poolviz.data.analysis import SWEEP_COLUMNS
from poolviz.models import User
from poolviz.testing import run_threads
from poolviz.workload import Distribution, RequestRecord, ensure_schema, run_closed_loop, run_open_loop, sweep


@pytest.fixture
def sqlite_pool(tmp_path: Path) -> Iterator[Any]:
    """A factory for SQLite pools on one file, all closed afterwards."""
    pools: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 10)
        db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'workload.db'}", **kwargs)
        pools.append(db)
        return db

    yield make
    for db in pools:
        db.close_all()


def _kinds(frame: Any, *kinds: str) -> Any:
    return frame[frame["kind"].isin(kinds)]


def test_distribution_parses_each_spec() -> None:
    """Specs parse to their kind and parameters; a bare number is a fixed duration."""
    assert Distribution.parse("fixed:0.01") == Distribution("fixed", (0.01,))
    assert Distribution.parse("exp:0.01") == Distribution("exp", (0.01,))
    assert Distribution.parse("exponential:0.01") == Distribution("exp", (0.01,))
    assert Distribution.parse("uniform:0.005,0.02") == Distribution("uniform", (0.005, 0.02))
    assert Distribution.parse(0.25) == Distribution("fixed", (0.25,))
    assert Distribution.parse("0.25") == Distribution("fixed", (0.25,))
    assert Distribution.parse("uniform:0.005,0.02").mean == pytest.approx(0.0125)


def test_distribution_draws_stay_in_range_and_repeat_with_a_seed() -> None:
    """Uniform draws stay within bounds; the same seeded generator gives the same draws."""
    spec = Distribution.parse("uniform:0.005,0.02")
    draws = [spec.sample(random.Random(3)) for _ in range(50)]
    assert all(0.005 <= d <= 0.02 for d in draws)
    exp = Distribution.parse("exp:0.01")
    first = [exp.sample(rng) for rng in [random.Random(9)] for _ in range(20)]
    second = [exp.sample(rng) for rng in [random.Random(9)] for _ in range(20)]
    assert first == second
    assert Distribution.parse("fixed:0.02").sample(random.Random(1)) == 0.02


def test_distribution_with_mean_keeps_the_mean() -> None:
    """with_mean builds each shape around the mean asked for (uniform from 0 to twice it)."""
    for kind in ("fixed", "exp", "uniform"):
        assert Distribution.with_mean(kind, 0.02).mean == pytest.approx(0.02)
    assert Distribution.with_mean("uniform", 0.02).params == (0.0, 0.04)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("gauss:0.01", ["'gauss'", "fixed, exp, uniform"]),
        (-0.01, ["hold", "-0.01"]),
        ("fixed:-1", ["-1"]),
        ("uniform:0.02,0.01", ["low <= high"]),
        ("uniform:0.01", ["uniform", "2"]),
        ("exp:abc", ["'exp:abc'", "not a number"]),
        (math.inf, ["inf"]),
        (None, ["None"]),
    ],
)
def test_distribution_refuses_bad_specs(spec: Any, words: list[str]) -> None:
    """A bad hold spec raises ValueError naming the value and what is allowed."""
    with pytest.raises(ValueError) as info:
        Distribution.parse(spec, "hold")
    for word in words:
        assert word in str(info.value)


def test_closed_loop_makes_every_request_once(sqlite_pool: Any, no_new_threads: None) -> None:
    """Each worker makes its requests; the events hold one checkout per request and one checkin each."""
    db = sqlite_pool(max_connections=2)
    result = run_closed_loop(db, workers=4, requests=15, hold=0.001, seed=1)
    assert result.requests == result.requests_ok == 60
    assert result.requests_failed == 0
    frame = result.events
    assert len(_kinds(frame, "checkout")) == 60
    assert len(_kinds(frame, "checkin")) == 60
    assert len(_kinds(frame, "timeout")) == 0
    assert sorted((r.worker, r.index) for r in result.records) == [(w, i) for w in range(4) for i in range(15)]


def test_closed_loop_records_are_complete_and_match_their_events(sqlite_pool: Any) -> None:
    """Every record has its pool wait, hold and connection from the checkout and checkin of its own thread."""
    db = sqlite_pool(max_connections=2)
    result = run_closed_loop(db, workers=3, requests=10, hold="uniform:0.001,0.003", seed=5)
    frame = result.events.set_index("seq")
    for record in result.records:
        assert isinstance(record, RequestRecord)
        assert record.ok and record.error_type == "" and record.error_message == ""
        assert record.thread == f"worker-{record.worker}"
        checkout = frame.loc[record.seq]
        assert checkout["kind"] == "checkout"
        assert checkout["thread"] == record.thread
        assert checkout["conn"] == record.conn
        assert checkout["wait_s"] == record.wait_s
        assert record.held_s >= record.hold_s
        assert record.latency_s >= record.wait_s
        assert record.queued_s == 0.0, "a closed loop's request begins when it arrives"
        assert 0.001 <= record.hold_s <= 0.003
    requests = result.requests_frame()
    assert len(requests) == 30
    assert not requests[["start", "latency_s", "wait_s", "held_s", "hold_s"]].isna().any().any()


def test_seeded_runs_draw_the_same_hold_times(sqlite_pool: Any) -> None:
    """Two runs with one seed give each worker the same hold draws; another seed gives others."""

    def draws(seed: int) -> dict[tuple[int, int], float]:
        result = run_closed_loop(sqlite_pool(max_connections=3), workers=3, requests=8, hold="exp:0.001", seed=seed)
        return {(r.worker, r.index): r.hold_s for r in result.records}

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_setup_leaves_a_fresh_pool_empty_so_the_trace_shows_it_grow(sqlite_pool: Any) -> None:
    """On a fresh pool the run's events start with a connect on an empty pool, after the table setup."""
    db = sqlite_pool(max_connections=2)
    result = run_closed_loop(db, workers=2, requests=3, hold=0.0)
    first = result.events.iloc[0]
    assert first["kind"] == "connect"
    assert (first["in_use"], first["idle"]) == (0, 0)
    assert result.requests_ok == 6


def test_stop_event_ends_the_run_early_and_joins_every_thread(sqlite_pool: Any, no_new_threads: None) -> None:
    """Setting stop mid-run ends it cleanly: fewer requests, stopped reported, no worker thread left."""
    db = sqlite_pool(max_connections=2)
    stop = threading.Event()
    seen: list[tuple[int, int | None]] = []

    def progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        if done == 10:
            stop.set()

    result = run_closed_loop(db, workers=4, requests=1000, hold=0.001, stop=stop, progress=progress)
    assert result.stopped
    assert 10 <= result.requests < 4000
    assert result.requests_failed == 0
    assert [t.name for t in threading.enumerate() if t.name.startswith("worker-")] == []
    assert [done for done, _ in seen] == list(range(1, result.requests + 1))
    assert {total for _, total in seen} == {4000}


def test_think_time_is_cut_short_by_stop(sqlite_pool: Any, no_new_threads: None) -> None:
    """A worker thinking between requests leaves at once when stop is set (no long think to sit out)."""
    db = sqlite_pool(max_connections=2)
    stop = threading.Event()

    def progress(done: int, _total: int | None) -> None:
        if done == 2:
            stop.set()

    result = run_closed_loop(db, workers=2, requests=5, hold=0.0, think=3600.0, stop=stop, progress=progress)
    assert result.stopped
    assert result.requests == 2


def test_request_errors_are_recorded_and_the_run_goes_on(sqlite_pool: Any) -> None:
    """With the only connection held elsewhere and no wait, every request fails with a timeout record."""
    db = sqlite_pool(max_connections=1, timeout=None)
    ensure_schema(db)
    db.connect()
    try:
        result = run_closed_loop(db, workers=2, requests=5, hold=0.0, setup=False, cleanup=False)
    finally:
        db.close()
    assert result.requests == 10
    assert result.requests_failed == 10
    assert {r.error_type for r in result.records} == {"MaxConnectionsExceeded"}
    assert all(r.error_message for r in result.records)
    assert all(r.wait_s == 0.0 and math.isnan(r.held_s) and r.conn == 0 for r in result.records)
    assert len(_kinds(result.events, "timeout")) == 10
    assert result.summary()["errors"] == {"MaxConnectionsExceeded": 10}


def test_setup_and_cleanup_leave_the_callers_open_connection_open(sqlite_pool: Any) -> None:
    """A caller that already holds a connection in its thread still holds it after the run."""
    db = sqlite_pool(max_connections=2)
    db.connect()
    try:
        result = run_closed_loop(db, workers=1, requests=2, hold=0.0)
        assert not db.is_closed()
    finally:
        db.close()
    assert result.requests_ok == 2


def test_a_failed_cleanup_is_logged_not_raised(
    sqlite_pool: Any, caplog: pytest.LogCaptureFixture, no_new_threads: None
) -> None:
    """When clean-up cannot get a connection the run still returns its result and logs a warning."""
    db = sqlite_pool(max_connections=1, timeout=None)
    ensure_schema(db)
    holding, release = threading.Event(), threading.Event()

    def hold_the_only_connection() -> None:
        with db.connection_context():
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        with caplog.at_level(logging.WARNING, logger="poolviz"):
            result = run_closed_loop(db, workers=1, requests=1, hold=0.0, setup=False)
    finally:
        release.set()
        holder.join(timeout=30)
    assert not holder.is_alive()
    assert result.requests_failed == 1
    assert "could not delete" in caplog.text


def test_open_loop_arrivals_queue_and_wait_when_the_pool_is_short(sqlite_pool: Any, no_new_threads: None) -> None:
    """Arrivals far faster than one connection can serve wait in the queue or the pool; latency counts both."""
    db = sqlite_pool(max_connections=1)
    result = run_open_loop(db, rate=2000.0, requests=40, threads=4, hold=0.005, seed=2)
    assert result.mode == "open"
    assert result.requests == result.requests_ok == 40
    assert sorted(r.index for r in result.records) == list(range(40))
    assert any(r.queued_s > 0 or r.wait_s > 0 for r in result.records)
    assert len(_kinds(result.events, "wait")) > 0
    assert len(_kinds(result.events, "checkout")) == 40
    for record in result.records:
        assert record.latency_s >= record.queued_s + record.wait_s
        assert record.thread.startswith("handler-")


def test_open_loop_repeats_arrivals_and_holds_with_a_seed(sqlite_pool: Any) -> None:
    """The same seed gives the same arrival schedule (relative to the first) and the same hold per request."""

    def run(seed: int) -> list[tuple[int, float]]:
        result = run_open_loop(
            sqlite_pool(max_connections=4), rate=500.0, requests=12, threads=4, hold="exp:0.001", seed=seed
        )
        return sorted((r.index, r.hold_s) for r in result.records)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_open_loop_duration_bounds_the_arrivals(sqlite_pool: Any) -> None:
    """With only a duration, arrivals stop once the next one would fall after it."""
    result = run_open_loop(sqlite_pool(max_connections=2), rate=200.0, duration=0.05, threads=2, hold=0.0)
    assert result.requests == result.requests_ok
    assert all(r.start <= result.records[0].start + 0.05 + 1e-9 for r in result.records)


def test_open_loop_stop_drops_queued_requests(sqlite_pool: Any, no_new_threads: None) -> None:
    """Stopping an open loop ends arrivals, counts queued requests as abandoned and joins every thread."""
    db = sqlite_pool(max_connections=1)
    stop = threading.Event()

    def progress(done: int, _total: int | None) -> None:
        if done == 3:
            stop.set()

    result = run_open_loop(db, rate=5000.0, requests=500, threads=2, hold=0.002, stop=stop, progress=progress)
    assert result.stopped
    assert result.requests < 500
    assert result.requests + result.abandoned <= 500


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"workers": 0}, ["workers", "positive integer", "0"]),
        ({"workers": -3}, ["workers must be a positive integer, got -3"]),
        ({"workers": 2.5}, ["workers", "2.5"]),
        ({"requests": 0}, ["requests must be a positive integer, got 0"]),
        ({"hold": -0.01}, ["hold", "-0.01"]),
        ({"hold": "gauss:1"}, ["'gauss'", "fixed, exp, uniform"]),
        ({"think": "uniform:3,1"}, ["think", "low <= high"]),
        ({"seed": "x"}, ["seed must be an integer, got 'x'"]),
    ],
)
def test_closed_loop_refuses_bad_settings(sqlite_pool: Any, kwargs: dict[str, Any], words: list[str]) -> None:
    """Bad closed-loop settings raise ValueError naming the value, before any thread starts."""
    settings: dict[str, Any] = {"workers": 2, "requests": 2, "hold": 0.0, **kwargs}
    with pytest.raises(ValueError) as info:
        run_closed_loop(sqlite_pool(), **settings)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"rate": 0}, ["rate must be a positive number, got 0"]),
        ({"rate": -5.0}, ["rate", "-5.0"]),
        ({"requests": None}, ["duration", "requests", "neither"]),
        ({"duration": -1.0}, ["duration", "-1.0"]),
        ({"threads": 0}, ["threads must be a positive integer, got 0"]),
        ({"hold": "nope:1"}, ["'nope'"]),
    ],
)
def test_open_loop_refuses_bad_settings(sqlite_pool: Any, kwargs: dict[str, Any], words: list[str]) -> None:
    """Bad open-loop settings raise ValueError naming the value."""
    settings: dict[str, Any] = {"rate": 10.0, "requests": 2, "threads": 1, "hold": 0.0, **kwargs}
    with pytest.raises(ValueError) as info:
        run_open_loop(sqlite_pool(), **settings)
    for word in words:
        assert word in str(info.value)


def test_a_plain_peewee_database_is_refused() -> None:
    """A workload needs an instrumented pool and says how to get one."""
    from peewee import SqliteDatabase

    with pytest.raises(TypeError, match="instrumented pool"):
        run_closed_loop(SqliteDatabase(":memory:"), workers=1, requests=1, hold=0.0)


def test_sweep_tabulates_each_pool_size(tmp_path: Path) -> None:
    """A sweep gives one row per size with measured and predicted figures, and counts progress to the total."""
    url = f"sqlite+pool:///{tmp_path / 'sweep.db'}"
    seen: list[tuple[int, int | None]] = []
    table = sweep(url, [1, 3], workers=3, requests=5, hold=0.002, progress=lambda d, t: seen.append((d, t)))
    assert list(table.columns) == list(SWEEP_COLUMNS)
    assert table["max_connections"].tolist() == [1, 3]
    assert table["requests"].tolist() == [15, 15]
    assert table["timeouts"].tolist() == [0, 0]
    assert (table["throughput_rps"] > 0).all()
    assert ((table["utilisation"] > 0) & (table["utilisation"] <= 1)).all()
    assert ((table["predicted_wait_prob"] >= 0) & (table["predicted_wait_prob"] <= 1)).all()
    assert (table["predicted_wait_p95_s"] >= 0).all()
    assert seen[-1] == (30, 30)
    assert [d for d, _ in seen] == list(range(1, 31))


def test_sweep_takes_a_pool_factory(tmp_path: Path) -> None:
    """A callable gets each size and returns the pool to use for it."""
    sizes: list[int] = []

    def factory(size: int) -> Any:
        sizes.append(size)
        return poolviz.connect(f"sqlite+pool:///{tmp_path / 'f.db'}", max_connections=size, timeout=10)

    table = sweep(factory, [2], workers=2, requests=2, hold=0.0)
    assert sizes == [2]
    assert table["requests"].tolist() == [4]


@pytest.mark.parametrize(
    ("sizes", "words"), [([], ["sizes", "[]"]), ([2, 0], ["pool size", "0"]), ("1,2", ["sizes", "'1,2'"])]
)
def test_sweep_refuses_bad_sizes(tmp_path: Path, sizes: Any, words: list[str]) -> None:
    """Sweep sizes must be a non-empty list of positive integers; the error names the bad value."""
    with pytest.raises(ValueError) as info:
        sweep(f"sqlite+pool:///{tmp_path / 's.db'}", sizes, workers=1, requests=1, hold=0.0)
    for word in words:
        assert word in str(info.value)


def test_sweep_reports_the_tail_and_each_worker(tmp_path: Path) -> None:
    """Each row has the mean, p95, p99 and longest wait, and the fewest and most checkouts any worker made."""
    table = sweep(f"sqlite+pool:///{tmp_path / 't.db'}", [1, 4], workers=4, requests=6, hold=0.002)
    for _, row in table.iterrows():
        assert 0 <= row["wait_mean_s"] <= row["wait_max_s"]
        assert row["wait_p95_s"] <= row["wait_p99_s"] <= row["wait_max_s"]
        # A closed loop with a request count ends when every worker made all of its requests.
        assert row["checkouts_per_worker_min"] == row["checkouts_per_worker_max"] == 6
    assert table["wait_max_s"].iloc[-1] == 0  # a connection per worker: nobody waits


def test_timed_sweep_runs_each_size_until_its_duration(tmp_path: Path, no_new_threads: None) -> None:
    """With duration, each size runs a closed loop for that long; progress counts requests with no total."""
    seen: list[tuple[int, int | None]] = []
    table = sweep(
        f"sqlite+pool:///{tmp_path / 'd.db'}",
        [1, 3],
        workers=3,
        requests=None,
        hold=0.002,
        think=0.002,
        duration=0.3,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert table["max_connections"].tolist() == [1, 3]
    assert (table["requests"] > 3).all()
    assert (table["checkouts_per_worker_min"] >= 1).all()
    assert seen and all(total is None for _, total in seen)
    assert seen[-1][0] == table["requests"].sum()


def test_timed_sweep_stops_when_asked(tmp_path: Path, no_new_threads: None) -> None:
    """Setting stop ends a timed sweep long before its duration, every thread joined."""
    stop = threading.Event()
    stop_after = threading.Timer(0.3, stop.set)
    stop_after.start()
    try:
        table = sweep(f"sqlite+pool:///{tmp_path / 'x.db'}", [1, 2], 2, None, 0.002, duration=600, stop=stop)
    finally:
        stop_after.cancel()
        stop_after.join()
    assert len(table) <= 1


def test_open_loop_sweep_sends_the_same_arrivals_to_each_size(tmp_path: Path) -> None:
    """With rate, each size serves an open loop of the same arrivals on `workers` threads."""
    table = sweep(f"sqlite+pool:///{tmp_path / 'o.db'}", [1, 2], workers=4, requests=20, hold=0.001, rate=400.0)
    assert table["requests"].tolist() == [20, 20]
    assert (table["checkouts_per_worker_max"] <= 20).all()
    assert (table["arrival_rate_rps"] > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"requests": None}, ["requests", "duration"]),
        ({"duration": -1}, ["duration", "-1"]),
        ({"rate": 10.0, "think": 0.01}, ["think", "0.01"]),
    ],
)
def test_sweep_refuses_bad_settings(tmp_path: Path, kwargs: dict[str, Any], words: list[str]) -> None:
    """A sweep needs requests or a duration, a positive duration, and no think time in an open loop."""
    settings: dict[str, Any] = {"workers": 1, "requests": 1, "hold": 0.0, **kwargs}
    with pytest.raises(ValueError) as info:
        sweep(f"sqlite+pool:///{tmp_path / 'b.db'}", [1], **settings)
    for word in words:
        assert word in str(info.value)


def _sleep_statements(caplog: pytest.LogCaptureFixture, word: str) -> int:
    return sum(1 for rec in caplog.records if rec.name == "peewee" and word in str(rec.msg))


def _server_run(url: str, caplog: pytest.LogCaptureFixture, word: str, hold_sql: str) -> None:
    db = poolviz.connect(url, max_connections=2, timeout=10)
    try:
        with caplog.at_level(logging.DEBUG, logger="peewee"):
            result = run_closed_loop(db, workers=4, requests=4, hold=0.02, seed=1)
    finally:
        db.close_all()
    assert result.hold_method == hold_sql
    assert result.requests == result.requests_ok == 16
    assert len(_kinds(result.events, "checkout")) == 16
    assert _sleep_statements(caplog, word) == 16
    for record in result.records:
        assert record.held_s >= 0.02


def test_closed_loop_on_mariadb_holds_with_select_sleep(
    mysql_url: str, caplog: pytest.LogCaptureFixture, no_new_threads: None
) -> None:
    """On MariaDB/MySQL each request holds its connection with SELECT SLEEP on the server."""
    _server_run(mysql_url, caplog, "SLEEP(", "SELECT SLEEP(%s)")


def test_closed_loop_on_postgresql_holds_with_pg_sleep(
    pg_url: str, caplog: pytest.LogCaptureFixture, no_new_threads: None
) -> None:
    """On PostgreSQL each request holds its connection with SELECT pg_sleep on the server."""
    _server_run(pg_url, caplog, "pg_sleep(", "SELECT pg_sleep(%s)")


def test_two_runs_in_one_process_proceed_at_the_same_time(tmp_path: Path) -> None:
    """Runs share no global state: each waits, mid-run, for the other to be mid-run too, and both finish."""
    pools = [
        poolviz.connect(f"sqlite+pool:///{tmp_path / f'run{i}.db'}", max_connections=2, timeout=10) for i in (0, 1)
    ]
    both_running = threading.Barrier(2, timeout=20)
    results: list[Any] = [None, None]

    def progress(done: int, _total: int | None) -> None:
        if done == 2:  # a request finished, others are still to come: this run is mid-way
            both_running.wait()

    def run(i: int) -> None:
        results[i] = run_closed_loop(pools[i], workers=2, requests=3, hold=0.001, progress=progress)

    try:
        run_threads([threading.Thread(target=run, args=(i,), name=f"run-{i}") for i in (0, 1)], 60)
    finally:
        for db in pools:
            db.close_all()
    assert not both_running.broken
    assert [r.requests_ok for r in results] == [6, 6]
    for db, result in zip(pools, results, strict=True):
        assert result.events.attrs["url"] == db.events.meta["url"]
        with db.connection_context():
            assert db.execute_sql('SELECT COUNT(*) FROM "user"').fetchone() == (0,)  # each cleaned up its own rows


def test_a_run_is_not_disturbed_by_user_bound_to_another_database(sqlite_pool: Any) -> None:
    """Regression: with the tutorial's User bound to a PostgreSQL database, a run on SQLite still succeeds."""
    elsewhere = peewee.PostgresqlDatabase(None)  # never connected: peewee reads it while building queries
    before = User._meta.database
    User.bind(elsewhere, bind_refs=False, bind_backrefs=False)
    try:
        result = run_closed_loop(sqlite_pool(max_connections=2), workers=2, requests=3, hold=0)
    finally:
        User.bind(before, bind_refs=False, bind_backrefs=False)
    assert result.requests_ok == 6, result.summary()["errors"]
    assert User._meta.database is before
