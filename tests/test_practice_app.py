"""The practice app: its endpoints (Flask's test client), the load driver, and gunicorn started and stopped for sure."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")

import poolviz
from poolviz.practice import AppServer, create_app, drive, serve
from poolviz.practice import server as server_module
from poolviz.practice.app import Settings
from poolviz.practice.load import request
from poolviz.testing import free_port, join_threads, wait_until


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+pool:///{tmp_path / 'app.db'}"


def make_app(url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("metrics", False)
    return create_app(url, **kwargs)


def welcome_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("welcome-")]


def signup(client: Any) -> dict[str, Any]:
    """One signup, its welcome thread finished."""
    before = set(welcome_threads())
    answer = client.get("/signup")
    assert answer.status_code == 200
    join_threads([t for t in welcome_threads() if t not in before])
    return answer.get_json()  # type: ignore[no-any-return]


def test_healthy_endpoint_gives_its_connection_back(sqlite_url: str) -> None:
    """/users takes a connection in before_request, selects, and teardown gives it back."""
    app = make_app(sqlite_url)
    db = app.config["POOLVIZ_DB"]
    answer = app.test_client().get("/users")
    assert answer.status_code == 200 and answer.get_json()["users"] == 0
    assert db._in_use == {} and len(db._connections) == 1


def test_every_answer_names_the_worker_process(sqlite_url: str) -> None:
    """Each response carries X-Worker-Pid, the process that answered."""
    answer = make_app(sqlite_url).test_client().get("/health")
    assert answer.headers["X-Worker-Pid"] == str(os.getpid())


def test_slow_endpoint_holds_its_connection_for_the_time_asked(sqlite_url: str) -> None:
    """/slow?seconds=S keeps its connection checked out for at least S seconds."""
    app = make_app(sqlite_url)
    db = poolviz.instrument(app.config["POOLVIZ_DB"])
    answer = app.test_client().get("/slow?seconds=0.05")
    assert answer.status_code == 200 and answer.get_json()["held_s"] == 0.05
    checkins = [e for e in db.events.snapshot() if e.kind == "checkin"]
    assert len(checkins) == 1 and checkins[0].duration_s >= 0.05


def test_signup_leaks_one_connection_for_good(sqlite_url: str) -> None:
    """Each /signup leaves one connection checked out by its welcome thread after the thread has ended."""
    app = make_app(sqlite_url)
    db = app.config["POOLVIZ_DB"]
    client = app.test_client()
    first, second = signup(client), signup(client)
    assert first["id"] != second["id"]
    assert len(db._in_use) == 2
    assert client.get("/users").get_json()["users"] == 2


def test_fixed_signup_gives_the_connection_back(sqlite_url: str) -> None:
    """With fixed=True the welcome thread's connection goes back to the pool (connection_context)."""
    app = make_app(sqlite_url, fixed=True)
    db = app.config["POOLVIZ_DB"]
    client = app.test_client()
    signup(client)
    signup(client)
    assert db._in_use == {}


def test_the_leak_is_reported_as_a_thread_that_exited(sqlite_url: str) -> None:
    """With a leak threshold the pool reports the signup's connection as a leak whose holder thread exited."""
    app = make_app(sqlite_url)
    db = poolviz.instrument(app.config["POOLVIZ_DB"], leak_threshold=0.05)
    signup(app.test_client())
    leak = wait_until(lambda: [e for e in db.events.snapshot() if e.kind == "leak"], what="a leak event")[0]
    assert leak.reason == "thread_exited" and leak.thread.startswith("welcome-")


def test_an_empty_pool_answers_503(sqlite_url: str) -> None:
    """Once leaks have taken every connection, a request waits the pool timeout and gets 503 'pool exhausted'."""
    app = make_app(sqlite_url, max_connections=2, pool_timeout=1)
    client = app.test_client()
    signup(client)
    signup(client)
    answer = client.get("/users")
    assert answer.status_code == 503 and "pool exhausted" in answer.get_json()["error"]
    assert client.get("/health").status_code == 200


