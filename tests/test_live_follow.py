"""The live view following a recording: real application processes write it, the view groups them and names holders."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NODE_LOAD, run_view_module

import poolviz
from poolviz.live.follow import Follow, follow
from poolviz.live.packing import unpack, wire_format
from poolviz.live.replay import Replay
from poolviz.live.view import LiveView
from poolviz.testing import wait_until

pytest.importorskip("anywidget")

# An application process: records its pool, serves a few quick requests, then a worker holds a connection in
# nightly_report until the test writes a line to its stdin; it prints "holding" once the worker holds it.
APP = """
import sys, threading
import poolviz

db = poolviz.connect(f"sqlite+pool:///{sys.argv[2]}", max_connections=3)
recorder = poolviz.record(db, sys.argv[1], name="shop")

def serve_request():
    with db.connection_context():
        db.execute_sql("SELECT 1")

def nightly_report(holding, release):
    db.connect()
    holding.set()
    release.wait()
    db.close()

for _ in range(5):
    serve_request()
holding, release = threading.Event(), threading.Event()
worker = threading.Thread(target=nightly_report, args=(holding, release), name="reporter")
worker.start()
holding.wait()
print("holding", flush=True)
sys.stdin.readline()
release.set()
worker.join()
recorder.stop()
"""


def site(code: str, function: str) -> str:
    """The site B's pools record for the line of APP holding ``code``."""
    return f"app.py:{APP.splitlines().index(code) + 1} in {function}"


REPORT_SITE = site("    db.connect()", "nightly_report")
REQUEST_SITE = site("    with db.connection_context():", "serve_request")


