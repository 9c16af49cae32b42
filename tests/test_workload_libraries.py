"""The workloads on every pool library: peewee, SQLAlchemy's QueuePool (an Engine) and psycopg_pool, on real servers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import poolviz
from poolviz.pools.factory import build
from poolviz.workload import WorkloadResult, WorkloadSpec, run_closed_loop, run_open_loop, sweep
from poolviz.workload.asyncio_loops import run_async_closed_loop
from poolviz.workload.clients import client_for
from poolviz.workload.processes import start_processes

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg_pool")

SIZES = {"peewee": "max_connections", "sqlalchemy": "pool_size", "psycopg": "max_size"}
HOLD_SQL = {"postgresql": "SELECT pg_sleep(%s)", "mysql": "SELECT SLEEP(%s)", "sqlite": "time.sleep"}


@pytest.fixture
def pool_of(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str, str, int], Any]]:
    """``pool_of(library, backend, size)``: an instrumented pool of that library, closed after the test."""
    made: list[Any] = []

    def make(library: str, backend: str, size: int) -> Any:
        if backend == "sqlite":
            url = f"sqlite+pool:///{tmp_path / 'libraries.db'}"
        else:
            url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
        target = build(library, url, **{SIZES[library]: size, "timeout": 10.0})
        made.append(target)
        return target

    yield make
    for target in made:
        client_for(target).close()


def assert_linked(result: WorkloadResult, size: int) -> None:
    """Each record's conn, wait and hold are its own checkout's and checkin's; the counts add up."""
    frame = result.events
    by_seq = {int(row.seq): row for row in frame.itertuples()}
    checkins = frame[frame["kind"] == "checkin"]
    for record in result.records:
        checkout = by_seq[record.seq]
        assert (checkout.kind, checkout.conn, checkout.thread) == ("checkout", record.conn, record.thread)
        assert checkout.wait_s == record.wait_s
        later = checkins[(checkins["seq"] > record.seq) & (checkins["thread"] == record.thread)]
        checkin = later.iloc[0]
        assert checkin["conn"] == record.conn and checkin["duration_s"] == record.held_s
        assert record.held_s >= record.hold_s > 0
    kinds = frame["kind"].value_counts()
    assert kinds["checkout"] == kinds["checkin"] == len(result.records)
    assert frame["in_use"].max() <= size and frame["waiting"].min() >= 0
    assert frame.loc[frame["kind"] == "checkout", "conn"].nunique() <= size


CASES = [
    ("peewee", "postgresql"),
    ("sqlalchemy", "postgresql"),
    ("psycopg", "postgresql"),
    ("sqlalchemy", "mysql"),
    ("sqlalchemy", "sqlite"),
]


@pytest.mark.parametrize(("library", "backend"), CASES)
def test_a_closed_loop_links_every_record_to_its_own_events(
    pool_of: Callable[[str, str, int], Any], library: str, backend: str
) -> None:
    """Four threads on a pool of two: every request checks out, works, holds and checks in, all recorded."""
    target = pool_of(library, backend, 2)
    result = run_closed_loop(target, workers=4, requests=4, hold="fixed:0.004")
    assert (result.requests, result.requests_ok) == (16, 16), [r.error_message for r in result.records]
    assert result.hold_method == HOLD_SQL[backend]
    assert result.events.attrs["library"] == {"psycopg": "psycopg_pool"}.get(library, library)
    assert result.events.attrs["backend"] == backend
    assert_linked(result, 2)
    assert {r.thread for r in result.records} == {f"worker-{i}" for i in range(4)}
    assert count_rows(target, result.row_prefix) == 0


def count_rows(target: Any, prefix: str) -> int:
    """How many ``User`` rows named with ``prefix`` the database holds (through the pool's own client)."""
    client: Any = client_for(target)
    if client.library == "peewee":
        with target.connection_context():
            return int(client.model.select().where(client.model.username.startswith(prefix)).count())
    model = client.sql.model
    sql, params = model.select().where(model.username.startswith(prefix)).sql()
    with client.connection() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