def test_settings_come_from_the_environment(sqlite_url: str) -> None:
    """POOLVIZ_APP_* variables set the app; arguments win over them."""
    env = {"POOLVIZ_APP_URL": sqlite_url, "POOLVIZ_APP_FIXED": "1", "POOLVIZ_APP_MAX_CONNECTIONS": "7"}
    settings = Settings.from_env(env, max_connections=3)
    assert (settings.url, settings.fixed, settings.max_connections) == (sqlite_url, True, 3)
    assert Settings.from_env(env).max_connections == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "POOLVIZ_APP_URL"),
        ({"url": "sqlite:///x.db"}, "pooled URL"),
        ({"url": "sqlite+pool:///x.db", "table": "users; drop"}, "table must be"),
        ({"url": "sqlite+pool:///x.db", "max_connections": 0}, "max_connections must be a positive integer"),
    ],
)
def test_bad_settings_are_refused_clearly(kwargs: dict[str, Any], message: str, monkeypatch: Any) -> None:
    """A missing or unpooled URL, a bad table name or pool size: the message says what is allowed."""
    monkeypatch.delenv("POOLVIZ_APP_URL", raising=False)
    with pytest.raises(ValueError, match=message):
        create_app(**kwargs, metrics=False)


class _Stub(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 503 if self.path.startswith("/bad") else 200
        self.send_response(status)
        self.send_header("X-Worker-Pid", "4242")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    join_threads([thread])


def test_driver_sends_the_mix_and_keeps_every_reply(stub_url: str) -> None:
    """drive() sends the requests asked for, from the mix's paths, with status, latency and answering pid."""
    result = drive(stub_url, {"/good": 3, "/bad": 1}, concurrency=3, duration=30, requests=40)
    assert len(result.replies) == 40 and result.workers == {4242}
    assert {r.path for r in result.replies} == {"/good", "/bad"}
    assert all(r.status == (503 if r.path == "/bad" else 200) for r in result.replies)
    assert result.count(status=503) == result.count(path="/bad")
    summary = result.summary()
    assert summary.loc["/bad", "failed"] == summary.loc["/bad", "requests"]
    assert (result.frame()["latency_s"] > 0).all()


def test_driver_notes_requests_that_get_no_answer() -> None:
    """A request nobody answers has status 0 and its error's text; the driver itself does not raise."""
    reply = request(f"http://127.0.0.1:{free_port()}", "/users", timeout=2)
    assert reply.status == 0 and not reply.ok and "Connection" in reply.error


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({}, "mix must be"),
        ({"users": 1}, "start with '/'"),
        ({"/users now": 1}, "hold no spaces"),
        ({"/users": 0}, "positive number"),
    ],
)
def test_driver_refuses_a_bad_mix(mix: Any, message: str) -> None:
    """An empty mix, a path without '/' or with a space, a weight of zero: refused before any request."""
    with pytest.raises(ValueError, match=message):
        drive("http://127.0.0.1:1", mix, duration=0.1)


@pytest.mark.parametrize("base_url", ["localhost:8000", "https://127.0.0.1:8000", "http://127.0.0.1:99999"])
def test_driver_refuses_a_bad_base_url(base_url: str) -> None:
    """A base URL that is not http://host[:port]: refused at once, before any thread starts."""
    with pytest.raises(ValueError, match="base_url"):
        drive(base_url, "/users", duration=0.1)


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not server_module.group_members(pgid)


@pytest.mark.timeout(120)
def test_gunicorn_serves_with_several_workers_and_leaves_no_process(sqlite_url: str, tmp_path: Path) -> None:
    """serve() answers HTTP from every worker; stop() leaves no process of its group running."""
    server = serve(sqlite_url, workers=2, metrics=False, table="practice_user_t1")
    pgid = server.pgid
    assert pgid is not None
    try:
        assert len(server.worker_pids()) == 2 and set(server.worker_pids()) < set(server.members())
        result = drive(server.url, "/users", concurrency=4, duration=30, requests=40)
        assert result.count(status=200) == 40
        assert result.workers <= set(server.worker_pids())
    finally:
        server.stop()
    assert _gone(pgid) and server.members() == [] and not server.running


@pytest.mark.timeout(120)
def test_the_context_manager_stops_the_server(sqlite_url: str) -> None:
    """Leaving ``with AppServer(...)`` stops gunicorn and every worker, even when the block raises."""
    with pytest.raises(KeyError), AppServer(sqlite_url, workers=2, metrics=False) as server:
        pgid = server.pgid
        assert server.get("/health").ok
        raise KeyError("the block failed")
    assert pgid is not None and _gone(pgid)


