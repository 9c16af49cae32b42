"""poolviz.record under gunicorn: the master records before forking, every worker records itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import poolviz
from poolviz.testing import SOURCE_ROOT, free_port, wait_until

pytest.importorskip("gunicorn")

APP = """
import poolviz

db = poolviz.connect("sqlite+pool:///{db}", max_connections=2)
recorder = poolviz.record(db, {directory!r}, name="shop")  # in the master: --preload imports this before forking


def app(environ, start_response):
    db.connect()
    db.execute_sql("SELECT 1").fetchone()
    db.close()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(__import__("os").getpid()).encode()]
"""


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.mark.timeout(120)
def test_gunicorn_workers_forked_after_record_each_record_themselves(tmp_path: Path) -> None:
    """With --preload, record() runs in the master; each of 2 workers writes its own stream, ended at shutdown."""
    (tmp_path / "shopapp.py").write_text(
        textwrap.dedent(APP.format(db=tmp_path / "shop.db", directory=str(tmp_path / "rec")))
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}", "shopapp:app"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{SOURCE_ROOT}{os.pathsep}{tmp_path}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served: dict[str, int] = {}
    try:

        def both_served() -> bool:
            try:
                pid = get(f"http://127.0.0.1:{port}/")
            except OSError:
                return False
            served[pid] = served.get(pid, 0) + 1
            return len(served) == 2

        wait_until(both_served, timeout=60, every=0.01, what="both workers to answer")
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err.decode()
    frame = poolviz.load_recording(tmp_path / "rec")
    workers = {int(pid) for pid in served}
    assert set(frame.attrs["processes"]) == workers | {server.pid}
    for pid, count in served.items():
        part = frame[frame["process"] == int(pid)]
        assert (part["kind"] == "checkout").sum() == count
    assert not (frame[frame["process"] == server.pid]["kind"] == "checkout").any()  # the master serves nothing
    reader = poolviz.recording.RecordingReader(tmp_path / "rec")
    reader.poll()
    assert {reader.processes[pid].ended for pid in workers} == {"stopped"}  # each worker's atexit ended its stream
