"""Notebook 14's claims, each pinned: the leaky app under gunicorn, its leak found by its site, fixed, measured.

On PostgreSQL, and on SQLite (the notebook's fallback).

The runs use the notebook's own parameters (its parameters cell, with
``POOLVIZ_SMALL=1`` as the test suite runs it) and the same calls.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytest.importorskip("flask")
pytest.importorskip("gunicorn")

import poolviz
from poolviz.data import holders
from poolviz.practice import app as practice_app
from poolviz.practice import drive, serve
from poolviz.practice.load import LoadResult
from poolviz.practice.metrics import metrics_table, scrape_workers
from poolviz.practice.server import group_members

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "14_your_own_app_live.ipynb"
# Two servers and about a thousand requests per backend: slow (make test and CI run it, make check does not).
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def notebook_parameters() -> dict[str, Any]:
    """The names the notebook's parameters cell sets, as the test suite runs it (POOLVIZ_SMALL=1)."""
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")
    before = os.environ.get("POOLVIZ_SMALL")
    os.environ["POOLVIZ_SMALL"] = "1"
    try:
        names: dict[str, Any] = {}
        exec(cell.source, names)
    finally:
        if before is None:
            os.environ.pop("POOLVIZ_SMALL")
        else:
            os.environ["POOLVIZ_SMALL"] = before
    return names


P = notebook_parameters()


@dataclass
class Run:
    """One server's run as the notebook makes it: the replies, each worker's metrics, the recording, its group."""

    result: LoadResult
    metrics: Any
    recording: Any
    master: int
    workers: list[int]
    left: list[int]


def run(url: str, directory: Path, *, fixed: bool, mix: Any = None, threads: int = 1, table: str) -> Run:
    server = serve(
        url,
        workers=P["WORKERS"],
        threads=threads,
        max_connections=P["POOL_SIZE"],
        pool_timeout=P["POOL_TIMEOUT"],
        table=table,
        fixed=fixed,
        record_dir=directory,
        leak_threshold=P["LEAK_THRESHOLD"],
    )
    try:
        workers = server.worker_pids()
        result = drive(server.url, mix or P["MIX"], concurrency=P["CONCURRENCY"], duration=P["DURATION_S"])
        metrics = metrics_table(scrape_workers(server.url, workers))
        server.wait_recorded(leaks=True)
        recording = poolviz.load_recording(directory)
    finally:
        pgid = server.pgid
        server.stop()
    assert pgid is not None
    return Run(result, metrics, recording, pgid, workers, group_members(pgid))


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The notebook's database: PostgreSQL, and SQLite, its fallback when PostgreSQL is not reachable."""
    if request.param == "sqlite":
        return f"sqlite+pool:///{tmp_path_factory.mktemp('sqlite') / 'app.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module")
def table(url: str) -> Iterator[str]:
    name = f"practice_user_{uuid.uuid4().hex[:8]}"
    yield name
    practice_app.drop_table(url, name)


