"""poolviz.otel on real servers: the metrics agree with the events for peewee, SQLAlchemy and psycopg_pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")


import poolviz
from poolviz import otel
from poolviz.otel import names
from poolviz.otel.testing import crowd, disagreements, points
from poolviz.pools.psycopg.testing import libpq_url
from poolviz.testing import wait_until
from poolviz.urls import sqlalchemy_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Things to close after the test, last first: observers, pools, engines."""
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        for method in ("close", "close_all", "dispose"):
            if hasattr(thing, method) and not (method == "close" and hasattr(thing, "close_all")):
                getattr(thing, method)()
                break


def point(reader: Any, name: str, pool_name: str, state: str | None = None) -> Any:
    attributes = {names.POOL_NAME: pool_name, **({names.STATE: state} if state else {})}
    return points(reader)[name][frozenset(attributes.items())]


def test_peewee_on_postgresql_agrees_with_its_events(
    pg_url: str, provider: Any, reader: Any, closing: list[Any]
) -> None:
    """peewee on PostgreSQL, a waiter served late and two timeouts: every metric is what the events say."""
    patient = poolviz.connect(pg_url, max_connections=2, timeout=10)
    impatient = poolviz.connect(pg_url, max_connections=2, timeout=None)
    closing += [patient, impatient]
    watched = otel.observe(patient, provider, drain_interval=None)
    other = otel.observe(impatient, provider, pool_name="impatient", drain_interval=None)
    closing += [watched, other]
    assert watched.pool_name == "127.0.0.1:5432/test"

    def take(db: Any) -> Any:
        db.connect()
        db.execute_sql("SELECT 1")
        return db

    crowd(patient.events, lambda: take(patient), lambda db: db.close(), 2)
    assert (
        crowd(
            impatient.events,
            lambda: take(impatient),
            lambda db: db.close(),
            2,
            waiter=False,
            impatient=impatient.connect,
        )
        == 2
    )
    take(patient)
    assert disagreements(reader, patient.events.snapshot(), watched.pool_name) == []
    assert disagreements(reader, impatient.events.snapshot(), "impatient") == []
    assert point(reader, names.TIMEOUTS, "impatient").value == 2
    assert point(reader, names.CREATE_TIME, watched.pool_name).sum > 0
    patient.close()


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_sqlalchemy_agrees_with_its_events(
    server: str, request: pytest.FixtureRequest, provider: Any, reader: Any, closing: list[Any]
) -> None:
    """A SQLAlchemy QueuePool on each server, a waiter and timeouts: every metric is what the events say."""
    from sqlalchemy import create_engine, text

    url = sqlalchemy_url(request.getfixturevalue("pg_url" if server == "postgresql" else "mysql_url"))
    patient = create_engine(url, pool_size=2, max_overflow=0, pool_timeout=10)
    impatient = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.01)
    closing += [patient, impatient]
    watched = otel.observe(patient, provider, drain_interval=None)
    other = otel.observe(impatient, provider, pool_name="impatient", drain_interval=None)
    closing += [watched, other]

    def take(engine: Any) -> Any:
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
        return conn

    crowd(poolviz.events_of(patient), lambda: take(patient), lambda conn: conn.close(), 2)
    timeouts = crowd(
        poolviz.events_of(impatient),
        lambda: take(impatient),
        lambda conn: conn.close(),
        1,
        waiter=False,
        impatient=impatient.connect,
    )
    held = take(patient)
    assert timeouts == 2
    assert disagreements(reader, poolviz.events_of(patient).snapshot(), watched.pool_name) == []
    assert disagreements(reader, poolviz.events_of(impatient).snapshot(), "impatient") == []
    assert point(reader, names.IDLE_MAX, watched.pool_name).value == 2
    assert point(reader, names.COUNT, watched.pool_name, state="used").value == 1
    port = 5432 if server == "postgresql" else 3306
    assert watched.pool_name.endswith(f":{port}/test")
    held.close()


def test_psycopg_pool_agrees_with_its_events(pg_url: str, provider: Any, reader: Any, closing: list[Any]) -> None:
    """psycopg_pool (min_size 1, max_size 2), background connects, a waiter and timeouts: the metrics agree."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, timeout=10, open=True)
    closing.append(pool)
    pool.wait()
    metrics = otel.observe(pool, provider, drain_interval=None)
    closing.append(metrics)
    log = poolviz.events_of(pool)

    def take() -> Any:
        conn = pool.getconn()
        conn.execute("SELECT 1")
        return conn

    timeouts = crowd(log, take, pool.putconn, 2, impatient=lambda: pool.getconn(timeout=0.01))
    held = take()

    def settled() -> bool:
        stats, last = pool.get_stats(), log.last
        return last is not None and (last.in_use, last.idle) == (
            stats["pool_size"] - stats["pool_available"],
            stats["pool_available"],
        )

    wait_until(settled, what="psycopg_pool's counts settled")
    assert timeouts == 2
    assert disagreements(reader, log.snapshot(), metrics.pool_name) == []
    assert metrics.pool_name == "127.0.0.1:5432/test"
    assert point(reader, names.IDLE_MIN, metrics.pool_name).value == 1
    assert point(reader, names.MAX, metrics.pool_name).value == 2
    assert point(reader, names.TIMEOUTS, metrics.pool_name).value == 2
    pool.putconn(held)


def test_psycopg_asyncio_pool_agrees_with_its_events(pg_url: str, provider: Any, reader: Any) -> None:
    """psycopg_pool's AsyncConnectionPool, tasks cycling and one timing out: the metrics agree."""
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    async def main() -> tuple[Any, Any]:
        pool = AsyncConnectionPool(libpq_url(pg_url), min_size=0, max_size=2, timeout=10, open=False)
        await pool.open(wait=True)
        metrics = otel.observe(pool, provider, drain_interval=None)

        async def cycle() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")

        await asyncio.gather(*(cycle() for _ in range(6)))
        held = [await pool.getconn(), await pool.getconn()]
        with pytest.raises(PoolTimeout):
            await pool.getconn(timeout=0.01)
        for conn in held:
            await pool.putconn(conn)
        log = poolviz.events_of(pool)
        problems = disagreements(reader, log.snapshot(), metrics.pool_name)
        if point(reader, names.IDLE_MIN, metrics.pool_name).value != 0:  # min_size=0 is a bound too
            problems.append("idle.min is not 0")
        await pool.close()
        metrics.close()
        return problems, point(reader, names.TIMEOUTS, metrics.pool_name).value

    problems, timeouts = asyncio.run(main())
    assert problems == []
    assert timeouts == 1
