"""One call builds an instrumented pool of any library from a database URL and that library's own settings.

``build("peewee", url, max_connections=4)``, ``build("sqlalchemy", url,
pool_size=4, max_overflow=0)``, ``build("psycopg", url, max_size=4)``: the
URL is poolviz's (``postgresql+pool://postgres@127.0.0.1:5432/test``, the
``+pool`` optional), each library gets it in its own spelling with the driver
poolviz installs, and the settings are that library's names (see
:data:`SETTINGS`), checked before anything connects. The workloads, the
command line and the widgets build their pools here.

A ``+asyncpool`` URL (or ``asyncio=True``) builds the library's asyncio pool
for the asyncio workloads: SQLAlchemy's ``AsyncEngine`` (asyncpg, aiomysql,
aiosqlite), psycopg_pool's ``AsyncConnectionPool`` (left closed: an asyncio
pool belongs to the loop that opens it, and the workloads open it in theirs)
and peewee's asyncio database (``max_connections`` as ``pool_size``,
``timeout`` as ``acquire_timeout``).
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


def build(name: str, url: str, *, asyncio: bool | None = None, **given: Any) -> Any:
    """An instrumented pool of library ``name`` on ``url`` with ``given`` settings.

    Threads by default; an asyncio pool when ``asyncio`` is true or, left
    ``None``, when ``url``'s scheme is a ``+asyncpool`` one.
    """
    name = library(name)
    values = settings_for(name, **given)
    backend = backend_of_url(url)
    if asyncio is None:
        asyncio = is_asyncio_url(url)
    elif not asyncio and is_asyncio_url(url):
        raise ValueError(f"asyncio=False, but {mask_url(url)!r} is an asyncio URL: give it as {_threads_url(url)!r}")
    if name == "peewee":
        return _peewee_asyncio(url, values) if asyncio else _peewee_pool(url, values)
    if name == "sqlalchemy":
        return _sqlalchemy_engine(url, values, asyncio)
    if backend != "postgresql":
        raise ValueError(f"psycopg_pool pools connect to PostgreSQL only, not {mask_url(url)!r}")
    return _psycopg_pool(url, values, asyncio)


def is_asyncio_url(url: str) -> bool:
    """Whether ``url`` asks for an asyncio pool: its scheme ends in ``+asyncpool``."""
    return urlparse(url).scheme.lower().endswith("+asyncpool")


def _threads_url(url: str) -> str:
    scheme = urlparse(url).scheme
    return mask_url(url.replace(scheme, scheme[: -len("+asyncpool")] + "+pool", 1))


def _peewee_pool(url: str, values: dict[str, Any]) -> Any:
    from ..urls import connect

    scheme = urlparse(url).scheme
    pooled = url if "+" in scheme else url.replace(scheme, f"{scheme}+pool", 1)
    return connect(pooled, **values)


def _peewee_asyncio(url: str, values: dict[str, Any]) -> Any:
    from ..urls import connect

    if values["stale_timeout"] is not None:
        raise ValueError(f"peewee's asyncio pool has no stale_timeout; got {values['stale_timeout']!r}")
    scheme = urlparse(url).scheme
    backend = scheme.split("+")[0]
    pooled = url if scheme.lower().endswith("+asyncpool") else url.replace(scheme, f"{backend}+asyncpool", 1)
    return connect(pooled, pool_size=values["max_connections"], acquire_timeout=values["timeout"])


def _sqlalchemy_engine(url: str, values: dict[str, Any], asyncio: bool) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

    from ..urls import sqlalchemy_url
    from . import instrument

    options = {
        "pool_size": values["pool_size"],
        "max_overflow": values["max_overflow"],
        "pool_timeout": values["timeout"],
        "pool_use_lifo": values["use_lifo"],
        "pool_pre_ping": values["pre_ping"],
        "pool_recycle": -1 if values["recycle"] is None else values["recycle"],
    }
    if asyncio:
        from sqlalchemy.ext.asyncio import create_async_engine

        return instrument(
            create_async_engine(sqlalchemy_url(url, asyncio=True), poolclass=AsyncAdaptedQueuePool, **options)
        )
    return instrument(create_engine(sqlalchemy_url(url), poolclass=QueuePool, **options))


def _psycopg_pool(url: str, values: dict[str, Any], asyncio: bool) -> Any:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    from . import instrument

    parsed = urlparse(url)
    conninfo = parsed._replace(scheme="postgresql").geturl()
    cls: Any = AsyncConnectionPool if asyncio else ConnectionPool
    pool = cls(
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
    if not asyncio:
        pool.open()
    return pool


def close(pool: Any) -> None:
    """Close a threaded pool of any library with its connections (peewee ``close_all``, SQLAlchemy ``dispose``,
    psycopg_pool ``close``); an asyncio pool is closed with ``await`` :func:`aclose`."""
    if _is_asyncio_pool(pool):
        raise TypeError(f"{type(pool).__name__} is an asyncio pool: close it with await factory.aclose(pool)")
    if hasattr(pool, "close_all"):
        pool.close_all()
    elif hasattr(pool, "dispose"):
        pool.dispose()
    else:
        pool.close()


async def aclose(pool: Any) -> None:
    """Close an asyncio pool of any library in the running loop (peewee ``close_pool``, SQLAlchemy
    ``AsyncEngine.dispose``, psycopg_pool ``AsyncConnectionPool.close``)."""
    if hasattr(pool, "close_pool"):
        await pool.close_pool()
    elif hasattr(pool, "sync_engine"):
        await pool.dispose()
    else:
        await pool.close()


def _is_asyncio_pool(pool: Any) -> bool:
    return hasattr(pool, "close_pool") or hasattr(pool, "sync_engine") or type(pool).__name__.startswith("Async")
