"""Shared fixtures: pools on every backend, real servers or a clear skip (a failure in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import poolviz
from poolviz import servers
from poolviz.testing import FakeClock

FALLBACK_MYSQL_URL = "mysql+pool://poolviz:poolviz@127.0.0.1:3306/test"


def mysql_fallback_sql(user: str = "poolviz") -> str:
    """The statements that make the fallback test user ``user`` (password: its name) through the local socket.

    Besides the test database it may create users and grant on ``test``
    (``CREATE USER``, ``WITH GRANT OPTION``), so ``poolviz.servers.roles.ensure_role``
    can make the ``poolviz_app`` and ``poolviz_limited`` roles through it;
    .ci/run grants the same (tests/test_roles_servers.py checks these grants).
    """
    return (
        f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{user}';"
        f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{user}';"
        f"GRANT ALL ON test.* TO '{user}'@'127.0.0.1' WITH GRANT OPTION;"
        f"GRANT ALL ON test.* TO '{user}'@'localhost' WITH GRANT OPTION;"
        f"GRANT PROCESS, CONNECTION ADMIN, CREATE USER ON *.* TO '{user}'@'127.0.0.1';"
    )


def _create_mysql_user() -> bool:
    """If root may not log in over TCP, make a test user through the local socket."""
    if not shutil.which("mariadb"):
        return False
    result = subprocess.run(["mariadb", "-e", mysql_fallback_sql()], capture_output=True, timeout=20)
    return result.returncode == 0


def _server_url(name: str) -> str:
    """The URL for a server, or skip (fail when POOLVIZ_REQUIRE_SERVERS or CI is set) with the reason."""
    if name == "mysql":
        url = servers.mysql_url()
        reason = servers.reachable(url)
        denied = reason and "Access denied" in reason and not os.environ.get("POOLVIZ_MYSQL_URL")
        if denied and _create_mysql_user():
            url = FALLBACK_MYSQL_URL
            reason = servers.reachable(url)
    else:
        url = servers.postgres_url()
        reason = servers.reachable(url)
    if reason:
        message = f"{name} server not usable: {reason}"
        if servers.servers_required():
            pytest.fail(message + " (POOLVIZ_REQUIRE_SERVERS or CI is set: servers are required)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """A usable MariaDB/MySQL URL."""
    return _server_url("mysql")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A usable PostgreSQL URL."""
    return _server_url("postgresql")


@pytest.fixture(params=["mysql", "postgresql"])
def server_url(request: pytest.FixtureRequest) -> str:
    """Each server's (admin) URL in turn: MariaDB, then PostgreSQL."""
    return str(request.getfixturevalue(SERVER_URL_FIXTURES[request.param]))


@pytest.fixture
def server_pool(server_url: str) -> Iterator[Any]:
    """An instrumented pool of 2 on each server in turn, closed afterwards."""
    db = poolviz.connect(server_url, max_connections=2)
    yield db
    db.close_all()


