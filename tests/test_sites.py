"""Checkout sites: every checkout of every pool library names the application's line that asked, never library code."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

import poolviz
from poolviz import InstrumentedPooledSqliteDatabase
from poolviz.data.frames import add_site, events_to_frame
from poolviz.data.traces import load_events, save_events
from poolviz.events import Event
from poolviz.events.merge import MergedEventLog
from poolviz.pools import sites
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
from poolviz.pools.psycopg.testing import libpq_url
from poolviz.testing import join_threads, wait_until
from poolviz.urls import sqlalchemy_url

pytestmark = pytest.mark.timeout(120)

# Where library code lives, as a site would show it: none of these may ever be a site.
LIBRARY_PATHS = ("poolviz/pools/", "poolviz/events/", "poolviz/recording/", "peewee.py", "playhouse/", "sqlalchemy/")


def here(offset: int = 0) -> str:
    """Where the caller is (``offset`` lines further), as a site names it: ``tests/test_sites.py:LINE in function``."""
    frame = sys._getframe(1)
    path = Path(frame.f_code.co_filename).resolve()
    try:
        shown = str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = "/".join(path.parts[-2:])
    return f"{shown}:{frame.f_lineno + offset} in {frame.f_code.co_name}"


def checkout_sites(log: Any) -> list[str]:
    """The ``message`` of every checkout in ``log``, in order."""
    return [e.message for e in log.snapshot() if e.kind == "checkout"]


def no_library(found: list[str]) -> bool:
    """True when no site in ``found`` points into library code, and none is empty."""
    return all(site and not any(part in site.split(":")[0] for part in LIBRARY_PATHS) for site in found)


# -- peewee, threaded ------------------------------------------------------------------------------


def test_peewee_checkouts_name_the_line_that_asked(make_pool: Any) -> None:
    """Fresh, reused, context-managed and listened-to checkouts of a peewee pool each name the test's own line."""
    db = make_pool(max_connections=2)
    _, first = db.connect(), here()
    db.close()
    _, second = db.connect(), here()  # an idle connection handed out at once: the plain path
    db.close()
    with db.connection_context():
        third = here(-1)
    with db.events.subscribe(lambda event: None):  # a listener: the other path
        _, fourth = db.connect(), here()
        db.close()
    assert checkout_sites(db.events) == [first, second, third, fourth]
    assert no_library([first, second, third, fourth])


def helper_that_takes(db: Any) -> str:
    """Checks a connection out of ``db`` (and back in); returns the line it did it on."""
    _, line = db.connect(), here()
    db.close()
    return line


def test_the_site_is_the_innermost_application_frame(tmp_path: Path) -> None:
    """A helper of the application that takes the connection is the site, not the code that called the helper."""
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "app.db"), max_connections=1)
    expected = helper_that_takes(db)
    assert checkout_sites(db.events) == [expected]
    db.close_all()


def test_a_checkout_that_waited_names_its_site(make_pool: Any) -> None:
    """A caller that waited for a connection gets its wait and its own line."""
    db = make_pool(max_connections=1, timeout=10)
    db.connect()
    lines: list[str] = []

    def waiter() -> None:
        _, line = db.connect(), here()
        lines.append(line)
        db.close()

    thread = threading.Thread(target=waiter, name="waiter")
    thread.start()
    wait_until(lambda: any(e.kind == "wait" for e in db.events.snapshot()), what="the waiter waiting")
    db.close()
    join_threads([thread])
    waited = [e for e in db.events.snapshot() if e.kind == "checkout" and e.thread == "waiter"]
    assert [e.message for e in waited] == lines and waited[0].wait_s > 0


def test_plain_reused_checkouts_at_one_line_share_one_payload(tmp_path: Path) -> None:
    """Reused checkouts from the same line record the same cached payload object: nothing new per checkout."""
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "app.db"), max_connections=1)
    for _ in range(3):
        db.connect()
        db.close()
    payloads = [record[-1] for record in db.events.tail if record[1] == "checkout"]
    assert payloads[1] is payloads[2] and payloads[1][2] is True
    assert payloads[0][4] == payloads[1][4] != ""
    db.close_all()


