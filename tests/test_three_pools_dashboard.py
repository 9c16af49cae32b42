"""The dashboard's pool-library choice: each library's own settings, shown only for it, and a run on each pool."""

from __future__ import annotations

from typing import Any

import pytest

import poolviz
from poolviz.live.settings import DashboardSettings, check_setting

TIMEOUT = 60.0

pytestmark = pytest.mark.timeout(120)


def shown(dash: Any) -> list[str]:
    return [name for name, box in dash._panel.library_boxes.items() if box.layout.display != "none"]


def test_only_the_chosen_librarys_settings_are_shown(make_dashboard: Any) -> None:
    """peewee's box first; choosing SQLAlchemy or psycopg_pool shows its settings only, and the view its limit."""
    dash = make_dashboard()
    assert shown(dash) == ["peewee"]
    assert dash.view.max_connections == 4
    dash.controls["pool_size"].value = 3
    dash.controls["max_overflow"].value = 2
    dash.controls["library"].value = "sqlalchemy"
    assert shown(dash) == ["sqlalchemy"]
    assert dash.view.max_connections == 5
    assert "SQLAlchemy QueuePool" in dash.message.value
    dash.controls["library"].value = "psycopg"
    assert shown(dash) == ["psycopg"]
    dash.controls["max_size"].value = 6
    assert dash.view.max_connections == 6


def test_the_settings_name_the_librarys_own_values(make_dashboard: Any) -> None:
    """settings() carries the chosen library; pool_settings() gives that library's settings and nothing else."""
    dash = make_dashboard(library="sqlalchemy", pool_size=2, max_overflow=1, use_lifo=True, recycle=30, timeout=None)
    settings = dash.settings()
    assert settings.library == "sqlalchemy" and settings.limit() == 3
    assert settings.pool_settings() == {
        "timeout": 0.0,  # fail at once: SQLAlchemy's pool_timeout 0
        "pool_size": 2,
        "max_overflow": 1,
        "use_lifo": True,
        "pre_ping": False,
        "recycle": 30.0,
    }
    psycopg = DashboardSettings(library="psycopg", min_size=1, max_size=3, max_waiting=5, max_lifetime=60.0)
    assert psycopg.pool_settings() == {
        "timeout": 10.0,
        "min_size": 1,
        "max_size": 3,
        "max_waiting": 5,
        "max_lifetime": 60.0,
    }
    assert DashboardSettings().pool_settings() == {"max_connections": 4, "timeout": 10.0, "stale_timeout": None}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("library", "django", "pool library must be one of peewee, sqlalchemy, psycopg, got 'django'"),
        ("max_overflow", -1, "max_overflow must be an integer >= 0, got -1"),
        ("pool_size", 0, "pool_size must be a positive integer, got 0"),
        ("use_lifo", "yes", "use_lifo must be True or False, got 'yes'"),
        ("max_lifetime", 0, "max_lifetime must be a number of seconds > 0, got 0"),
        ("max_waiting", 1.5, "max_waiting must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_library_settings_name_the_value_and_what_is_allowed(name: str, value: Any, message: str) -> None:
    """Each library setting is checked: the error names the setting, what is allowed and what was given."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        check_setting(name, value)


def test_a_bad_library_default_is_a_message(make_dashboard: Any) -> None:
    """library='django' as a default: a message in the widget, and peewee stays chosen."""
    dash = make_dashboard(library="django")
    assert "pool library must be one of peewee, sqlalchemy, psycopg, got &#x27;django&#x27;" in dash.message.value
    assert dash.controls["library"].value == "peewee"


def test_a_sqlalchemy_run_on_sqlite_draws_and_counts_its_pool(make_dashboard: Any) -> None:
    """SQLAlchemy on SQLite: the run opens at most pool_size + max_overflow connections, all sent to the view."""
    dash = make_dashboard(library="sqlalchemy", pool_size=2, max_overflow=1, live=False, duration=0.5, workers=4)
    assert dash.run(wait=True)
    assert dash.result is not None and dash.result.requests_ok > 0, dash.messages
    log = poolviz.events_of(dash.db)
    assert dash.view.events_sent == len(log)
    assert dash.last_stats["pool_max"] == 3
    assert 0 < sum(e.kind == "connect" for e in log.snapshot()) <= 3
    assert "SQLAlchemy QueuePool" in dash.messages[-2][1]


def test_psycopg_pool_on_sqlite_is_refused_with_a_message(make_dashboard: Any) -> None:
    """psycopg_pool connects to PostgreSQL only: on SQLite, Run says so and starts nothing."""
    dash = make_dashboard(library="psycopg")
    assert not dash.run()
    assert "psycopg_pool pools connect to PostgreSQL only" in dash.message.value
    assert dash.db is None


def test_a_psycopg_run_on_postgresql_fills_min_size_in_the_background(make_dashboard: Any, pg_url: str) -> None:
    """psycopg_pool on PostgreSQL: the run goes, and its first connects are made by the pool's worker threads."""
    dash = make_dashboard(pg_url, library="psycopg", min_size=2, max_size=3, live=False, duration=0.5, workers=3)
    assert dash.run(wait=True)
    assert dash.result is not None and dash.result.requests_ok > 0, dash.messages
    connects = [e for e in poolviz.events_of(dash.db).snapshot() if e.kind == "connect"]
    assert len(connects) >= 2 and all("-worker-" in e.thread for e in connects)
    assert dash.last_stats["pool_max"] == 3


def test_choosing_psycopg_pool_off_postgresql_says_it_needs_postgresql(make_dashboard: Any) -> None:
    """With the SQLite backend chosen, picking psycopg_pool says at once that it needs PostgreSQL."""
    dash = make_dashboard()
    dash.controls["library"].value = "psycopg"
    assert "psycopg_pool connects to PostgreSQL only: choose the PostgreSQL backend" in dash.message.value
