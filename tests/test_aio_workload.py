"""The asyncio workloads, the twins agreeing with the threaded ones, and `poolviz run` on a +asyncpool URL.

SQLite only; the servers are in test_aio_claims_servers.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import peewee
import pytest

import poolviz
from poolviz.events import Event
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
from poolviz.workload import RECORD_FIELDS, RequestRecord, WorkloadResult, asyncio_loops, clients, loops
from poolviz.workload.asyncio_loops import run_async_closed_loop, run_async_open_loop
from poolviz.workload.run import request_record

pytestmark = pytest.mark.timeout(60)


class Twin(NamedTuple):
    """One side of the twins: how to make its pool, run its closed and open loops, and the module it runs from."""

    name: str
    pool: Callable[[Path, int], Any]
    closed: Callable[..., WorkloadResult]
    open: Callable[..., WorkloadResult]
    module: ModuleType
    thread_prefix: str


def _threaded_pool(folder: Path, size: int) -> Any:
    return poolviz.connect(f"sqlite+pool:///{folder / 'twin.db'}", max_connections=size, timeout=10)


def _asyncio_pool(folder: Path, size: int) -> Any:
    return InstrumentedAsyncSqliteDatabase(str(folder / "twin.db"), pool_size=size)


TWINS = [
    Twin("threads", _threaded_pool, loops.run_closed_loop, loops.run_open_loop, clients, "worker-"),
    Twin("asyncio", _asyncio_pool, run_async_closed_loop, run_async_open_loop, asyncio_loops, "task-"),
]


@pytest.fixture(params=TWINS, ids=[t.name for t in TWINS])
def twin(request: pytest.FixtureRequest) -> Twin:
    """Each test below runs once on threads and once on asyncio tasks."""
    chosen: Twin = request.param
    return chosen


def test_both_twins_build_the_same_record_from_their_own_events(twin: Twin, tmp_path: Path) -> None:
    """Threads and tasks fill all 14 fields alike: wait, connection and seq from the request's own checkout."""
    result = twin.closed(twin.pool(tmp_path, 2), 3, 4, 0.001, 0.0, 7)
    assert [f.name for f in fields(RequestRecord)] == list(RECORD_FIELDS) and len(RECORD_FIELDS) == 14
    events = result.events.set_index("seq")
    assert len(result.records) == 12
    for record in result.records:
        checkout = events.loc[record.seq]
        assert (checkout["kind"], checkout["conn"], checkout["wait_s"]) == ("checkout", record.conn, record.wait_s)
        assert checkout["thread"] == record.thread == f"{twin.thread_prefix}{record.worker}"
        assert record.ok and (record.error_type, record.error_message) == ("", "")
        assert record.queued_s == 0.0 and record.held_s >= record.hold_s == 0.001
    assert result.row_prefix.startswith("pv-"), "both twins say which User rows they made"


def test_both_twins_draw_the_same_hold_times_for_one_seed(tmp_path: Path) -> None:
    """A closed loop of threads and one of tasks with the same seed give each (worker, request) the same hold."""
    holds = []
    for twin in TWINS:
        result = twin.closed(twin.pool(tmp_path, 2), 3, 4, "exp:0.001", 0.0, 11)
        holds.append({(r.worker, r.index): r.hold_s for r in result.records})
    assert holds[0] == holds[1] and len(holds[0]) == 12


def test_both_open_loops_send_the_same_arrivals_for_one_seed(tmp_path: Path) -> None:
    """The thread and task open loops share one Poisson schedule: the same gaps and holds for the same seed."""
    schedules = []
    for twin, number in zip(TWINS, (lambda r: r.index, lambda r: r.worker), strict=True):
        result = twin.open(twin.pool(tmp_path, 2), rate=400.0, requests=20, hold="exp:0.001", seed=3)
        records = sorted(result.records, key=number)
        assert [number(r) for r in records] == list(range(20))
        schedules.append([(r.start - records[0].start, r.hold_s) for r in records])
    for (gap_t, hold_t), (gap_a, hold_a) in zip(*schedules, strict=True):
        assert math.isclose(gap_t, gap_a, abs_tol=1e-9) and hold_t == hold_a