def test_the_workload_is_application_code(tmp_path: Path) -> None:
    """poolviz's own workload is an application of the pool: its checkouts name its own code."""
    from poolviz.workload import run_closed_loop

    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'run.db'}", max_connections=2, timeout=10)
    try:
        frame = run_closed_loop(db, workers=2, requests=6, hold=0.0, seed=1).events
    finally:
        db.close_all()
    found = set(frame.loc[frame["kind"] == "checkout", "site"])
    assert found and all(site.startswith("poolviz/workload/") for site in found)
    assert no_library(sorted(found))


# -- peewee, asyncio -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def aio_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A peewee asyncio database of 2 on each backend (aiosqlite, aiomysql, asyncpg); tests close its pool."""
    if request.param == "sqlite":
        return InstrumentedAsyncSqliteDatabase(str(tmp_path / "app.db"), pool_size=2)
    url = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    return poolviz.connect(url.replace("+pool://", "+asyncpool://", 1), pool_size=2)


def test_peewee_asyncio_checkouts_name_the_line_that_asked(aio_db: Any) -> None:
    """aconnect, a query and ``async with db`` (through peewee's greenlet bridge) each name the test's line."""
    expected: list[str] = []

    async def main() -> None:
        _, line = await aio_db.aconnect(), here()
        expected.append(line)
        await aio_db.aclose()
        _, line = await aio_db.aexecute_sql("SELECT 1"), here()
        expected.append(line)
        await aio_db.aclose()
        async with aio_db:
            expected.append(here(-1))
        await asyncio.create_task(in_a_task(aio_db, expected), name="worker")
        await aio_db.close_pool()

    asyncio.run(main())
    assert checkout_sites(aio_db.events) == expected
    assert no_library(expected)


async def in_a_task(db: Any, expected: list[str]) -> None:
    """Takes a connection of ``db`` in a task of its own and gives it back, noting the line."""
    _, line = await db.aconnect(), here()
    expected.append(line)
    await db.aclose()


# -- SQLAlchemy ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def poolviz_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A poolviz URL for each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+pool:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url"))


def test_sqlalchemy_checkouts_name_the_line_that_asked(poolviz_url: str) -> None:
    """engine.connect() and raw_connection(), through every SQLAlchemy layer, name the test's line."""
    engine = poolviz.instrument(create_engine(sqlalchemy_url(poolviz_url), pool_size=2))
    log = poolviz.events_of(engine)
    try:
        with engine.connect() as conn:
            first = here(-1)
            conn.execute(text("SELECT 1"))
        _, second = engine.connect().close(), here()
        raw, third = engine.raw_connection(), here()
        raw.close()
    finally:
        engine.dispose()
    assert checkout_sites(log) == [first, second, third]


def test_sqlalchemy_async_engine_sites_cross_the_greenlet(poolviz_url: str) -> None:
    """An AsyncEngine checks out inside a greenlet: the site is still the coroutine's line that asked."""
    engine = poolviz.instrument(create_async_engine(sqlalchemy_url(poolviz_url, asyncio=True), pool_size=2))
    log = poolviz.events_of(engine)
    expected: list[str] = []

    async def main() -> None:
        async with engine.connect() as conn:
            expected.append(here(-1))
            await conn.execute(text("SELECT 1"))
        await engine.dispose()

    asyncio.run(main())
    assert checkout_sites(log) == expected
    assert no_library(expected)


# -- psycopg_pool ----------------------------------------------------------------------------------


def test_psycopg_pool_checkouts_name_the_line_that_asked(pg_url: str) -> None:
    """getconn() and the connection() context manager of a psycopg_pool pool name the test's line."""
    pool = poolviz.instrument(ConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, open=False))
    pool.open(wait=True)
    try:
        conn, first = pool.getconn(), here()
        pool.putconn(conn)
        with pool.connection() as conn:
            second = here(-1)
            conn.execute("SELECT 1")
    finally:
        pool.close()
    assert checkout_sites(poolviz.events_of(pool)) == [first, second]