@pytest.mark.parametrize("library", ["sqlalchemy", "psycopg"])
def test_an_open_loop_runs_on_the_other_libraries(pool_of: Callable[[str, str, int], Any], library: str) -> None:
    """Poisson arrivals served by handler threads: every arrival is one request linked to its events."""
    target = pool_of(library, "postgresql", 2)
    result = run_open_loop(target, rate=500.0, requests=8, threads=3, hold="fixed:0.002")
    assert (result.requests, result.requests_ok, result.abandoned) == (8, 8, 0)
    assert_linked(result, 2)


def test_a_request_the_pool_times_out_is_recorded_with_its_timeout(pg_url: str) -> None:
    """A psycopg_pool PoolTimeout is the request's error, linked to its timeout event, and the run goes on."""
    pool = build("psycopg", pg_url, max_size=1, timeout=0.05)
    held = pool.getconn()  # the pool's only connection: every request waits and times out
    try:
        result = run_closed_loop(pool, workers=2, requests=2, hold=0, setup=False, cleanup=False)
    finally:
        pool.putconn(held)
        pool.close()
    assert (result.requests, result.requests_failed) == (4, 4)
    by_seq = {int(row.seq): row for row in result.events.itertuples()}
    for record in result.records:
        assert record.error_type == "PoolTimeout"
        assert by_seq[record.seq].kind == "timeout" and by_seq[record.seq].thread == record.thread
        assert record.wait_s == by_seq[record.seq].wait_s >= 0.05
        assert record.conn == 0 and math.isnan(record.held_s)


@pytest.mark.parametrize("library", ["sqlalchemy", "psycopg"])
def test_a_sweep_builds_the_library_pool_for_each_size(pg_url: str, library: str) -> None:
    """A sweep from a URL builds one pool of the library per size, with its size setting."""
    table = sweep(pg_url, [1, 2], workers=2, requests=2, hold=0.001, library=library)
    assert list(table["max_connections"]) == [1, 2]
    assert list(table["requests"]) == [4, 4] and list(table["requests_failed"]) == [0, 0]


def test_a_sweep_refuses_the_size_among_the_settings(pg_url: str) -> None:
    """The sweep sets the size: giving it in pool_settings too is refused, naming it."""
    with pytest.raises(ValueError, match="pool_settings must not set pool_size"):
        sweep(pg_url, [1], workers=1, requests=1, hold=0, library="sqlalchemy", pool_settings={"pool_size": 3})


def test_a_spec_builds_and_runs_its_library_pool(pg_url: str) -> None:
    """WorkloadSpec(library=..., pool_settings=...) builds that pool; its run is that library's."""
    spec = WorkloadSpec(workers=2, requests=2, hold_ms=1, library="sqlalchemy", pool_settings={"pool_size": 1})
    engine = spec.build(pg_url)
    try:
        assert poolviz.events_of(engine).meta["pool_size"] == 1
        result = spec.run(engine)
    finally:
        engine.dispose()
    assert result.requests_ok == 4 and result.events.attrs["library"] == "sqlalchemy"
    assert spec.settings()["max_overflow"] == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"library": "django"}, "pool library must be one of peewee, sqlalchemy, psycopg, got 'django'"),
        ({"library": "psycopg", "pool_settings": {"pool_size": 2}}, "psycopg pools take min_size, .*; not pool_size"),
        ({"pool_settings": {"max_connections": 0}}, "max_connections"),
        ({"pool_settings": 4}, "pool_settings must be a dict"),
    ],
)
def test_a_spec_refuses_a_bad_library_or_setting(changes: dict[str, Any], message: str) -> None:
    """A bad library or setting is refused when the spec is made, naming the value."""
    with pytest.raises(ValueError, match=message):
        WorkloadSpec(**changes)


def test_an_uninstrumented_engine_is_refused_with_the_way_to_instrument_it(pg_url: str) -> None:
    """A plain SQLAlchemy Engine: the workload says to instrument it first."""
    from sqlalchemy import create_engine

    from poolviz.urls import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(pg_url))
    with pytest.raises(ValueError, match=r"not instrumented: call poolviz.instrument\(\)"):
        run_closed_loop(engine, workers=1, requests=1, hold=0)
    engine.dispose()


