"""poolviz.otel: the OpenTelemetry db.client.connection.* metrics agree with the events (SQLite, no server needed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import poolviz
from poolviz import otel
from poolviz.events import EventLog
from poolviz.otel import names
from poolviz.otel.testing import crowd, disagreements, points
from poolviz.testing import plain_sqlite_pool, wait_until, wait_until_async

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def observed() -> Iterator[list[Any]]:
    """Observers and pools to close after the test."""
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        thing.close() if isinstance(thing, otel.PoolMetrics) else thing.close_all()


def sqlite_pool(tmp_path: Path, observed: list[Any], name: str = "app.db", **kwargs: Any) -> Any:
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / name}", **kwargs)
    observed.append(db)
    return db


def cycle(db: Any, times: int = 1) -> None:
    for _ in range(times):
        db.connect()
        db.execute_sql("SELECT 1")
        db.close()


def value(reader: InMemoryMetricReader, name: str, pool_name: str, **extra: str) -> Any:
    """The point of metric ``name`` for ``pool_name`` (and ``extra`` attributes) in a fresh collection, or None."""
    attributes = {names.POOL_NAME: pool_name, **{names.STATE if k == "state" else k: v for k, v in extra.items()}}
    return points(reader).get(name, {}).get(frozenset(attributes.items()))


def test_importing_poolviz_loads_no_opentelemetry() -> None:
    """`import poolviz` leaves OpenTelemetry and prometheus_client unloaded: they are the optional `otel` extra."""
    code = "import sys, poolviz; print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


GLOBAL_PROVIDER_SCRIPT = """
import sys
import poolviz
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from poolviz import otel
from poolviz.otel.testing import disagreements

early = poolviz.connect(f"sqlite+pool:///{sys.argv[1]}/early.db")
first = otel.observe(early)  # before the application sets its provider: OpenTelemetry's proxy
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
late = poolviz.connect(f"sqlite+pool:///{sys.argv[1]}/late.db")
second = otel.observe(late)
third = otel.observe(poolviz.connect(f"sqlite+pool:///{sys.argv[1]}/third.db"), metrics.get_meter_provider())
for db in (early, late):
    db.connect()
    db.close()
problems = [*disagreements(reader, early.events.snapshot(), first.pool_name)]
problems += disagreements(reader, late.events.snapshot(), second.pool_name)
print(problems)
"""


def test_the_global_provider_publishes_pools_observed_before_and_after_it_is_set(tmp_path: Path) -> None:
    """Observed before the application sets OpenTelemetry's global provider, or after: every pool is published."""
    out = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER_SCRIPT, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_peewee_metrics_agree_with_the_events(tmp_path: Path, observed: list[Any], provider: Any, reader: Any) -> None:
    """Two peewee pools, waits and timeouts: counts, timeouts and the three histograms are what the events say."""
    patient = sqlite_pool(tmp_path, observed, "patient.db", max_connections=2, timeout=10)
    impatient = sqlite_pool(tmp_path, observed, "impatient.db", max_connections=2, timeout=None)
    pools = [patient, impatient]
    observed += [otel.observe(db, provider, drain_interval=None) for db in pools]
    for db in pools:
        cycle(db, 5)

    def hold(db: Any) -> Any:
        db.connect()
        return db

    crowd(patient.events, lambda: hold(patient), lambda db: db.close(), 2)
    timeouts = crowd(
        impatient.events, lambda: hold(impatient), lambda db: db.close(), 2, waiter=False, impatient=impatient.connect
    )
    patient.connect()  # one held, one idle at the collection
    for db in pools:
        assert disagreements(reader, db.events.snapshot(), str(tmp_path / db.database.split("/")[-1])) == []
    assert timeouts == 2
    assert value(reader, names.TIMEOUTS, str(tmp_path / "impatient.db")).value == 2
    assert value(reader, names.WAIT_TIME, str(tmp_path / "patient.db")).sum > 0
    assert value(reader, names.COUNT, str(tmp_path / "patient.db"), state="used").value == 1
    patient.close()