def test_psycopg_pool_asyncio_checkouts_name_the_line_that_asked(pg_url: str) -> None:
    """An AsyncConnectionPool's checkouts name the coroutine's line."""
    expected: list[str] = []

    async def main() -> Any:
        pool = poolviz.instrument(AsyncConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, open=False))
        await pool.open(wait=True)
        try:
            conn, line = await pool.getconn(), here()
            expected.append(line)
            await pool.putconn(conn)
            async with pool.connection() as conn:
                expected.append(here(-1))
                await conn.execute("SELECT 1")
        finally:
            await pool.close()
        return pool

    pool = asyncio.run(main())
    assert checkout_sites(poolviz.events_of(pool)) == expected


# -- sites=False, bad input ------------------------------------------------------------------------


def test_sites_false_records_none(tmp_path: Path, pg_url: str) -> None:
    """sites=False: every library's checkouts carry an empty message, and the site column is empty."""
    peewee_db = poolviz.instrument(
        poolviz.connect(f"sqlite+pool:///{tmp_path / 'a.db'}", max_connections=1, sites=False)
    )
    peewee_db.connect()
    peewee_db.close()
    engine = poolviz.instrument(create_engine(f"sqlite:///{tmp_path / 'b.db'}"), sites=False)
    engine.connect().close()
    pool = poolviz.instrument(ConnectionPool(libpq_url(pg_url), min_size=1, open=False), sites=False)
    pool.open(wait=True)
    pool.putconn(pool.getconn())
    pool.close()
    aio = InstrumentedAsyncSqliteDatabase(str(tmp_path / "c.db"), pool_size=1, sites=False)

    async def main() -> None:
        await aio.aconnect()
        await aio.aclose()
        await aio.close_pool()

    asyncio.run(main())
    for log in (peewee_db.events, poolviz.events_of(engine), poolviz.events_of(pool), aio.events):
        assert checkout_sites(log) == [""]
        assert set(log.to_frame()["site"]) == {""}
    peewee_db.close_all()
    engine.dispose()


def test_sites_must_be_true_or_false(tmp_path: Path) -> None:
    """sites='no' is refused with the value and what is allowed, and the pool is left as it was."""
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with pytest.raises(TypeError, match="sites must be True or False, got 'no'"):
        poolviz.instrument(engine, sites="no")
    with pytest.raises(ValueError, match="not instrumented"):
        poolviz.events_of(engine)
    with pytest.raises(TypeError, match="sites must be True or False, got 1"):
        InstrumentedPooledSqliteDatabase(str(tmp_path / "a.db"), sites=1)


# -- what is library code --------------------------------------------------------------------------


def frame_of_module(module: str, filename: str = "<generated>") -> Any:
    """A frame running code whose module is ``module`` (as code a library generates with exec)."""
    namespace: dict[str, Any] = {"__name__": module, "sys": sys}
    exec(compile("def probe():\n    return sys._getframe()\n", filename, "exec"), namespace)
    return namespace["probe"]()


@pytest.mark.parametrize(
    ("module", "library"),
    [
        ("sqlalchemy.engine.base", True),
        ("psycopg_pool.pool", True),
        ("playhouse.pool", True),
        ("peewee", True),
        ("poolviz.pools.peewee.hooks", True),
        ("asyncio.tasks", True),
        ("threading", True),
        ("greenlet", True),
        ("poolviz.workload.loops", False),
        ("poolviz.practice.app", False),
        ("poolviz.live.dashboard", False),
        ("threading_helpers", False),
        ("myapp.psycopg_utils", False),
        ("__main__", False),
    ],
)
def test_library_code_is_known_by_its_module(module: str, library: bool) -> None:
    """A frame is library code by its module (code generated with exec included), and applications are not."""
    assert sites.is_library_frame(frame_of_module(module)) is library