BACKENDS = ["sqlite", "mysql", "postgresql", "psycopg3"]
SERVER_URL_FIXTURES = {"mysql": "mysql_url", "postgresql": "pg_url"}
SERVER_FIXTURES = frozenset({*SERVER_URL_FIXTURES.values(), "server_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `server` every test that needs MariaDB or PostgreSQL: it uses a server URL or a server backend."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend", "sqlite") if callspec else "sqlite"
        if backend != "sqlite" or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn (psycopg3 is PostgreSQL through psycopg 3)."""
    return str(request.param)


def closing_factory(build: Callable[..., Any], close: Callable[[Any], Any]) -> Iterator[Callable[..., Any]]:
    """Yield a factory that calls ``build``; everything it made is closed with ``close`` afterwards."""
    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        thing = build(*args, **kwargs)
        made.append(thing)
        return thing

    yield make
    for thing in made:
        close(thing)


@pytest.fixture
def make_pool(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """A factory for instrumented pools on the current backend; every pool is closed afterwards."""

    def build(**kwargs: Any) -> Any:
        if backend == "sqlite":
            return poolviz.connect(f"sqlite+pool:///{tmp_path / 'pool.db'}", **kwargs)
        if backend == "mysql":
            return poolviz.connect(request.getfixturevalue("mysql_url"), **kwargs)
        if backend == "psycopg3":
            return poolviz.connect(request.getfixturevalue("pg_url"), prefer_psycopg3=True, **kwargs)
        return poolviz.connect(request.getfixturevalue("pg_url"), **kwargs)

    yield from closing_factory(build, lambda db: db.close_all())


@pytest.fixture
def no_new_threads() -> Iterator[None]:
    """Fail the test if it leaves a thread running."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in left:
        t.join(timeout=5)
    left = [t.name for t in left if t.is_alive()]
    assert not left, f"threads left running: {left}"


@pytest.fixture
def make_dashboard() -> Iterator[Callable[..., Any]]:
    """A factory for live dashboards with server checks off (unless asked); every one is closed afterwards."""
    pytest.importorskip("ipywidgets")
    from poolviz.widgets import PoolDashboard

    def build(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("check_servers", False)
        return PoolDashboard(*args, **kwargs)

    yield from closing_factory(build, lambda dash: dash.close())


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """peewee's pool reads this hand-moved clock for connection ages for the test."""
    fake = FakeClock().patch()
    yield fake
    fake.restore()


def race_until(pool: Any, workers: int, requests: int, think: Any = 0.0, seed: int = 0) -> Any:
    """``workers`` threads back to back on ``pool`` with 5 ms holds, stopped once ``requests`` are done: the result.

    The barging and fairness claims race this way, so a slow machine makes the race
    longer, never shorter.
    """
    from poolviz.workload import run_closed_loop

    stop = threading.Event()

    def progress(done: int, _total: int | None) -> None:
        if done >= requests:
            stop.set()

    return run_closed_loop(pool, workers, 100_000, hold="fixed:0.005", think=think, seed=seed, stop=stop,
                           progress=progress)  # fmt: skip


#: The start of a node script that loads the live view's ES module (``input.module``) as ``view``;
#: NODE_INGEST also feeds ``input.batches`` (each ``{"header", "buffers": [base64]}``) into a store
#: ``s`` made from ``input.wire``.
NODE_LOAD = """
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const input = JSON.parse(readFileSync(0, "utf8"));
const view = await import(pathToFileURL(input.module).href);
"""
NODE_INGEST = (
    NODE_LOAD
    + """
const s = view.newStore(input.wire);
for (const batch of input.batches || []) {
  const buffers = batch.buffers.map((b) => {
    const raw = Buffer.from(b, "base64");
    return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  });
  view.ingest(s, batch.header, buffers);
}
"""
)


def run_view_module(script: str, payload: dict[str, Any], tmp_path: Path) -> Any:
    """Run ``script`` in node with the live view's ES module written to a file (its path in ``payload['module']``).

    ``script`` prints its answer as JSON; start it with :data:`NODE_INGEST` to get the
    view's store ``s`` fed with ``payload['batches']``. Skips when node is not installed.
    """
    import json

    from poolviz.live.view import esm_source

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the view's code is checked in the browser tests instead")
    module = tmp_path / "view.mjs"
    module.write_text(esm_source())
    runner = tmp_path / "runner.mjs"
    runner.write_text(script)
    done = subprocess.run(
        [node, str(runner)], input=json.dumps({**payload, "module": str(module)}), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def app_pool(tmp_path: Path) -> Iterator[Any]:
    """An application's instrumented SQLite pool of 4 (a file in tmp_path), closed afterwards."""
    pool = poolviz.connect(f"sqlite+pool:///{tmp_path / 'app.db'}", max_connections=4)
    yield pool
    pool.close_all()


@pytest.fixture
def reader() -> Any:
    """An OpenTelemetry in-memory metric reader (the otel extra)."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: Any) -> Iterator[Any]:
    """A meter provider read by ``reader``; shut down after the test."""
    from opentelemetry.sdk.metrics import MeterProvider

    made = MeterProvider(metric_readers=[reader])
    yield made
    made.shutdown()