def test_histogram_values_drained_by_a_collection_are_in_that_collection(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """Without a drain thread, the first collection after 7 cycles already holds 7 waits and 7 uses."""
    db = sqlite_pool(tmp_path, observed, max_connections=2)
    metrics = otel.observe(db, provider, drain_interval=None)
    observed.append(metrics)
    cycle(db, 7)
    assert metrics.drained == 0
    got = points(reader)
    key = frozenset({(names.POOL_NAME, metrics.pool_name)})
    assert (got[names.WAIT_TIME][key].count, got[names.USE_TIME][key].count, got[names.CREATE_TIME][key].count) == (
        7,
        7,
        1,
    )


def test_every_reader_of_a_provider_sees_what_a_collection_drained(tmp_path: Path, observed: list[Any]) -> None:
    """A drain during one reader's collection records the histograms for the other reader too."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first, second])
    db = sqlite_pool(tmp_path, observed, max_connections=2)
    metrics = otel.observe(db, provider, drain_interval=None)
    observed.append(metrics)
    cycle(db, 3)
    assert value(first, names.USE_TIME, metrics.pool_name).count == 3
    assert value(second, names.USE_TIME, metrics.pool_name).count == 3
    provider.shutdown()


def test_pending_requests_count_the_callers_waiting_now(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """While a caller waits for a full pool of 1, pending_requests is 1, the used count 1 and the idle count 0."""
    db = sqlite_pool(tmp_path, observed, max_connections=1, timeout=10)
    metrics = otel.observe(db, provider)
    observed.append(metrics)
    db.connect()
    waiter = threading.Thread(target=cycle, args=(db,), name="waiter")
    waiter.start()
    wait_until(lambda: db.events.last.waiting == 1, what="the waiter waiting")
    assert value(reader, names.PENDING_REQUESTS, metrics.pool_name).value == 1
    assert value(reader, names.COUNT, metrics.pool_name, state="used").value == 1
    assert value(reader, names.COUNT, metrics.pool_name, state="idle").value == 0
    db.close()
    waiter.join(10)
    assert not waiter.is_alive()
    assert value(reader, names.PENDING_REQUESTS, metrics.pool_name).value == 0
    assert disagreements(reader, db.events.snapshot(), metrics.pool_name) == []


def test_peewee_publishes_its_limit_and_no_idle_limits(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """A peewee pool's max is max_connections (followed through resize); peewee has no idle max or min."""
    db = sqlite_pool(tmp_path, observed, max_connections=3)
    metrics = otel.observe(db, provider)
    observed.append(metrics)
    assert value(reader, names.MAX, metrics.pool_name).value == 3
    db.resize(5)
    got = points(reader)
    assert got[names.MAX][frozenset({(names.POOL_NAME, metrics.pool_name)})].value == 5
    assert names.IDLE_MAX not in got and names.IDLE_MIN not in got


def test_a_pool_without_a_limit_publishes_no_max(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """max_connections=None (no limit) publishes no db.client.connection.max point."""
    db = sqlite_pool(tmp_path, observed, max_connections=None)
    observed.append(otel.observe(db, provider))
    cycle(db)
    assert names.MAX not in points(reader)


def test_sqlalchemy_idle_max_is_pool_size_and_overflow_returns_count_as_uses(
    tmp_path: Path, provider: Any, reader: Any
) -> None:
    """QueuePool: idle.max = pool_size, max = pool_size + max_overflow; a return closed as overflow is a use."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import QueuePool

    engine = create_engine(f"sqlite:///{tmp_path / 'sa.db'}", poolclass=QueuePool, pool_size=1, max_overflow=2)
    metrics = otel.observe(engine, provider)
    try:
        first, second = engine.connect(), engine.connect()
        for conn in (first, second):
            conn.execute(text("SELECT 1"))
            conn.close()
        events = poolviz.events_of(engine).snapshot()
        assert [e.reason for e in events if e.kind == "close"] == ["overflow"]
        assert disagreements(reader, events, metrics.pool_name) == []
        assert value(reader, names.USE_TIME, metrics.pool_name).count == 2
        assert value(reader, names.IDLE_MAX, metrics.pool_name).value == 1
        assert value(reader, names.MAX, metrics.pool_name).value == 3
        assert metrics.pool_name == str(tmp_path / "sa.db")
    finally:
        metrics.close()
        engine.dispose()


def test_sqlalchemy_async_engine_and_bare_pool_agree_with_their_events(
    tmp_path: Path, provider: Any, reader: Any
) -> None:
    """An AsyncEngine (named by its database file) and a bare Pool (named by pool_name) publish what they record."""
    import sqlite3

    pytest.importorskip("aiosqlite")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import QueuePool

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}", pool_size=2, max_overflow=0)
    bare = QueuePool(lambda: sqlite3.connect(str(tmp_path / "bare.db"), check_same_thread=False), pool_size=1)
    on_engine = otel.observe(engine, provider, drain_interval=None)
    on_pool = otel.observe(bare, provider, pool_name="bare", drain_interval=None)
    log = poolviz.events_of(engine)  # dispose() below gives the engine a new pool; this is the old one's

    async def main() -> None:
        for _ in range(3):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        await engine.dispose()

    try:
        asyncio.run(main())
        for _ in range(2):
            bare.connect().close()
        assert on_engine.pool_name == str(tmp_path / "async.db")
        assert disagreements(reader, log.snapshot(), on_engine.pool_name) == []
        assert disagreements(reader, poolviz.events_of(bare).snapshot(), "bare") == []
        assert value(reader, names.USE_TIME, "bare").count == 2
    finally:
        on_engine.close()
        on_pool.close()
        bare.dispose()


def test_asyncio_peewee_metrics_agree_with_the_events(tmp_path: Path, provider: Any, reader: Any) -> None:
    """peewee's asyncio pool with tasks waiting and one timing out: the metrics are what the events say."""
    from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase

    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "aio.db"), pool_size=2, acquire_timeout=0.2)
    metrics = otel.observe(db, provider, drain_interval=None)

    async def main() -> None:
        release = asyncio.Event()

        async def hold() -> None:
            await db.aconnect()
            await release.wait()
            await db.aclose()

        async def take_and_give() -> None:
            await db.aconnect()
            await db.aclose()

        holders = [asyncio.create_task(hold(), name=f"holder-{i}") for i in range(2)]
        await wait_until_async(lambda: db.events.last is not None and db.events.last.in_use == 2, what="pool full")
        with pytest.raises(Exception, match="Timed out"):
            await db.aconnect()
        waiter = asyncio.create_task(take_and_give(), name="waiter")
        await wait_until_async(lambda: db.events.last.waiting == 1, what="the waiter waiting")
        release.set()
        await asyncio.gather(*holders, waiter)
        assert disagreements(reader, db.events.snapshot(), metrics.pool_name) == []
        await db.close_pool()

    try:
        asyncio.run(main())
        assert value(reader, names.TIMEOUTS, metrics.pool_name).value == 1
        assert metrics.pool_name == str(tmp_path / "aio.db")
    finally:
        metrics.close()