class Sent:
    """Every message a LiveView sends (patched on the class, so a Follow's own view is caught from the start)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []

    def __call__(self, view: LiveView, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.lock:
            self.messages.append((dict(content), [bytes(b) for b in buffers or []]))

    def batches(self) -> list[tuple[dict[str, Any], list[bytes]]]:
        with self.lock:
            return [(h, b) for h, b in self.messages if h.get("type") == "events"]

    def events(self) -> list[dict[str, Any]]:
        """The events sent so far, decoded as the browser decodes them."""
        threads: dict[int, str] = {}
        reasons: dict[int, str] = {}
        sites: dict[int, str] = {}
        return [e for h, b in self.batches() for e in unpack(h, b, threads, reasons, sites)]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    catcher = Sent()
    monkeypatch.setattr(LiveView, "send", lambda view, content, buffers=None: catcher(view, content, buffers))
    return catcher


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Two processes of the application, recording into tmp_path/rec; released and reaped at teardown."""
    (tmp_path / "rec").mkdir()
    (tmp_path / "app.py").write_text(APP)
    procs = [
        subprocess.Popen(
            [sys.executable, "app.py", str(tmp_path / "rec"), str(tmp_path / f"shop{i}.db")],
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def release(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(30) == 0


NODE_HOLDERS_NOW = (
    NODE_LOAD
    + """
// The view's store fed with every message in order, as the browser is: batches, and processes gone.
const s = view.newStore(input.wire, true);
for (const { header, buffers } of input.messages) {
  if (header.type === "gone") view.gone(s, header.process, header.t);
  if (header.type !== "events") continue;
  view.ingest(s, header, buffers.map((b) => {
    const raw = Buffer.from(b, "base64");
    return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  }));
}
const rows = view.holdersAt(s, s.nowK, true).map((r) => [r.process, r.thread, r.site]);
process.stdout.write(JSON.stringify({ rows, groups: s.groups.map((g) => g.key) }));
"""
)


def holders_in_browser(sent: Sent, tmp_path: Path) -> dict[str, Any]:
    """What the view's holders table lists, from the messages sent so far (the view's store, run in node)."""
    with sent.lock:
        messages = [{"header": h, "buffers": [base64.b64encode(x).decode() for x in b]} for h, b in sent.messages]
    return run_view_module(NODE_HOLDERS_NOW, {"wire": wire_format(), "messages": messages}, tmp_path)


def follow_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("poolviz-follow", "poolviz-live-shipper")]


def test_following_two_application_processes_groups_them_and_names_who_holds_what_where(
    tmp_path: Path, sent: Sent, apps: list[subprocess.Popen[str]]
) -> None:
    """Two processes record into one directory; the view gets both, grouped by process, with each holder's site."""
    pids = {proc.pid for proc in apps}
    with follow(tmp_path / "rec", name="shop", interval_s=0.05) as followed:
        assert followed.view.by_process and sent.messages[0][0]["by_process"] is True
        for proc in apps:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"

        def both_holding() -> bool:
            return {e["thread"] for e in sent.events() if e["kind"] == "checkout"} >= {f"p{p}:reporter" for p in pids}

        wait_until(both_holding, timeout=30, what="both processes' reporter checkouts shipped to the view")
        checkouts = [e for e in sent.events() if e["kind"] == "checkout"]
        assert {e["thread"].split(":")[0] for e in checkouts} == {f"p{p}" for p in pids}
        sites = {e["site"] for e in checkouts}
        assert {REPORT_SITE, REQUEST_SITE} <= sites, sites
        seen = holders_in_browser(sent, tmp_path)
        assert sorted(seen["groups"]) == sorted(f"p{p}" for p in pids)
        assert sorted(seen["rows"]) == sorted([str(p), "reporter", REPORT_SITE] for p in pids)
        assert all(f"p{p} running" in followed.status_text() for p in pids)

        release(apps)
        wait_until(lambda: "running" not in followed.status_text(), timeout=30, what="both streams ended")
        wait_until(lambda: not holders_in_browser(sent, tmp_path)["rows"], timeout=30, what="no holder left")
        assert followed.stop()
        assert not follow_threads()
    assert followed.error == "" and not followed.running


def test_a_process_that_dies_holding_a_connection_leaves_the_holders_table(
    tmp_path: Path, sent: Sent, apps: list[subprocess.Popen[str]]
) -> None:
    """One app process killed while its worker holds a connection: once its stream ends, only the other holds one."""
    with follow(tmp_path / "rec", name="shop", interval_s=0.05) as followed:
        for proc in apps:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        wait_until(lambda: len(holders_in_browser(sent, tmp_path)["rows"]) == 2, timeout=30, what="both holding")
        dead, alive = apps
        dead.kill()
        wait_until(lambda: f"p{dead.pid} exited" in followed.status_text(), timeout=30, what="the killed stream ended")
        gone = wait_until(
            lambda: [h for h, _b in sent.messages if h.get("type") == "gone"], timeout=30, what="the view told"
        )
        assert gone == [{"type": "gone", "process": f"p{dead.pid}", "t": gone[0]["t"]}]
        assert holders_in_browser(sent, tmp_path)["rows"] == [[str(alive.pid), "reporter", REPORT_SITE]]
        assert f"p{alive.pid} running" in followed.status_text()
        release([alive])


def test_stop_leaves_no_thread_and_sends_the_last_events(tmp_path: Path, sent: Sent) -> None:
    """A follow of a directory with no stream yet waits; stop() ends both threads and freezes the view's axis."""
    (tmp_path / "rec").mkdir()
    followed = Follow(tmp_path / "rec", interval_s=0.02)
    wait_until(lambda: followed.polls >= 3, what="the follow thread polling")
    assert followed.status_text().startswith("waiting for a recording in")
    assert set(follow_threads()) == {"poolviz-follow", "poolviz-live-shipper"}
    assert followed.stop()
    assert not follow_threads() and not followed.running
    assert sent.messages[-1][0]["type"] == "end"
    followed.close()


def test_a_missing_directory_is_refused_at_once_with_its_path(tmp_path: Path) -> None:
    """follow() on a directory that does not exist raises FileNotFoundError naming it, and starts no thread."""
    with pytest.raises(FileNotFoundError, match="no recording at .*nowhere"):
        follow(tmp_path / "nowhere")
    assert not follow_threads()


def test_a_recording_that_goes_away_is_reported_above_the_view(tmp_path: Path, sent: Sent) -> None:
    """The directory removed while followed: the error is shown in the status line and the thread carries on."""
    (tmp_path / "rec").mkdir()
    with Follow(tmp_path / "rec", interval_s=0.02) as followed:
        (tmp_path / "rec").rmdir()
        wait_until(lambda: followed.error, what="the follow noticing the directory is gone")
        assert "directory is gone" in followed.error and "directory is gone" in followed.status.value
        assert followed.running
    assert not follow_threads()


def test_replay_plays_a_finished_recording_grouped_by_process_with_sites(
    tmp_path: Path, sent: Sent, apps: list[subprocess.Popen[str]]
) -> None:
    """Replay(load_recording(dir)) sends every event of both processes, lanes grouped, checkouts with their sites."""
    for proc in apps:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    release(apps)
    frame = poolviz.load_recording(tmp_path / "rec", name="shop")
    replay = Replay(frame)
    try:
        assert replay.view.by_process
        events = sent.events()
        assert len(events) == len(frame) > 0
        assert {e["thread"].split(":")[0] for e in events} == {f"p{proc.pid}" for proc in apps}
        assert [e["site"] for e in events if e["kind"] == "checkout"] == frame.loc[
            frame["kind"] == "checkout", "message"
        ].tolist()
        assert sent.messages[-1][0] == {"type": "end", "t": replay.t_end}
        assert replay.seek((replay.t_start + replay.t_end) / 2)
    finally:
        replay.close()
