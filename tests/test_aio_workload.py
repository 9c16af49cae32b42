"""The asyncio workloads and `poolviz run` on a +asyncpool URL (SQLite; the servers are in test_aio_claims_servers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import peewee
import pytest

from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
from poolviz.workload import WorkloadResult
from poolviz.workload.asyncio_loops import run_async_closed_loop, run_async_open_loop

pytestmark = pytest.mark.timeout(60)


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
    with pytest.raises(TypeError, match="needs an instrumented asyncio database.*got peewee.SqliteDatabase"):
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
