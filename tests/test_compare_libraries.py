"""Compare across pool libraries: peewee, SQLAlchemy and psycopg_pool configs checked, placed, run side by side."""

from __future__ import annotations

import html
import threading
from typing import Any

import pytest

import poolviz
from poolviz.live.compare_configs import check_compare, place
from poolviz.widgets import Compare

TIMEOUT = 60.0
THREE = [
    {"library": "peewee", "max_connections": 4},
    {"library": "sqlalchemy", "pool_size": 4, "max_overflow": 0},
    {"library": "psycopg", "max_size": 4},
]

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("configs", "shared", "message"),
    [
        (
            [{"library": "django"}],
            {},
            "configs[0]: pool library must be one of peewee, sqlalchemy, psycopg, got 'django'",
        ),
        (
            [{"max_connections": 2}, {"library": "sqlalchemy", "max_connections": 2}],
            {},
            "configs[1] has unknown key(s) max_connections; sqlalchemy pools take pool_size, max_overflow, timeout, "
            "use_lifo, pre_ping, recycle (and library, label)",
        ),
        ([{"library": "sqlalchemy", "pool_size": 0}], {}, "configs[0]: pool_size must be a positive integer, got 0"),
        (
            [{"library": "psycopg", "min_size": 5, "max_size": 4}],
            {},
            "configs[0]: min_size must be at most max_size (4), got 5",
        ),
        ([{"library": "sqlalchemy", "use_lifo": "yes"}], {}, "configs[0]: use_lifo must be True or False, got 'yes'"),
        ([{"max_connections": 2}], {"pool_size": 3}, "no config's pool library takes pool_size"),
        ([{"max_connections": 2}], {"colour": "red"}, "unknown setting(s) colour; use "),
    ],
)
def test_bad_configs_name_the_value_and_what_is_allowed(configs: Any, shared: Any, message: str) -> None:
    """Every config is checked before anything connects; the error names the config, the value and what is allowed."""
    with pytest.raises(ValueError) as caught:
        check_compare(None, configs, None, shared)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_bad_config_is_a_message_and_run_does_nothing() -> None:
    """Compare reports a bad config in its message line instead of raising, and Run refuses."""
    compare = Compare(configs=[{"library": "sqlalchemy", "max_overflow": -1}])
    try:
        assert "configs[0]: max_overflow must be an integer &gt;= 0, got -1" in compare.message.value
        assert not compare.run()
    finally:
        compare.close()


def test_each_config_gets_its_librarys_defaults_limit_label_and_shared_settings() -> None:
    """Defaults fill what a config leaves out, a shared setting reaches the libraries that take it, limits differ."""
    configs, spec = check_compare(
        None,
        [*THREE, {"library": "sqlalchemy", "pool_size": 2, "max_overflow": 3, "label": "bursty"}],
        None,
        {"timeout": 5, "use_lifo": True, "workers": 3},
    )
    assert spec.workers == 3
    assert [c["library"] for c in configs] == ["peewee", "sqlalchemy", "psycopg", "sqlalchemy"]
    assert [c["limit"] for c in configs] == [4, 4, 4, 5]
    assert [c["label"] for c in configs] == [
        "peewee: max_connections=4",
        "sqlalchemy: pool_size=4, max_overflow=0",
        "psycopg: max_size=4",
        "bursty",
    ]
    assert all(c["settings"]["timeout"] == 5.0 for c in configs)
    assert configs[1]["settings"]["use_lifo"] is True and "use_lifo" not in configs[2]["settings"]
    assert configs[2]["settings"]["min_size"] == 0  # psycopg_pool's default here


def test_psycopg_pool_is_skipped_off_postgresql_and_a_silent_server_falls_back_to_sqlite() -> None:
    """On SQLite psycopg_pool is skipped with its reason; a server that does not answer means SQLite, with a note."""
    configs, _spec = check_compare(None, THREE, None, {})
    url, skips, note = place(None, configs)
    assert url is None and skips[:2] == ["", ""]
    assert skips[2] == "skipped: psycopg_pool connects to PostgreSQL only, and this run is on sqlite"
    assert "give Compare a postgresql:// url" in note
    url, skips, note = place("postgresql://postgres@127.0.0.1:5432/test", configs, reachable=lambda _u: "refused")
    assert url is None and skips[2].endswith("no PostgreSQL server answers")
    assert note.startswith("postgresql://postgres@127.0.0.1:5432/test does not answer (refused)")
    url, skips, note = place("postgresql://postgres@127.0.0.1:5432/test", configs, reachable=lambda _u: None)
    assert url == "postgresql://postgres@127.0.0.1:5432/test" and skips == ["", "", ""] and note == ""


def test_on_sqlite_peewee_and_sqlalchemy_run_side_by_side_and_psycopg_pool_says_why_not() -> None:
    """peewee and SQLAlchemy run at once on SQLite; psycopg_pool's column and table row carry the reason."""
    before = set(threading.enumerate())
    compare = Compare(configs=THREE, workers=3, requests=4, hold_ms=2)
    try:
        assert "psycopg_pool connects to PostgreSQL only" in html.unescape(compare.message.value)
        assert compare.run(wait=True, timeout=TIMEOUT)
        table = compare.table
        assert list(table["library"]) == ["peewee", "sqlalchemy", "psycopg"]
        assert list(table["requests"].iloc[:2]) == [12, 12]
        assert table["note"].iloc[2].startswith("skipped: psycopg_pool connects to PostgreSQL only")
        assert compare.views[0].events_sent > 0 and compare.views[1].events_sent > 0
        assert compare.views[2].events_sent == 0
        assert "Skipped: psycopg: max_size=4" in html.unescape(compare.message.value)
        assert "SQLAlchemy QueuePool · pool_size=4, max_overflow=0" in compare.titles[1].value
    finally:
        compare.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_three_libraries_run_side_by_side_on_postgresql(pg_url: str) -> None:
    """peewee, SQLAlchemy and psycopg_pool on one PostgreSQL: all run, every view fed, one time axis, overlapping."""
    before = set(threading.enumerate())
    compare = Compare(url=pg_url, configs=THREE, workers=4, requests=5, hold_ms=3)
    try:
        assert compare.note == "" and compare.skipped == ["", "", ""]
        assert compare.run(wait=True, timeout=TIMEOUT)
        table = compare.table
        assert list(table["requests"]) == [20, 20, 20], html.unescape(compare.message.value)
        assert (table["failed"] == 0).all()
        assert [view.max_connections for view in compare.views] == [4, 4, 4]
        assert all(view.events_sent > 0 for view in compare.views)
        assert compare.views[0].span == compare.views[1].span == compare.views[2].span
        assert [type(log) for log in compare._logs] == [poolviz.EventLog] * 3
        spans = [(log.t0 + log.snapshot()[0].t, log.t0 + log.snapshot()[-1].t) for log in compare._logs]
        assert max(start for start, _end in spans) < min(end for _start, end in spans), spans
    finally:
        compare.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
