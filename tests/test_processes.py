"""Multi-process runs on SQLite: every worker's events reach the parent, merged on one clock, dead workers reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import poolviz
from poolviz.data import analysis
from poolviz.events.merge import PROCESS_COLUMNS, MergedEventLog
from poolviz.testing import check_invariants, wait_until
from poolviz.workload import ensure_schema
from poolviz.workload.processes import run_processes, start_processes


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite file with the User table, shared by the worker processes."""
    url = f"sqlite+pool:///{tmp_path / 'procs.db'}"
    db = poolviz.connect(url, max_connections=1)
    ensure_schema(db)
    db.close_all()
    return url


def raw(seq: int, t: float, kind: str, conn: int, in_use: int, idle: int) -> tuple:
    return (seq, t, kind, conn, "worker-0", 0.0, 0.0, False, "", "", in_use, idle, 0)


def test_merged_log_orders_by_time_and_sums_the_counts() -> None:
    """Batches from two processes are released in time order once both have shipped past them; counts add up."""
    log = MergedEventLog([0, 1])
    base = log.t0
    assert log.add(0, base, [raw(0, 0.10, "connect", 1, 0, 0), raw(1, 0.11, "checkout", 1, 1, 0)], base + 1.0) == 0
    assert log.add(1, base, [raw(0, 0.05, "connect", 1, 0, 0), raw(1, 0.12, "checkout", 1, 1, 0)], base + 1.0) == 4
    events = log.snapshot()
    assert [e.thread for e in events] == ["p1:worker-0", "p0:worker-0", "p0:worker-0", "p1:worker-0"]
    assert [e.conn for e in events] == [1, 2, 2, 1]
    assert [e.in_use for e in events] == [0, 0, 1, 2]
    frame = log.to_frame()
    assert list(frame.columns[-len(PROCESS_COLUMNS) :]) == list(PROCESS_COLUMNS)
    assert frame["process"].tolist() == [1, 0, 0, 1] and frame["process_conn"].tolist() == [1, 1, 1, 1]


def test_an_ended_process_no_longer_holds_the_others_back() -> None:
    """A process that ends (or dies) releases everything the others sent."""
    log = MergedEventLog([0, 1])
    log.add(0, log.t0, [raw(0, 0.1, "connect", 1, 0, 0)], log.t0 + 5)
    assert len(log) == 0
    log.end(1)
    assert len(log) == 1


@pytest.mark.timeout(60)
def test_every_event_of_every_process_arrives_tagged_and_on_one_clock(url: str) -> None:
    """Three workers' events all reach the parent, each tagged with its process, times within the run."""
    before = time.perf_counter()
    result = run_processes(url, 3, 2, 5, 0.002, max_connections=2, wait_timeout=50)
    after = time.perf_counter()
    frame = result.events
    assert result.requests_ok == 30 and [w["status"] for w in result.workers] == ["ok"] * 3
    assert sorted(frame["process"].unique()) == [0, 1, 2]
    for process in range(3):
        mine = frame[frame["process"] == process]
        assert mine["process_seq"].tolist() == list(range(len(mine))), "no event lost or repeated"
        assert len(mine) == result.workers[process]["events"]
    assert frame["t"].is_monotonic_increasing
    assert frame["t"].min() >= 0 and frame["t"].max() <= after - before
    assert check_invariants(frame) == []
    assert analysis.summarize(frame)["requests"] == 30
    assert frame.attrs["max_connections"] == 6


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_worker_killed_mid_run_is_reported_and_the_run_still_ends(url: str) -> None:
    """SIGKILL on one worker: it is reported as killed, the requests it shipped are counted, the others finish."""
    run = start_processes(url, 2, 2, 400, 0.005, max_connections=2)
    wait_until(lambda: run.log.received[1] >= 10, timeout=20, what="worker 1 to ship its first events")
    run.kill(1)
    result = run.wait(50)
    dead = result.workers[1]
    assert dead["status"] == "killed by SIGKILL" and dead["exitcode"] == -9
    assert dead["requests"] > 0
    assert result.workers[0]["status"] == "ok" and result.requests_ok == 800
    assert result.summary()["workers_failed"] == {"1": "killed by SIGKILL"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"processes": 0}, "processes must be a positive integer, got 0"),
        (
            {"processes": 2, "start_method": "thread"},
            "start_method must be one of spawn, forkserver, fork, got 'thread'",
        ),
        ({"processes": 2, "url": "mysql://root:s3cret@h/test"}, "got 'mysql://root:***@h/test'"),
    ],
)
def test_bad_input_names_the_value(url: str, kwargs: dict, message: str) -> None:
    """processes=0, an unknown start method and a non-pool URL are refused with the value named (password masked)."""
    args = {"url": url, "workers": 1, "requests": 1, "hold": 0, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        start_processes(**args)


@pytest.mark.timeout(60)
def test_cli_run_with_processes_writes_one_merged_trace(tmp_path: Path) -> None:
    """python -m poolviz run --processes 2 writes one trace whose threads name their process."""
    from poolviz.cli import main
    from poolviz.data.traces import load_events

    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "--processes",
                "2",
                "--workers",
                "2",
                "--requests",
                "3",
                "--hold-ms",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    frame = load_events(out / "events.csv")
    assert {t.split(":")[0] for t in frame["thread"]} == {"p0", "p1"}
    assert (frame["kind"] == "checkout").sum() == 12


def test_a_merged_log_delivers_to_listeners() -> None:
    """Listeners of a MergedEventLog get each merged event, like those of a pool's own log."""
    log = MergedEventLog([0])
    seen: list = []
    log.subscribe(seen.append)
    with log.lock:
        log.add(0, log.t0, [raw(0, 0.1, "connect", 1, 0, 0)], None)
        log.end(0)
    log.flush()
    assert [(e.kind, e.thread) for e in seen] == [("connect", "p0:worker-0")]