@pytest.fixture(scope="module")
def leaky(url: str, table: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(url, tmp_path_factory.mktemp("leaky"), fixed=False, table=table)


@pytest.fixture(scope="module")
def fixed(url: str, table: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(url, tmp_path_factory.mktemp("fixed"), fixed=True, table=table)


def test_every_failure_of_the_leaky_app_is_a_503(leaky: Run) -> None:
    """'Some requests were answered 503 ... Every failure is a 503.'"""
    statuses = {r.status for r in leaky.result.replies}
    assert 503 in statuses and statuses <= {200, 503}


def test_a_worker_never_answers_ok_after_its_first_503(leaky: Run) -> None:
    """'once it has answered its first 503 it never answers ok again (its last ok is done before its first 503)'."""
    frame = leaky.result.frame()
    frame["done_s"] = frame["started_s"] + frame["latency_s"]
    for pid, replies in frame.groupby("pid"):
        failed = replies.loc[replies["status"] == 503, "done_s"]
        if len(failed):
            assert replies.loc[replies["ok"], "done_s"].max() < failed.min(), f"worker {pid}"
    assert frame["status"].eq(503).any()


def test_every_503_waits_the_pool_timeout(leaky: Run) -> None:
    """'Every 503 took at least the pool's timeout to arrive.'"""
    assert min(r.latency_s for r in leaky.result.replies if r.status == 503) >= P["POOL_TIMEOUT"]


def test_the_leaky_workers_report_used_connections_and_timeouts(leaky: Run) -> None:
    """'every worker reports connections used ... timeouts add up to at least the number of 503s.'"""
    assert (leaky.metrics["used"] >= 1).all() and set(leaky.metrics.index) == set(leaky.workers)
    assert leaky.metrics["timeouts"].sum() >= leaky.result.count(status=503)


def test_the_master_records_a_stream_without_events(leaky: Run) -> None:
    """'The gunicorn master has a stream with no events'; every worker has events, none dropped."""
    frame = leaky.recording
    assert leaky.master in frame.attrs["processes"] and leaky.master not in set(frame["process"])
    assert set(frame["process"]) == set(leaky.workers) and frame.attrs["dropped"] == 0


def test_every_held_connection_is_a_welcome_thread_matching_the_metrics(leaky: Run) -> None:
    """'every connection still checked out belongs to a thread named welcome-<id> ... matches the used'."""
    held = holders(leaky.recording)
    assert len(held) > 0 and held["thread"].str.fullmatch(r"p\d+:welcome-\d+").all()
    assert held.groupby("process").size().to_dict() == leaky.metrics["used"].astype(int).to_dict()


def test_all_leaks_come_from_one_site_and_their_threads_had_exited(leaky: Run) -> None:
    """'All the leaks come from one site', send_welcome's query, each reason thread_exited; its stack is that line."""
    leaks = leaky.recording[leaky.recording["kind"] == "leak"]
    lines, first = inspect.getsourcelines(practice_app.send_welcome)
    line = first + next(i for i, text in enumerate(lines) if "get_by_id" in text)
    assert set(leaks["site"]) == {f"poolviz/practice/app.py:{line} in send_welcome"}
    assert set(leaks["reason"]) == {"thread_exited"}
    assert len(leaks) == len(holders(leaky.recording))


def test_the_fixed_app_answers_everything_without_leaks(fixed: Run) -> None:
    """'The fixed app answered every request, ... no leak and no timeout, and no connection held past the threshold.'"""
    kinds = fixed.recording["kind"].value_counts()
    assert fixed.result.count() == fixed.result.count(status=200) > 0
    assert kinds.get("leak", 0) == 0 and kinds.get("timeout", 0) == 0
    assert (holders(fixed.recording)["held_s"] > P["LEAK_THRESHOLD"]).sum() == 0


def test_the_fixed_app_serves_more_than_twice_as_many_with_a_lower_p95(leaky: Run, fixed: Run) -> None:
    """'It served more than twice as many requests in the same time, with a lower p95 on /users.'"""
    assert fixed.result.count(status=200) > 2 * leaky.result.count(status=200)

    def p95(run: Run) -> float:
        frame = run.result.frame()
        return float(frame.loc[frame["path"] == "/users", "latency_s"].quantile(0.95))

    assert p95(fixed) < p95(leaky)


def test_the_fixed_workers_metrics_are_idle_with_a_return_per_checkout(fixed: Run) -> None:
    """'Between requests no connection is in use, nothing timed out, and every checkout has its return.'"""
    metrics = fixed.metrics
    assert set(metrics.index) == set(fixed.workers)
    assert (metrics["used"] == 0).all() and (metrics["timeouts"] == 0).all()
    assert (metrics["checkouts"] == metrics["returns"]).all() and (metrics["checkouts"] > 0).all()


def test_stopping_leaves_no_process_of_the_server(leaky: Run, fixed: Run) -> None:
    """'processes of its group still running: []' after each stop()."""
    assert leaky.left == [] and fixed.left == []


def test_try_it_1_without_signups_nothing_leaks(url: str, table: str, tmp_path: Path) -> None:
    """Try it 1: only /users and /slow: no 503 and no leak event."""
    quiet = run(url, tmp_path, fixed=False, mix={"/users": 6, "/slow?seconds=0.05": 2}, table=table)
    assert quiet.result.count() == quiet.result.count(status=200) > 0
    assert (quiet.recording["kind"] == "leak").sum() == 0


def test_try_it_2_threaded_workers_leak_at_the_same_site(url: str, table: str, tmp_path: Path) -> None:
    """Try it 2: gthread workers (4 threads): the same site and reason; the holders are welcome threads."""
    threaded = run(url, tmp_path, fixed=False, threads=4, table=table)
    leaks = threaded.recording[threaded.recording["kind"] == "leak"]
    assert set(leaks["reason"]) == {"thread_exited"} and len(leaks) > 0
    assert {site.split(":")[0] + " " + site.split(" in ")[1] for site in leaks["site"]} == {
        "poolviz/practice/app.py send_welcome"
    }
    assert holders(threaded.recording)["thread"].str.fullmatch(r"p\d+:welcome-\d+").all()