def test_a_failing_request_is_recorded_alike_by_both(
    twin: Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose work raises is recorded with its error, its connection and hold, and the run goes on."""

    def broken(model: Any, name: str) -> None:
        raise peewee.IntegrityError("UNIQUE constraint failed:\n  user.username")

    monkeypatch.setattr(twin.module, "user_work", broken)
    result = twin.closed(twin.pool(tmp_path, 1), 2, 2, 0.0)
    assert (result.requests, result.requests_failed) == (4, 4)
    for record in result.records:
        assert (record.ok, record.error_type) == (False, "IntegrityError")
        assert record.error_message == "UNIQUE constraint failed: user.username"
        assert record.conn > 0 and record.seq >= 0 and record.held_s >= 0


def test_a_raising_progress_callback_is_logged_once_by_both(
    twin: Twin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A progress callback that always raises costs one log record, with one message for both, and no request."""
    calls = []

    def progress(done: int, total: int | None) -> None:
        calls.append(done)
        raise RuntimeError("the bar broke")

    with caplog.at_level(logging.ERROR, logger="poolviz.workload"):
        result = twin.closed(twin.pool(tmp_path, 2), 2, 3, 0.0, 0.0, 0, None, progress)
    assert result.requests_ok == 6 and calls == [1, 2, 3, 4, 5, 6]
    logged = [r for r in caplog.records if r.name == "poolviz.workload"]
    assert [r.getMessage() for r in logged] == ["poolviz progress callback raised; the run carries on (logged once)"]


def test_a_failed_cleanup_is_logged_alike_by_both(
    twin: Twin, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When deleting the run's rows fails, both twins return their result and log the same warning."""

    def refuse(model: Any, prefix: str) -> None:
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(twin.module, "delete_rows", refuse)
    with caplog.at_level(logging.WARNING, logger="poolviz.workload"):
        result = twin.closed(twin.pool(tmp_path, 1), 1, 2, 0.0)
    assert result.requests_ok == 2
    rows = f"username LIKE '{result.row_prefix}%'"
    expected = f"poolviz could not delete the run's User rows ({rows}): database is locked"
    assert [r.getMessage() for r in caplog.records if r.name == "poolviz.workload"] == [expected]


def test_the_asyncio_twins_take_the_threaded_loops_arguments() -> None:
    """arun_* take run_*'s parameters and defaults, read from them: tasks for workers, no threads in the open loop."""
    closed = inspect.signature(loops.run_closed_loop).parameters
    assert list(inspect.signature(asyncio_loops.arun_closed_loop).parameters) == [
        "tasks" if name == "workers" else name for name in closed
    ]
    opened = inspect.signature(asyncio_loops.arun_open_loop).parameters
    assert list(opened) == [name for name in inspect.signature(loops.run_open_loop).parameters if name != "threads"]
    assert [p.default for p in opened.values()] == [
        p.default for name, p in inspect.signature(loops.run_open_loop).parameters.items() if name != "threads"
    ]
    with pytest.raises(TypeError, match="threads"):
        run_async_open_loop(InstrumentedAsyncSqliteDatabase(":memory:"), rate=1.0, requests=1, threads=4)


def test_request_record_of_a_failed_request_masks_its_message_and_has_no_events() -> None:
    """The one record builder: a timeout with no checkout has NaN hold, conn 0, seq -1 and a masked one-line error."""
    timeout = Event(5, 1.0, "timeout", 0, "w", 0.25, 0.0, False, "", "", 1, 0, 0)
    error = peewee.OperationalError("could not connect to\n postgresql://app:s3cret@db/x")
    record = request_record(2, 3, "w", (0.5, 0.75, 1.25), 0.1, {"timeout": timeout}, error)
    assert (record.latency_s, record.queued_s, record.wait_s, record.conn, record.seq) == (0.75, 0.25, 0.25, 0, 5)
    assert math.isnan(record.held_s) and not record.ok and record.error_type == "OperationalError"
    assert "s3cret" not in record.error_message and "\n" not in record.error_message


def test_closed_loop_of_tasks_returns_the_threaded_loops_result(tmp_path: Path) -> None:
    """50 tasks x 2 requests on a pool of 3: a WorkloadResult whose events pair each checkout with a checkin."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "w.db"), pool_size=3)
    result = run_async_closed_loop(db, tasks=50, requests=2, hold=0.001, seed=1)
    assert isinstance(result, WorkloadResult) and result.mode == "closed"
    assert (result.requests_ok, result.requests_failed) == (100, 0)
    kinds = result.events["kind"].value_counts()
    assert kinds["checkout"] == kinds["checkin"] == 100 and kinds["wait"] > 0
    assert result.events["in_use"].max() <= 3
    assert result.hold_method == "asyncio.sleep" and result.settings["concurrency"] == "asyncio"
    assert db.pool is None, "the pool is closed with the loop that owned it"


def test_open_loop_starts_one_task_per_arrival(tmp_path: Path) -> None:
    """An open loop of 30 arrivals makes 30 request tasks named request-<n>, started without a queue."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "o.db"), pool_size=2)
    result = run_async_open_loop(db, rate=500, requests=30, hold=0.001)
    frame = result.requests_frame()
    assert result.requests_ok == 30 and set(frame["thread"]) == {f"request-{i}" for i in range(30)}
    assert (frame["queued_s"] < 0.05).all()


def test_two_runs_in_a_row_each_get_a_fresh_pool(tmp_path: Path) -> None:
    """A second run on the same database works: each run's loop creates and closes its own pool."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "t.db"), pool_size=2)
    for _ in range(2):
        assert run_async_closed_loop(db, tasks=5, requests=2, hold=0).requests_ok == 10


def test_workload_refuses_a_threaded_or_plain_database() -> None:
    """An asyncio workload names what it needs when given something else."""
    with pytest.raises(TypeError, match="needs an instrumented asyncio pool.*got peewee.SqliteDatabase"):
        run_async_closed_loop(peewee.SqliteDatabase(":memory:"), tasks=1, requests=1, hold=0)


def test_cli_run_on_an_asyncpool_url_writes_the_usual_files(tmp_path: Path) -> None:
    """`poolviz run --url sqlite+asyncpool://...` runs tasks and writes events, requests, summary and plots."""
    out = tmp_path / "out"
    url = f"sqlite+asyncpool:///{tmp_path}/cli.db"
    args = ["--url", url, "--max-connections", "2", "--workers", "6", "--requests", "2", "--hold-ms", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "poolviz", "run", *args, "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workload"]["requests_ok"] == 12 and summary["workload"]["concurrency"] == "asyncio"
    assert {p.name for p in out.iterdir()} >= {"events.csv", "requests.csv", "timeline.png", "waits.png"}