@pytest.mark.timeout(120)
def test_an_app_that_cannot_boot_says_why_without_the_password() -> None:
    """A database the app cannot reach: RuntimeError with gunicorn's output's end, the password masked."""
    url = f"postgresql+pool://someone:Secr3tPw@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(RuntimeError, match="did not start") as caught:
        serve(url, workers=1, metrics=False)
    text = str(caught.value)
    assert "Secr3tPw" not in text and "OperationalError" in text


def test_a_port_in_use_is_refused(sqlite_url: str) -> None:
    """An explicit port something already listens on: RuntimeError naming the port, nothing started."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = AppServer(sqlite_url, port=port)
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 is in use"):
            server.start()
        assert server.process is None


def test_missing_gunicorn_says_what_to_install(sqlite_url: str, monkeypatch: Any) -> None:
    """Without gunicorn in this environment: RuntimeError naming it and the app extra."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gunicorn" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"gunicorn is not installed .*poolviz\[app\]"):
        AppServer(sqlite_url).start()


def test_a_memory_database_is_refused() -> None:
    """SQLite in memory cannot be shared by worker processes: refused with the reason."""
    with pytest.raises(ValueError, match="database file they can share"):
        AppServer("sqlite+pool:///:memory:")


@pytest.mark.timeout(120)
def test_stop_waits_out_a_request_in_flight_and_leaves_no_process(sqlite_url: str, tmp_path: Path) -> None:
    """A request still running at stop(): gunicorn's grace period ends it; no process of the group is left."""
    from poolviz.data import holders

    server = serve(sqlite_url, workers=2, metrics=False, record_dir=tmp_path / "rec", graceful_timeout=1)
    pgid = server.pgid
    assert pgid is not None
    replies: list[Any] = []
    hold = threading.Thread(target=lambda: replies.append(server.get("/slow?seconds=60", timeout=90)))
    hold.start()
    wait_until(lambda: len(holders(poolviz.load_recording(tmp_path / "rec"))) == 1, timeout=20, what="/slow holding")
    server.stop()
    join_threads([hold])
    assert _gone(pgid) and replies[0].status != 200


@pytest.mark.timeout(120)
def test_stop_kills_a_server_that_ignores_sigterm(sqlite_url: str) -> None:
    """A master that cannot act on SIGTERM (stopped with SIGSTOP): SIGKILL to the group after the timeout."""
    import signal

    server = serve(sqlite_url, workers=2, metrics=False)
    pgid = server.pgid
    assert pgid is not None
    os.kill(pgid, signal.SIGSTOP)
    server.stop(timeout=1)
    assert _gone(pgid) and server.members() == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fixed", [False, True], ids=["leaky", "fixed"])
def test_under_gunicorn_the_recording_finds_the_leak_at_its_site(sqlite_url: str, tmp_path: Path, fixed: bool) -> None:
    """gunicorn, 2 workers recording: each signup's leak at send_welcome's query (thread_exited); fixed: none."""
    import inspect

    from poolviz.practice import app as practice_app

    directory = tmp_path / "rec"
    # Pools of 20 for 12 requests: no signup's thread ever finds its pool empty, so each one leaks.
    settings: dict[str, Any] = {"workers": 2, "max_connections": 20, "metrics": False, "fixed": fixed}
    with serve(sqlite_url, **settings, record_dir=directory, leak_threshold=0.2) as server:
        result = drive(server.url, {"/signup": 1, "/users": 1}, concurrency=2, duration=30, requests=12)
        signups = result.count(path="/signup", status=200)
        server.wait_recorded()
        if not fixed:
            wait_until(lambda: (poolviz.load_recording(directory)["kind"] == "leak").sum() >= signups, what="leaks")
    frame = poolviz.load_recording(directory)
    leaks = frame[frame["kind"] == "leak"]
    if fixed:
        assert len(leaks) == 0 and result.count() == result.count(status=200)
        return
    lines, first = inspect.getsourcelines(practice_app.send_welcome)
    line = first + next(i for i, text in enumerate(lines) if "get_by_id" in text)
    assert len(leaks) == signups > 0 and set(leaks["reason"]) == {"thread_exited"}
    assert set(leaks["site"]) == {f"poolviz/practice/app.py:{line} in send_welcome"}
