"""The command line end to end: ``python -m poolviz run | sweep | report`` in a subprocess."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from poolviz.cli import build_parser
from poolviz.data.traces import load_events

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL = ["--workers", "4", "--requests", "10", "--hold-ms", "2"]


def poolviz_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m poolviz ARGS`` in ``cwd`` and capture its output (carriage returns kept)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "poolviz", *args],
        capture_output=True,
        timeout=180,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def assert_png(path: Path) -> None:
    """The file is a non-empty PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 1000


def assert_run_outputs(out: Path, workers: int, requests: int) -> dict:
    """The run wrote every file, and summary.json agrees with events.csv and requests.csv."""
    for name in ("events.csv", "events.meta.json", "requests.csv", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    for name in ("timeline.png", "occupancy.png", "waits.png", "fairness.png"):
        assert_png(out / name)
    frame = load_events(out / "events.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fair_workers"] >= 1 and summary["waiting_now"] == 0
    checkouts = int((frame["kind"] == "checkout").sum())
    timeouts = int((frame["kind"] == "timeout").sum())
    assert summary["requests"] == checkouts + timeouts == workers * requests
    assert summary["checkouts"] == checkouts
    assert summary["timeouts"] == timeouts
    assert summary["events"] == len(frame)
    last = frame.iloc[-1]
    assert (summary["events_dropped"], summary["pool_max"]) == (0, frame.attrs["max_connections"])
    assert (summary["pool_size"], summary["pool_available"], summary["requests_waiting"]) == (
        last["in_use"] + last["idle"],
        last["idle"],
        last["waiting"],
    )
    workload = summary["workload"]
    assert workload["requests"] == workers * requests
    assert workload["requests_ok"] == checkouts
    assert workload["requests_failed"] == timeouts
    with (out / "requests.csv").open() as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == workers * requests
    return summary


@pytest.mark.parametrize(
    ("pool", "expect_timeouts"),
    [(["--max-connections", "2"], False), (["--max-connections", "1", "--timeout", "none", "--hold-ms", "10"], True)],
    ids=["waiting-pool", "no-wait-pool"],
)
def test_run_on_sqlite_writes_a_consistent_trace_summary_and_plots(
    tmp_path: Path, pool: list[str], expect_timeouts: bool
) -> None:
    """With no --url the run uses SQLite in --out and writes a trace, a summary and three PNGs that agree."""
    out = tmp_path / "out"
    result = poolviz_cli("run", *SMALL, *pool, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = assert_run_outputs(out, 4, 10)
    assert (out / "poolviz.db").exists()
    assert summary["workload"]["hold_method"] == "time.sleep"
    assert summary["url"].startswith("sqlite+pool:///")
    assert (summary["timeouts"] > 0) == expect_timeouts
    assert "40 requests" in result.stdout


def test_run_on_mariadb_holds_with_server_sleep(tmp_path: Path, mysql_url: str) -> None:
    """A run on MariaDB writes the same consistent files and holds connections with SELECT SLEEP."""
    out = tmp_path / "out"
    result = poolviz_cli("run", "--url", mysql_url, *SMALL, "--max-connections", "2", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = assert_run_outputs(out, 4, 10)
    assert summary["workload"]["hold_method"] == "SELECT SLEEP(%s)"
    assert load_events(out / "events.csv").attrs["backend"] == "mysql"


@pytest.mark.slow
def test_run_open_loop_on_sqlite(tmp_path: Path) -> None:
    """--open-loop sends --requests Poisson arrivals at --rate to --workers threads."""
    out = tmp_path / "out"
    args = ["--open-loop", "--rate", "500", "--workers", "3", "--requests", "30", "--hold-ms", "2"]
    result = poolviz_cli("run", *args, "--distribution", "exp", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = assert_run_outputs(out, 1, 30)
    assert summary["workload"]["mode"] == "open"
    assert summary["workload"]["rate"] == 500.0
    assert summary["workload"]["hold"] == "exp:0.002"


@pytest.mark.slow
def test_report_redraws_a_saved_trace(tmp_path: Path) -> None:
    """report reads a saved trace and writes the same summary figures and three PNGs."""
    run_out = tmp_path / "run"
    assert poolviz_cli("run", *SMALL, "--out", str(run_out), cwd=tmp_path).returncode == 0
    report_out = tmp_path / "report"
    result = poolviz_cli("report", str(run_out / "events.csv"), "--out", str(report_out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("timeline.png", "occupancy.png", "waits.png"):
        assert_png(report_out / name)
    original = json.loads((run_out / "summary.json").read_text())
    redrawn = json.loads((report_out / "summary.json").read_text())
    original.pop("workload")
    assert redrawn == original


@pytest.mark.slow
def test_report_writes_beside_the_trace_by_default_without_touching_the_run_summary(tmp_path: Path) -> None:
    """Without --out, report writes to a 'report' folder beside the trace and leaves the run's files alone."""
    run_out = tmp_path / "run"
    assert poolviz_cli("run", *SMALL, "--out", str(run_out), cwd=tmp_path).returncode == 0
    before = (run_out / "summary.json").read_text()
    result = poolviz_cli("report", str(run_out / "events.csv"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_png(run_out / "report" / "timeline.png")
    assert (run_out / "summary.json").read_text() == before


@pytest.mark.slow
def test_sweep_on_sqlite_writes_a_table_a_plot_and_a_progress_bar(tmp_path: Path) -> None:
    """sweep runs one closed loop per size, writes sweep.csv and sweep.png and draws progress on stderr."""
    out = tmp_path / "out"
    result = poolviz_cli(
        "sweep",
        "--sizes",
        "1,2,4",
        "--workers",
        "4",
        "--requests",
        "5",
        "--hold-ms",
        "2",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "\r[" in result.stderr
    assert "] 60/60" in result.stderr
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["max_connections"]) for r in rows] == [1, 2, 4]
    assert all(int(r["requests"]) == 20 for r in rows)
    for column in ("throughput_rps", "wait_p95_s", "predicted_wait_p95_s", "predicted_wait_prob", "utilisation"):
        assert column in rows[0]
    assert_png(out / "sweep.png")


def _not_a_folder(tmp_path: Path) -> str:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return str(blocker / "out")


def _not_a_trace(tmp_path: Path) -> str:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    return str(path)


BAD_INPUTS = [
    (["run", "--workers", "-3"], ["--workers", "'-3'", "positive integer"]),
    (["run", "--workers", "0"], ["--workers", "'0'"]),
    (["run", "--requests", "0"], ["--requests", "'0'"]),
    (["run", "--max-connections", "0"], ["--max-connections", "'0'"]),
    (["run", "--hold-ms", "-5"], ["--hold-ms", "'-5'", ">= 0"]),
    (["run", "--distribution", "gauss"], ["--distribution", "'gauss'", "fixed"]),
    (["run", "--timeout", "soon"], ["--timeout", "'soon'", "none"]),
    (["run", "--open-loop"], ["--open-loop", "--rate"]),
    (["run", "--rate", "5"], ["--rate", "--open-loop"]),
    (["run", "--open-loop", "--rate", "0"], ["--rate", "'0'"]),
    (["run", "--url", "nosuch://x/y"], ["'nosuch'", "sqlite+pool://"]),
    (["run", "--url", "mysql://root@127.0.0.1:3306/test"], ["would not pool", "mysql+pool://"]),
    (["run", "--url", "mysql+pool://root:s3cret@127.0.0.1:1/test"], ["127.0.0.1:1", "root:***@"]),
    (["sweep", "--sizes", "1,x"], ["--sizes", "'1,x'"]),
    (["sweep", "--sizes", "0"], ["--sizes", "'0'"]),
    (["report", "MISSING"], ["missing.csv"]),
    (["report", "NOT_A_TRACE"], ["other.csv", "missing the columns", "seq"]),
    (["run", "--out", "NOT_A_FOLDER"], ["--out", "a-file"]),
    (["frobnicate"], ["'frobnicate'"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_gets_one_line_naming_the_value_and_exit_2(tmp_path: Path, args: list[str], words: list[str]) -> None:
    """Each bad input ends with exit code 2 and a single stderr line naming it, without a traceback."""
    placeholders = {
        "MISSING": str(tmp_path / "missing.csv"),
        "NOT_A_TRACE": _not_a_trace(tmp_path),
        "NOT_A_FOLDER": _not_a_folder(tmp_path),
    }
    args = [placeholders.get(a, a) for a in args]
    if args[0] in ("run", "sweep") and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = poolviz_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert "s3cret" not in result.stderr + result.stdout


def test_every_option_has_help() -> None:
    """Every argument of every command carries a help string."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {"run", "sweep", "report", "follow"}
    for name, command in subparsers.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_help_lists_the_options(tmp_path: Path) -> None:
    """``run --help`` exits 0 and explains the main options."""
    result = poolviz_cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--url", "--max-connections", "--workers", "--requests", "--hold-ms", "--open-loop", "--out"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "url", ["nosuch://x/y", "mysql://root@127.0.0.1:3306/test", "mysql+pool://root@127.0.0.1:1/test"]
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_bad_url_is_refused_before_out_is_created(tmp_path: Path, command: str, url: str) -> None:
    """A malformed, unpooled or unreachable --url exits 2 and leaves no --out folder behind."""
    out = tmp_path / "never"
    result = poolviz_cli(command, "--url", url, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "url", ["postgresql+asyncpool://nobody:s3cret@127.0.0.1:1/test", "mysql+asyncpool://root:s3cret@127.0.0.1:1/test"]
)
def test_unreachable_asyncio_url_is_refused_before_out_is_created(tmp_path: Path, url: str) -> None:
    """An asyncio --url whose server does not answer exits 2 naming it (password masked), and writes nothing."""
    out = tmp_path / "never"
    result = poolviz_cli("run", "--url", url, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is not usable: no server at 127.0.0.1:1" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_workloads_know_nothing_of_the_command_line() -> None:
    """The CLI's run paths live in poolviz/cli: no workload module imports argparse or the CLI, or takes its args."""
    import ast

    for path in sorted((ROOT / "poolviz" / "workload").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {"argparse", "cli", "poolviz.cli"} & imported, path.name
        names = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        # "cli" as a word of the name (run_cli, cli_args), not inside one (client_for).
        assert not {name for name in names if "cli" in name.split("_")}, path.name


def test_run_prints_the_longest_wait_and_the_service_per_worker(tmp_path: Path) -> None:
    """The summary line never gives a p95 alone: the p99, the max and checkouts per worker come with it."""
    done = poolviz_cli(
        "run",
        "--workers",
        "4",
        "--max-connections",
        "1",
        "--requests",
        "5",
        "--hold-ms",
        "5",
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"wait p95 [^,]+, p99 [^,]+, max [0-9.]+ (ms|s|µs); checkouts per worker 5-5 \(median 5\)", done.stdout
    ), done.stdout
