"""Bad settings and URLs get a clear error naming the value; instrument() only observes."""

from __future__ import annotations

from typing import Any

import pytest
from peewee import OperationalError, SqliteDatabase
from playhouse.pool import PooledSqliteDatabase

import poolviz
from poolviz import InstrumentedPooledSqliteDatabase, instrument
from poolviz.events import EventLog


@pytest.mark.parametrize("value", [0, -3, 2.5, "eight", True, [4]])
def test_bad_max_connections_is_refused(value: Any) -> None:
    """max_connections of 0, negative, fractional or not a number is refused, naming the value."""
    with pytest.raises(
        ValueError, match=r"max_connections must be a positive integer.*got " + repr(value).replace("[", r"\[")
    ):
        InstrumentedPooledSqliteDatabase(":memory:", max_connections=value)


def test_none_still_means_unlimited() -> None:
    """max_connections=None keeps peewee's meaning: no limit."""
    db = InstrumentedPooledSqliteDatabase(":memory:", max_connections=None)
    conns = [db._connect() for _ in range(30)]
    assert len(conns) == 30 and db.events.last.in_use == 30


@pytest.mark.parametrize("name", ["timeout", "stale_timeout"])
@pytest.mark.parametrize("value", [-1, -0.5, "soon", float("nan")])
def test_bad_timeouts_are_refused(name: str, value: Any) -> None:
    """A negative or non-numeric timeout or stale_timeout is refused, naming the setting and value."""
    with pytest.raises(ValueError, match=rf"{name} must be None or a number of seconds >= 0, got"):
        InstrumentedPooledSqliteDatabase(":memory:", **{name: value})


def test_init_checks_too() -> None:
    """A deferred pool's init() checks its settings like the constructor does."""
    db = InstrumentedPooledSqliteDatabase(None)
    with pytest.raises(ValueError, match="got 0"):
        db.init(":memory:", max_connections=0)


def test_bad_event_capacity_is_refused() -> None:
    """The event log's capacity must be a positive integer."""
    with pytest.raises(ValueError, match="event_capacity must be a positive integer, got 0"):
        InstrumentedPooledSqliteDatabase(":memory:", event_capacity=0)
    with pytest.raises(ValueError, match="got -1"):
        EventLog(-1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://root:s3cret@localhost/test",
            r"would not pool.*MySQLDatabase.*Use mysql\+pool://root:\*\*\*@localhost/test",
        ),
        ("sqlite:///app.db", r"would not pool.*Use sqlite\+pool:///app.db"),
        ("postgresql://u@h/db", r"would not pool.*Use postgresql\+pool://"),
        ("oracle+pool://u@h/db", r"unknown database URL scheme 'oracle\+pool'.*sqlite\+pool://"),
        ("mysql+pool://root@localhost", r"names no database"),
        ("mysql+pool://root@localhost:notaport/test", r"cannot read database URL"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    """Non-pooling, unknown and malformed URLs get an error that names them, password masked."""
    with pytest.raises(ValueError, match=message) as info:
        poolviz.connect(url)
    assert "s3cret" not in str(info.value)


def test_url_must_be_a_string() -> None:
    """connect() names what it got when the URL is not a string."""
    with pytest.raises(TypeError, match="url must be a string.*got 42"):
        poolviz.connect(42)  # type: ignore[arg-type]


def test_bad_setting_in_url_is_refused() -> None:
    """A bad pool setting in the URL's query string is refused like a keyword argument."""
    with pytest.raises(ValueError, match="max_connections.*got 0"):
        poolviz.connect("sqlite+pool:///:memory:?max_connections=0")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "url",
    ["mysql+pool://root:pw@127.0.0.1:1/test", "postgresql+pool://postgres:pw@127.0.0.1:1/test"],
    ids=["mysql", "postgresql"],
)
def test_unreachable_server_fails_fast_with_an_error_event(url: str) -> None:
    """A server that is not there fails at connect with the driver's error (host and port named), recorded masked."""
    pytest.importorskip("pymysql" if url.startswith("mysql") else "psycopg2")
    db = poolviz.connect(url)
    with pytest.raises(OperationalError) as info:
        db.connect()
    assert "127.0.0.1" in str(info.value)
    (event,) = db.events.snapshot()
    assert event.kind == "error" and event.reason == "OperationalError"
    assert ":pw@" not in event.message and event.in_use == 0


def test_instrument_accepts_what_peewee_accepted() -> None:
    """instrument() keeps a peewee pool's own settings, even max_connections=0 (unlimited)."""
    db = instrument(PooledSqliteDatabase(":memory:", max_connections=0, check_same_thread=False))
    for _ in range(25):
        db._connect()
    assert db.events.last.in_use == 25


@pytest.mark.parametrize("thing", [SqliteDatabase(":memory:"), "sqlite+pool:///x.db", None])
def test_instrument_rejects_what_is_not_a_pool(thing: Any) -> None:
    """instrument() refuses anything that is not a pool, naming what it takes and the type it got."""
    got = f"{type(thing).__module__}.{type(thing).__qualname__}"
    with pytest.raises(TypeError, match=rf"instrument\(\) .*playhouse\.pool\.PooledDatabase.*; got {got}$"):
        instrument(thing)
