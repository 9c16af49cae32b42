"""The practice app under gunicorn on a real server: each worker records itself, the leak found by its site, the fix."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("flask")
pytest.importorskip("gunicorn")

import poolviz
from poolviz.practice import app as practice_app
from poolviz.practice import drive, serve
from poolviz.testing import wait_until

MIX = {"/users": 6, "/slow?seconds=0.05": 2, "/signup": 2}
# Real servers, two backends, a gunicorn per test: slow (make test and CI run it; test_practice_app has a quick one).
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def leak_line() -> int:
    """The line of ``send_welcome`` where its thread takes the connection it never gives back."""
    lines, first = inspect.getsourcelines(practice_app.send_welcome)
    return first + next(i for i, line in enumerate(lines) if "get_by_id" in line)


def site_of(frame: Any) -> Any:
    """Each row's checkout site: the ``site`` column, or a leak's message's first entry (its stack starts there)."""
    if "site" in frame:
        return frame["site"]
    return frame["message"].str.split(" < ").str[0]


@pytest.fixture
def table(server_url: str) -> Iterator[str]:
    name = f"practice_user_{uuid.uuid4().hex[:8]}"
    yield name
    practice_app.drop_table(server_url, name)


def run(url: str, table: str, directory: Path, *, fixed: bool, requests: int = 60) -> tuple[Any, Any, list[int], int]:
    """Serve the app (3 workers, pools of 4, leak threshold 0.3 s), send ``requests`` requests (or 3 s of them)."""
    server = serve(url, workers=3, fixed=fixed, table=table, record_dir=directory, leak_threshold=0.3)
    try:
        workers = server.worker_pids()
        result = drive(server.url, MIX, concurrency=6, duration=3, requests=requests)
        if not fixed:  # leaks are reported 0.3 s after their checkout: wait for those of the last signups
            wait_until(lambda: _leaks(directory) >= _leaking(result, server), timeout=20, what="a leak per signup")
    finally:
        server.stop()
    assert server.members() == []
    return result, poolviz.load_recording(directory), workers, _leaking(result, server)


def _leaking(result: Any, server: Any) -> int:
    """The signups whose welcome thread got a connection: each ok signup, less those whose thread logged it failed."""
    signups = sum(1 for r in result.replies if r.path == "/signup" and r.ok)
    return signups - server.log_text().count("not sent")


def _leaks(directory: Path) -> int:
    frame = poolviz.load_recording(directory)
    return int((frame["kind"] == "leak").sum())


def test_every_worker_records_its_own_stream(server_url: str, table: str, tmp_path: Path) -> None:
    """gunicorn forks its workers after record(): each worker's events are in a stream of its own pid."""
    result, frame, workers, _leaking_signups = run(server_url, table, tmp_path / "rec", fixed=True)
    assert set(workers) <= set(frame.attrs["processes"])
    answered = {r.pid for r in result.replies}
    checkouts = frame[frame["kind"] == "checkout"]
    assert answered <= set(checkouts["process"]) and frame.attrs["dropped"] == 0


def test_the_leak_is_found_by_its_site(server_url: str, table: str, tmp_path: Path) -> None:
    """Leaky app: each leak is a welcome thread that exited, taken at send_welcome's query; the pool fills: 503s."""
    result, frame, _workers, leaking = run(server_url, table, tmp_path / "rec", fixed=False)
    leaks = frame[frame["kind"] == "leak"]
    assert len(leaks) == leaking > 0
    assert set(leaks["reason"]) == {"thread_exited"}
    assert leaks["thread"].str.contains(r"^p\d+:welcome-\d+$").all()
    assert set(site_of(leaks)) == {f"poolviz/practice/app.py:{leak_line()} in send_welcome"}
    assert result.count(status=503) > 0


def test_the_fix_removes_the_leak(server_url: str, table: str, tmp_path: Path) -> None:
    """The fixed app under the same load: no leak, no 503, every checkout checked back in."""
    result, frame, _workers, _leaking_signups = run(server_url, table, tmp_path / "rec", fixed=True)
    kinds = frame["kind"].value_counts()
    assert kinds.get("leak", 0) == 0 and kinds.get("timeout", 0) == 0
    assert kinds["checkout"] == kinds["checkin"] >= len(result.replies)
    assert result.count() == result.count(status=200)


def test_each_worker_serves_its_own_pool_metrics(pg_url: str, tmp_path: Path) -> None:
    """/metrics answers the answering worker's db.client.connection.* metrics, in Prometheus' text format."""
    name = f"practice_user_{uuid.uuid4().hex[:8]}"
    server = serve(pg_url, workers=2, fixed=True, table=name)
    try:
        drive(server.url, "/users", concurrency=4, duration=60, requests=40)
        seen: dict[int, str] = {}

        def scraped_every_worker() -> bool:
            reply = server.get("/metrics")
            assert reply.status == 200 and reply.pid is not None
            seen[reply.pid] = reply.body.decode()
            return set(seen) == set(server.worker_pids())

        wait_until(scraped_every_worker, timeout=30, what="a scrape from every worker")
    finally:
        server.stop()
        practice_app.drop_table(pg_url, name)
    parts = urlsplit(pg_url)
    pool_name = f"{parts.hostname}:{parts.port or 5432}{parts.path}"
    for text in seen.values():
        used = re.search(r'db_client_connection_count\{[^}]*state="used"[^}]*\} (\S+)', text)
        assert used is not None and float(used.group(1)) == 0.0
        assert f'db_client_connection_pool_name="{pool_name}"' in text
        assert re.search(r"db_client_connection_max\{[^}]*\} 4\.0", text)
        assert re.search(r"db_client_connection_use_time_seconds_count\{[^}]*\} [1-9]", text)