def test_a_library_file_run_under_another_name_is_still_library() -> None:
    """Code compiled from a library's file counts as library code whatever its module is called."""
    import peewee

    assert sites.is_library_frame(frame_of_module("not_peewee", peewee.__file__))


def test_describe_shows_paths_under_the_current_directory_relative_else_their_last_two_parts() -> None:
    """A site's path is relative to the current directory when under it, else its last two parts."""
    code = compile("pass", str(Path.cwd() / "app" / "views.py"), "exec")
    assert sites.describe(code, 12) == "app/views.py:12 in <module>"
    elsewhere = compile("pass", "/srv/site/app/views.py", "exec")
    assert sites.describe(elsewhere, 3) == "app/views.py:3 in <module>"


# -- the site column -------------------------------------------------------------------------------


def ev(seq: int, kind: str, conn: int, message: str = "", reason: str = "", t: float | None = None) -> Event:
    """A hand-made event at ``t`` (default ``seq / 10``; counts do not matter here)."""
    return Event(seq, seq / 10 if t is None else t, kind, conn, "w", 0.0, 0.0, False, reason, message, 0, 0, 0)


def test_the_site_column_follows_each_connection_from_its_checkout() -> None:
    """checkin, leak, unleak and a close while held get the checkout's site; idle closes and the rest get ""."""
    frame = events_to_frame(
        [
            ev(0, "connect", 1),
            ev(1, "checkout", 1, "a.py:1 in f"),
            ev(2, "leak", 1, "a.py:1 in f < b.py:9 in main", "held"),
            ev(3, "unleak", 1, "a.py:1 in f < b.py:9 in main"),
            ev(4, "checkin", 1),
            ev(5, "close", 1, reason="idle"),
            ev(6, "checkout", 2, "c.py:2 in g"),
            ev(7, "wait", 0),
            ev(8, "close", 2, reason="all"),
            ev(9, "checkout", 3, "d.py:3 in h"),
            ev(10, "dispose", 0),
            ev(11, "checkin", 3),
        ]
    )
    a, c, d = "a.py:1 in f", "c.py:2 in g", "d.py:3 in h"
    assert list(frame["site"]) == ["", a, a, a, a, "", c, "", c, d, "", ""]
    assert list(frame.columns[-1:]) == ["site"]


def test_a_merged_trace_keys_connections_by_process() -> None:
    """Two processes' connection 1 keep their own sites, in a merged log and in a frame keyed by process_conn."""
    log = MergedEventLog([1, 2])
    for process, site in ((1, "one.py:1 in f"), (2, "two.py:2 in g")):
        shift = process / 10
        log.add(process, 0.0, [ev(0, "checkout", 1, site, t=shift), ev(1, "checkin", 1, t=0.2 + shift)], None)
    for process in (1, 2):
        log.end(process)
    frame = log.to_frame()
    by_process = dict(zip(frame["process"], frame["site"], strict=False))
    assert list(frame["site"]) == ["one.py:1 in f", "two.py:2 in g", "one.py:1 in f", "two.py:2 in g"]
    assert by_process == {1: "one.py:1 in f", 2: "two.py:2 in g"}
    frame["conn"] = 0  # as a frame that only the process columns tell apart
    assert list(add_site(frame)["site"]) == ["one.py:1 in f", "two.py:2 in g", "one.py:1 in f", "two.py:2 in g"]


def test_the_site_column_is_worked_out_again_when_a_trace_loads(tmp_path: Path) -> None:
    """A saved trace does not store the site column; loading it gives the same sites back."""
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "app.db"), max_connections=1)
    expected = helper_that_takes(db)
    frame = db.events.to_frame()
    path = save_events(frame, tmp_path / "trace.csv")
    assert "site" not in path.read_text().splitlines()[0].split(",")
    loaded = load_events(path)
    assert list(loaded["site"]) == list(frame["site"]) and expected in set(loaded["site"])
    db.close_all()