def test_close_stops_publishing(tmp_path: Path, observed: list[Any], provider: Any, reader: Any) -> None:
    """After close() the pool's gauges leave the collections and its histograms stop growing."""
    db = sqlite_pool(tmp_path, observed, max_connections=2)
    metrics = otel.observe(db, provider)
    cycle(db, 2)
    metrics.close()
    metrics.close()
    cycle(db, 3)
    got = points(reader)
    assert names.COUNT not in got
    assert got[names.USE_TIME][frozenset({(names.POOL_NAME, metrics.pool_name)})].count == 2
    assert "closed" in repr(metrics)


def test_observing_again_after_close_counts_nothing_twice(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """Observing a pool again under its name goes on where the closed observer stopped."""
    db = sqlite_pool(tmp_path, observed, max_connections=2)
    with otel.observe(db, provider) as metrics:
        cycle(db, 2)
    cycle(db, 3)
    again = otel.observe(db, provider)
    observed.append(again)
    assert value(reader, names.USE_TIME, metrics.pool_name).count == 5


def test_the_drain_thread_keeps_up_with_a_log_smaller_than_the_gap_between_collections(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """With a log of 64 events and no collection for 400 cycles, the drain thread loses none."""
    db = sqlite_pool(tmp_path, observed, max_connections=2, event_capacity=64)
    lazy = sqlite_pool(tmp_path, observed, "lazy.db", max_connections=2, event_capacity=64)
    metrics = otel.observe(db, provider, drain_interval=0.001)
    without = otel.observe(lazy, provider, drain_interval=None)
    observed += [metrics, without]
    for batch in range(1, 21):
        cycle(db, 10)
        cycle(lazy, 10)
        events = 1 + 20 * batch  # a connect, then a checkout and a checkin per cycle
        wait_until(lambda: metrics.drained == events, what="the drain thread catching up")  # noqa: B023
    assert value(reader, names.WAIT_TIME, metrics.pool_name).count == 200
    assert metrics.lost == 0
    assert without.lost > 0 and value(reader, names.WAIT_TIME, without.pool_name).count < 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_publishes_its_own_events(
    tmp_path: Path, observed: list[Any], provider: Any, reader: Any
) -> None:
    """After fork the child's drain thread starts again and publishes the child's cycles; the parent's stay its own."""
    db = sqlite_pool(tmp_path, observed, max_connections=2)
    metrics = otel.observe(db, provider, drain_interval=0.001)
    observed.append(metrics)
    cycle(db, 2)
    wait_until(lambda: metrics.drained == 5, what="the parent's events drained")
    pid = os.fork()
    if pid == 0:  # the child: report by exit code, never return into pytest
        code = 1
        try:
            db.dispose()  # the parent's connections are the parent's
            cycle(db, 3)
            wait_until(lambda: metrics.drained == 5 + 1 + 1 + 6, what="the child's events drained")
            code = 0 if value(reader, names.USE_TIME, metrics.pool_name).count == 5 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert metrics.drained == 5
    assert value(reader, names.USE_TIME, metrics.pool_name).count == 2


def test_an_uninstrumented_pool_is_instrumented(tmp_path: Path, provider: Any, reader: Any) -> None:
    """observe() instruments a plain peewee pool first, then publishes it."""
    db = plain_sqlite_pool(tmp_path / "plain.db", max_connections=2)
    metrics = otel.observe(db, provider)
    try:
        assert poolviz.is_instrumented(db)
        cycle(db, 2)
        assert value(reader, names.USE_TIME, metrics.pool_name).count == 2
    finally:
        metrics.close()
        db.close_all()


def test_an_event_log_can_be_observed_by_name(provider: Any, reader: Any) -> None:
    """An EventLog (a recording's merged log, say) is observed like a pool, named by pool_name."""
    log = EventLog()
    with log.lock:
        log.record("connect", 1, "w", 0, 0, 0, duration_s=0.01)
        log.record("checkout", 1, "w", 1, 0, 0, wait_s=0.002)
    with otel.observe(log, provider, pool_name="workers") as metrics:
        assert disagreements(reader, log.snapshot(), "workers") == []
    assert metrics.pool_name == "workers"


def test_default_pool_names_are_address_port_database_without_credentials(provider: Any) -> None:
    """Server pools are named host:port/database (default port filled in); no user or password appears."""
    from psycopg_pool import ConnectionPool
    from sqlalchemy import create_engine

    db = poolviz.connect("postgresql+pool://alice:s3cret@db.example:6543/orders")
    mysql = poolviz.connect("mysql+pool://bob:hunter22@db.example/shop")
    engine = create_engine("postgresql+psycopg2://carol:pa55word@10.0.0.7/sales")
    pool = ConnectionPool("host=pg.example user=dave password=letmein dbname=stock", open=False)
    observers = [otel.observe(target, provider, drain_interval=None) for target in (db, mysql, engine, pool)]
    try:
        assert [m.pool_name for m in observers] == [
            "db.example:6543/orders",
            "db.example:3306/shop",
            "10.0.0.7:5432/sales",
            "pg.example:5432/stock",
        ]
    finally:
        for metrics in observers:
            metrics.close()
        engine.dispose()


def test_no_password_reaches_any_attribute(tmp_path: Path, provider: Any, reader: Any) -> None:
    """Neither a default name nor a pool_name given as a URL with its password carries the password."""
    db = poolviz.connect("postgresql+pool://alice:opensesame@127.0.0.1:5432/test?password=opensesame")
    named = poolviz.connect(f"sqlite+pool:///{tmp_path / 'b.db'}")
    first = otel.observe(db, provider)
    second = otel.observe(named, provider, pool_name="postgresql://eve:opensesame@host/db")
    try:
        cycle(named)
        attributes = [dict(a) for by in points(reader).values() for a in by]
        assert len({a[names.POOL_NAME] for a in attributes}) == 2
        assert all("opensesame" not in str(v) for a in attributes for v in a.values())
        assert second.pool_name == "postgresql://eve:***@host/db"
    finally:
        first.close()
        second.close()
        named.close_all()


def test_prometheus_serves_the_metrics_over_http(tmp_path: Path, observed: list[Any]) -> None:
    """serve_prometheus(): a real HTTP scrape shows the counts by state, the limit and the histograms."""
    db = sqlite_pool(tmp_path, observed, max_connections=3)
    server = otel.serve_prometheus(port=0)
    try:
        metrics = server.observe(db)
        cycle(db, 4)
        db.connect()
        with urllib.request.urlopen(server.url, timeout=10) as response:
            page = response.read().decode()
        name = metrics.pool_name
        assert (
            f'db_client_connection_count{{db_client_connection_pool_name="{name}",db_client_connection_state="used"'
            in page
        )
        assert f'db_client_connection_max{{db_client_connection_pool_name="{name}"' in page
        assert f'db_client_connection_use_time_seconds_count{{db_client_connection_pool_name="{name}"' in page
        assert "db_client_connection_timeouts_total" in page
        url, stop = server
        assert stop == server.stop
        assert url == server.url and url.startswith("http://127.0.0.1:")
    finally:
        db.close()
        server.stop()
    assert metrics.closed
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_unsupported_objects_are_refused_naming_what_is_accepted(provider: Any) -> None:
    """observe() of something that is no pool raises TypeError listing the pools it takes."""
    with pytest.raises(TypeError, match=r"observe\(\) takes a peewee pool .* or an EventLog; got builtins.object"):
        otel.observe(object(), provider)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pool_name": 3}, TypeError, "pool_name must be a string .* got 3"),
        ({"pool_name": " "}, ValueError, "pool_name must be a non-empty string .* got ' '"),
        (
            {"meter_provider": "global"},
            TypeError,
            "meter_provider must be an OpenTelemetry MeterProvider .* got builtins.str",
        ),
        ({"drain_interval": 0}, ValueError, "drain_interval"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A bad pool_name, meter_provider or drain_interval raises naming the value, and leaves the pool as it was."""
    db = plain_sqlite_pool(tmp_path / "plain.db")
    with pytest.raises(error, match=match):
        otel.observe(db, **kwargs)
    assert not poolviz.is_instrumented(db)


def test_two_pools_under_one_name_are_refused(tmp_path: Path, observed: list[Any], provider: Any) -> None:
    """A second pool published under a name already in use through the provider is refused: its points would mix."""
    db = sqlite_pool(tmp_path, observed)
    observed.append(otel.observe(db, provider))
    with pytest.raises(ValueError, match="is already published through this meter provider"):
        otel.observe(db, provider)


def test_a_pool_that_names_no_server_needs_a_pool_name(provider: Any) -> None:
    """A bare SQLAlchemy Pool or an EventLog records no URL: observe() asks for pool_name."""
    import sqlite3

    from sqlalchemy.pool import QueuePool

    pool = QueuePool(lambda: sqlite3.connect(":memory:"), pool_size=1)
    for target in (pool, EventLog()):
        with pytest.raises(ValueError, match="pass pool_name="):
            otel.observe(target, provider)
    pool.dispose()


def test_serve_prometheus_refuses_a_bad_port() -> None:
    """A port that is no count, or past 65535, is refused naming it."""
    with pytest.raises(ValueError, match="port must be"):
        otel.serve_prometheus(port=70000)
    with pytest.raises(ValueError, match="port"):
        otel.serve_prometheus(port=-1)
