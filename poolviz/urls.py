"""Database URLs (peewee's ``playhouse.db_url`` form) to instrumented pools."""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, urlparse

from playhouse.db_url import parseresult_to_dict

from .credentials import mask_url
from .pools.peewee import (
    Instrumented,
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
)

POOL_SCHEMES: dict[str, type[Instrumented]] = {
    "sqlite+pool": InstrumentedPooledSqliteDatabase,
    "mysql+pool": InstrumentedPooledMySQLDatabase,
    "mariadb+pool": InstrumentedPooledMySQLDatabase,
    "postgres+pool": InstrumentedPooledPostgresqlDatabase,
    "postgresql+pool": InstrumentedPooledPostgresqlDatabase,
}
# peewee's asyncio databases (playhouse.pwasyncio), imported only when asked for: they need greenlet and a driver.
ASYNC_SCHEMES: dict[str, str] = {
    "sqlite+asyncpool": "InstrumentedAsyncSqliteDatabase",
    "mysql+asyncpool": "InstrumentedAsyncMySQLDatabase",
    "mariadb+asyncpool": "InstrumentedAsyncMySQLDatabase",
    "postgres+asyncpool": "InstrumentedAsyncPostgresqlDatabase",
    "postgresql+asyncpool": "InstrumentedAsyncPostgresqlDatabase",
}
_PLAIN_CLASSES = {
    "sqlite": "SqliteDatabase",
    "mysql": "MySQLDatabase",
    "mariadb": "MySQLDatabase",
    "postgres": "PostgresqlDatabase",
    "postgresql": "PostgresqlDatabase",
}


def url_params(parsed: ParseResult) -> dict[str, Any]:
    """A parsed URL's database name and driver arguments, as every part of poolviz reads them.

    As ``playhouse.db_url`` reads them, with the user and password unquoted
    (``Pw%40rd`` is ``Pw@rd``) and MySQL's password passed as ``password``:
    peewee names it ``passwd``, which PyMySQL warns is deprecated on every connect.
    """
    params = parseresult_to_dict(parsed, unquote_password=True, unquote_user=True)
    if "passwd" in params:
        params["password"] = params.pop("passwd")
    return params


def connect(url: str, **kwargs: Any) -> Any:
    """An instrumented pool for ``url``, e.g. ``mysql+pool://user:pw@host:3306/db?max_connections=8``.

    Query parameters and ``kwargs`` go to the pool (``max_connections``,
    ``stale_timeout``, ``timeout``) or to the driver, as with peewee's
    ``playhouse.db_url.connect``. Only ``+pool`` schemes are accepted: the
    plain ones give a database that opens one connection per thread and
    ignores ``max_connections``, so they are refused with the form to use.
    ``+asyncpool`` schemes give peewee's asyncio databases (``pool_size``,
    ``pool_min_size``, ``acquire_timeout``), see :mod:`poolviz.aio`.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a string like 'sqlite+pool:///app.db', got {url!r}")
    shown = mask_url(url)
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in _PLAIN_CLASSES:
        raise ValueError(
            f"{shown!r} would not pool: {scheme}:// gives peewee's plain "
            f"{_PLAIN_CLASSES[scheme]}, one connection per thread with no limit. "
            f"Use {scheme}+pool://{shown.split('://', 1)[-1]} instead."
        )
    cls: Any = POOL_SCHEMES.get(scheme)
    if cls is None and scheme in ASYNC_SCHEMES:
        from .pools import peewee_asyncio as aio

        cls = getattr(aio, ASYNC_SCHEMES[scheme])
    if cls is None:
        allowed = ", ".join(f"{s}://" for s in [*POOL_SCHEMES, *ASYNC_SCHEMES])
        raise ValueError(f"unknown database URL scheme {parsed.scheme!r} in {shown!r}; use one of {allowed}")
    try:
        params = url_params(parsed)
    except ValueError as exc:
        raise ValueError(f"cannot read database URL {shown!r}: {exc}") from None
    params.update(kwargs)
    database = params.pop("database", None)
    if not database:
        example = f"{scheme}:///path/to/app.db" if scheme.startswith("sqlite") else f"{scheme}://user@host:port/dbname"
        raise ValueError(f"{shown!r} names no database: use the form {example}")
    db = cls(database, **params)
    db.events.meta["url"] = shown
    return db


# The drivers poolviz uses with each backend, in SQLAlchemy's URL spelling (threads, asyncio).
_SQLALCHEMY_DRIVERS = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "mysql": ("mysql+pymysql", "mysql+aiomysql"),
    "postgresql": ("postgresql+psycopg2", "postgresql+asyncpg"),
}


def sqlalchemy_url(url: str, *, asyncio: bool = False) -> str:
    """A poolviz (peewee) URL in SQLAlchemy's spelling, with the driver poolviz installs for it.

    ``postgresql+pool://postgres@127.0.0.1:5432/test`` becomes
    ``postgresql+psycopg2://postgres@127.0.0.1:5432/test`` (``postgresql+asyncpg``
    with ``asyncio=True``); MariaDB/MySQL uses PyMySQL (aiomysql), SQLite the
    standard library (aiosqlite). The rest of the URL is kept as it is.
    """
    parsed = urlparse(url)
    backend = {"mariadb": "mysql", "postgres": "postgresql"}.get(
        parsed.scheme.split("+")[0], parsed.scheme.split("+")[0]
    )
    if backend not in _SQLALCHEMY_DRIVERS:
        raise ValueError(f"no SQLAlchemy driver known for {mask_url(url)!r}: use sqlite, mysql, mariadb or postgresql")
    return _SQLALCHEMY_DRIVERS[backend][asyncio] + url[len(parsed.scheme) :]