def test_a_bare_sqlalchemy_pool_is_refused_naming_what_is_accepted() -> None:
    """A workload takes an Engine (it knows the dialect), not a bare Pool."""
    import sqlite3

    from sqlalchemy.pool import QueuePool

    pool = poolviz.instrument(QueuePool(lambda: sqlite3.connect(":memory:")))
    with pytest.raises(TypeError, match="a SQLAlchemy Engine or a psycopg_pool ConnectionPool.*got sqlalchemy"):
        run_closed_loop(pool, workers=1, requests=1, hold=0)


def test_asyncio_workloads_refuse_a_threaded_pool_naming_what_they_take(pool_of: Callable[..., Any]) -> None:
    """A threaded Engine given to the asyncio loops: a TypeError naming the asyncio pools they take."""
    engine = pool_of("sqlalchemy", "sqlite", 1)
    with pytest.raises(
        TypeError, match="a SQLAlchemy AsyncEngine or a psycopg_pool AsyncConnectionPool.*got sqlalchemy"
    ):
        run_async_closed_loop(engine, tasks=1, requests=1, hold=0)


@pytest.mark.parametrize("backend", ["postgresql", "mysql", "sqlite"])
def test_asyncio_tasks_run_on_a_sqlalchemy_async_engine(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Tasks on an AsyncEngine's pool of two: each record linked to its own events, checked in by its own task."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from poolviz.urls import sqlalchemy_url

    if backend == "sqlite":
        url = f"sqlite+pool:///{tmp_path / 'async.db'}"
    else:
        url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    engine = poolviz.instrument(create_async_engine(sqlalchemy_url(url, asyncio=True), pool_size=2, max_overflow=0))
    result = run_async_closed_loop(engine, tasks=4, requests=3, hold="fixed:0.003")
    assert (result.requests, result.requests_ok) == (12, 12), [r.error_message for r in result.records]
    assert result.hold_method == {"sqlite": "asyncio.sleep"}.get(backend, HOLD_SQL[backend])
    assert_linked(result, 2)
    assert {r.thread for r in result.records} == {f"task-{i}" for i in range(4)}


def test_asyncio_tasks_run_on_a_psycopg_async_pool(pg_url: str) -> None:
    """Tasks on an AsyncConnectionPool of two: each record is linked to its own events; the pool opens and closes."""
    from psycopg_pool import AsyncConnectionPool

    conninfo = pg_url.replace("+pool", "")
    pool = poolviz.instrument(AsyncConnectionPool(conninfo, min_size=0, max_size=2, open=False))
    result = run_async_closed_loop(pool, tasks=4, requests=3, hold="fixed:0.003")
    assert (result.requests, result.requests_ok) == (12, 12), [r.error_message for r in result.records]
    assert result.hold_method == "SELECT pg_sleep(%s)" and result.settings["concurrency"] == "asyncio"
    assert_linked(result, 2)
    assert {r.thread for r in result.records} == {f"task-{i}" for i in range(4)}
    assert pool.closed


def test_worker_processes_refuse_psycopg_off_postgresql(mysql_url: str) -> None:
    """start_processes(library='psycopg') on MariaDB is refused in the parent, before any process starts."""
    with pytest.raises(ValueError, match="psycopg_pool pools connect to PostgreSQL only"):
        start_processes(mysql_url.replace("+pool", ""), 1, 1, 1, 0, library="psycopg")


def test_worker_processes_build_the_library_pool(pg_url: str) -> None:
    """Each worker process builds a SQLAlchemy pool of its own; the merged trace names the library."""
    run = start_processes(pg_url, 2, 2, 2, 0.001, library="sqlalchemy", max_connections=1)
    result = run.wait(60)
    assert [w["status"] for w in result.workers] == ["ok", "ok"]
    assert result.requests_ok == 8
    assert run.log.meta["library"] == "sqlalchemy" and run.log.meta["max_connections_per_process"] == 1
    checkouts = result.events[result.events["kind"] == "checkout"]
    assert sorted(checkouts.groupby("process").size()) == [4, 4]
