"""One call builds an instrumented pool of any library from a database URL and that library's own settings.

``build("peewee", url, max_connections=4)``, ``build("sqlalchemy", url,
pool_size=4, max_overflow=0)``, ``build("psycopg", url, max_size=4)``: the
URL is poolviz's (``postgresql+pool://postgres@127.0.0.1:5432/test``, the
``+pool`` optional), each library gets it in its own spelling with the driver
poolviz installs, and the settings are that library's names (see
:data:`SETTINGS`), checked before anything connects. The workloads, the
command line and the widgets build their pools here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from .. import checks
from ..backends import backend_of_url
from ..credentials import mask_url

LIBRARIES = ("peewee", "sqlalchemy", "psycopg")

#: Each library's settings as poolviz accepts them, with their defaults here.
SETTINGS: dict[str, dict[str, Any]] = {
    "peewee": {"max_connections": 4, "timeout": 10.0, "stale_timeout": None},
    "sqlalchemy": {
        "pool_size": 4,
        "max_overflow": 0,
        "timeout": 10.0,
        "use_lifo": False,
        "pre_ping": False,
        "recycle": None,
    },
    "psycopg": {
        "min_size": 0,
        "max_size": 4,
        "timeout": 10.0,
        "max_waiting": 0,
        "max_lifetime": 3600.0,
        "max_idle": 600.0,
    },
}


def library(name: Any) -> str:
    """``name`` checked: one of :data:`LIBRARIES` (``"psycopg_pool"`` is read as ``"psycopg"``)."""
    name = {"psycopg_pool": "psycopg", "psycopg-pool": "psycopg"}.get(name, name)
    return checks.choice("pool library", name, LIBRARIES)  # type: ignore[no-any-return]


def settings_for(name: str, **given: Any) -> dict[str, Any]:
    """The library's settings: its defaults updated by ``given``, each value checked; unknown names refused."""
    name = library(name)
    defaults = SETTINGS[name]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{name} pools take {', '.join(defaults)}; not {', '.join(unknown)}")
    values = {**defaults, **given}
    for key, value in values.items():
        if key in ("use_lifo", "pre_ping"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be True or False, got {value!r}")
        elif key in ("timeout", "stale_timeout", "recycle", "max_lifetime", "max_idle"):
            values[key] = checks.seconds(key, value, none_allowed=key in ("stale_timeout", "recycle"))
        elif key in _MAY_BE_ZERO:
            values[key] = _at_least_zero(key, value)
        else:
            values[key] = checks.count(key, value, none_means="no limit" if key == "max_connections" else None)
    if name == "psycopg" and values["min_size"] > values["max_size"]:
        raise ValueError(f"min_size must be at most max_size ({values['max_size']}), got {values['min_size']}")
    return values


# Settings where 0 means something: no overflow, no minimum, no limit on waiters.
_MAY_BE_ZERO = ("max_overflow", "min_size", "max_waiting")


def _at_least_zero(key: str, value: Any) -> int:
    if not isinstance(value, bool) and value in (0, "0"):
        return 0
    try:
        return checks.count(key, value)  # type: ignore[no-any-return]
    except ValueError:
        raise ValueError(f"{key} must be an integer >= 0, got {value!r}") from None


def build(name: str, url: str, **given: Any) -> Any:
    """An instrumented pool of library ``name`` on ``url`` with ``given`` settings (threads)."""
    name = library(name)
    values = settings_for(name, **given)
    backend = backend_of_url(url)
    if name == "peewee":
        from ..urls import connect

        scheme = urlparse(url).scheme
        pooled = url if "+" in scheme else url.replace(scheme, f"{scheme}+pool", 1)
        return connect(pooled, **values)
    if name == "sqlalchemy":
        return _sqlalchemy_engine(url, values)
    if backend != "postgresql":
        raise ValueError(f"psycopg_pool pools connect to PostgreSQL only, not {mask_url(url)!r}")
    return _psycopg_pool(url, values)


def _sqlalchemy_engine(url: str, values: dict[str, Any]) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import QueuePool

    from ..urls import sqlalchemy_url
    from . import instrument

    engine = create_engine(
        sqlalchemy_url(url),
        poolclass=QueuePool,
        pool_size=values["pool_size"],
        max_overflow=values["max_overflow"],
        pool_timeout=values["timeout"],
        pool_use_lifo=values["use_lifo"],
        pool_pre_ping=values["pre_ping"],
        pool_recycle=-1 if values["recycle"] is None else values["recycle"],
    )
    return instrument(engine)


def _psycopg_pool(url: str, values: dict[str, Any]) -> Any:
    from psycopg_pool import ConnectionPool

    from . import instrument

    parsed = urlparse(url)
    conninfo = parsed._replace(scheme="postgresql").geturl()
    pool = ConnectionPool(
        conninfo,
        min_size=values["min_size"],
        max_size=values["max_size"],
        timeout=values["timeout"],
        max_waiting=values["max_waiting"],
        max_lifetime=values["max_lifetime"],
        max_idle=values["max_idle"],
        open=False,
        name=f"poolviz-{values['max_size']}",
    )
    instrument(pool)
    pool.open()
    return pool


def close(pool: Any) -> None:
    """Close a threaded pool of any library with its connections (peewee ``close_all``, SQLAlchemy ``dispose``,
    psycopg_pool ``close``)."""
    if hasattr(pool, "close_all"):
        pool.close_all()
    elif hasattr(pool, "dispose"):
        pool.dispose()
    else:
        pool.close()
