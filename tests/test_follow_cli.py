"""``poolviz follow DIR``: a top-like summary of a recording, per process, and who holds each connection now."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import poolviz
from poolviz.testing import SOURCE_ROOT, poolviz_cli, wait_until


def test_follow_once_prints_each_process_and_the_connections_held_now(app_pool: Any, tmp_path: Path) -> None:
    """--once prints one row for this process (its counts, waits, drops) and the held connection, then exits 0."""
    recorder = poolviz.record(app_pool, tmp_path / "rec", name="shop")
    for _ in range(3):
        app_pool.connect()
        app_pool.close()
    app_pool.connect()  # held while the command runs, taken here
    recorder.flush()
    try:
        done = poolviz_cli("follow", str(tmp_path / "rec"), "--once", cwd=tmp_path, timeout=60)
    finally:
        app_pool.close()
        recorder.stop()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'rec'}: 'shop', 1 process (1 live), 8 events read")
    header = lines[2].split()
    assert header[:2] == ["process", "state"] and "checkouts/s" in header and "dropped" in header
    row = lines[3].split()
    assert row[:5] == [str(os.getpid()), "live", "1", "0", "0"]  # in use, idle, waiting
    assert "holders now, longest first (1 connection held)" in done.stdout
    holder = next(line for line in lines if line.startswith(f"p{os.getpid()}:"))
    assert holder.split()[1] == "MainThread"
    assert "tests/test_follow_cli.py:" in holder  # the site where the test took it (contract 1)


def test_follow_once_shows_an_ended_stream_as_stopped(app_pool: Any, tmp_path: Path) -> None:
    """A stream whose recorder stopped is shown as stopped, holding nothing."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    app_pool.connect()
    app_pool.close()
    recorder.stop()
    done = poolviz_cli("follow", str(tmp_path), "--once", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[3].split()[:2] == [str(os.getpid()), "stopped"]
    assert "(0 connections held)" in done.stdout


def test_follow_once_on_an_empty_directory_says_there_is_no_recording_yet(tmp_path: Path) -> None:
    """--once with nothing recorded exits 2 naming the directory."""
    done = poolviz_cli("follow", str(tmp_path), "--once", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert f"poolviz follow: error: no recording in {str(tmp_path)!r} yet" in done.stderr


def test_follow_needs_a_name_when_two_applications_share_the_directory(tmp_path: Path) -> None:
    """Two applications' recordings in one directory: --name picks one, without it the error lists both."""
    first = poolviz.connect(f"sqlite+pool:///{tmp_path / 'a.db'}")
    second = poolviz.connect(f"sqlite+pool:///{tmp_path / 'b.db'}")
    with pytest.warns(poolviz.recording.RecordingWarning):
        recorders = [poolviz.record(first, tmp_path / "rec", name="shop"), poolviz.record(second, tmp_path / "rec")]
    for recorder in recorders:
        recorder.stop()
    done = poolviz_cli("follow", "rec", "--once", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "several applications: app, shop; pass name= (poolviz follow: --name)" in done.stderr
    done = poolviz_cli("follow", "rec", "--once", "--name", "shop", cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "'shop', 1 process" in done.stdout


def test_follow_runs_until_ctrl_c_and_exits_cleanly(app_pool: Any, tmp_path: Path) -> None:
    """Without --once it prints a summary every --interval until SIGINT, then exits 0 with no traceback."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    recorder.flush()
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolviz", "follow", str(tmp_path), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT)},
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "'shop', 1 process (1 live)" in first
        app_pool.connect()
        app_pool.close()
        wait_until(lambda: "3 events read" in proc.stdout.readline(), timeout=30, what="a later summary")
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        recorder.stop()
    assert proc.returncode == 0 and "Traceback" not in err
