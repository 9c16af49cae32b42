"""How a workload talks to each pool library: check a connection out and in, do the request's work, hold it.

One small client per library, chosen by :func:`client_for` from the
instrumented target a workload is given:

- a peewee pool: ``with db.connection_context():``, the tutorial's ``User``
  insert and select through peewee, the hold with ``db.execute_sql``;
- a SQLAlchemy ``Engine``: ``engine.raw_connection()`` (a DBAPI connection
  proxied by its pool) ... ``commit()`` ... ``close()`` (back to the pool);
- a psycopg_pool ``ConnectionPool``: ``with pool.connection():`` (commits on
  a clean exit, rolls back on an error).

The SQLAlchemy and psycopg_pool clients run the very statements peewee would
run for the same ``User`` work (built by an unconnected peewee database of the
backend's dialect: its quoting of the ``user`` table and its paramstyle, which
is the drivers' own), so every library does the same work on the server. The
hold is :data:`poolviz.backends.HOLD_SQL` on the same cursor (a client-side
sleep with the connection checked out on SQLite). Everything else a run
decides (records, progress, errors, the result) stays in :mod:`.run`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from peewee import DatabaseError

from ..backends import HOLD_SQL, PLAIN_CLASSES
from ..events import EventLog
from ..models import User, user_model

#: What the threaded workloads accept, for error messages.
THREAD_TARGETS = (
    "an instrumented pool: a peewee pool (poolviz.connect(url)), a SQLAlchemy Engine or a psycopg_pool "
    "ConnectionPool (poolviz.instrument(x), or poolviz.pools.factory.build(library, url))"
)


def library_of(target: Any) -> str:
    """``'peewee'``, ``'sqlalchemy'`` or ``'psycopg'`` for a pool object of that library, else ``''``."""
    if "sqlalchemy" in sys.modules:
        from ..pools.sqlalchemy import is_sqlalchemy_target

        if is_sqlalchemy_target(target):
            return "sqlalchemy"
    if "psycopg_pool" in sys.modules:
        from ..pools.psycopg import is_psycopg_pool

        if is_psycopg_pool(target):
            return "psycopg"
    from playhouse.pool import PooledDatabase

    return "peewee" if isinstance(target, PooledDatabase) else ""


def is_threaded_target(target: Any) -> bool:
    """Whether the threaded loops can drive ``target``: a peewee pool, a SQLAlchemy Engine, a psycopg ConnectionPool."""
    library = library_of(target)
    if library == "sqlalchemy":
        from sqlalchemy.engine import Engine

        return isinstance(target, Engine)
    if library == "psycopg":
        from psycopg_pool import ConnectionPool

        return isinstance(target, ConnectionPool)
    return library == "peewee"


def user_work(model: Any, name: str) -> None:
    """A request's work with the tutorial's ``User``: insert one row named ``name`` and read it back."""
    model.insert(username=name).execute()
    list(model.select().where(model.username == name))


def delete_rows(model: Any, prefix: str) -> None:
    """Delete the ``User`` rows whose name starts with ``prefix`` (a run's rows); needs a connection."""
    model.delete().where(model.username.startswith(prefix)).execute()


def ensure_schema(db: Any) -> None:
    """Create the tutorial's ``User`` table through ``db`` if it does not exist yet."""
    try:
        with connection(db):
            user_model(db).create_table(safe=True)
    except DatabaseError:
        # Another process created it at the same moment: fine if it is there now.
        with connection(db):
            if not db.table_exists(User._meta.table_name):
                raise


@contextmanager
def connection(db: Any) -> Iterator[None]:
    """A connection for this thread: its open one if it has one (left open), else one from the pool."""
    if not db.is_closed():
        yield
        return
    with db.connection_context():
        yield


class Client:
    """A workload's view of one instrumented pool: the calls a request makes, whatever the library."""

    library = ""

    def __init__(self, target: Any, log: EventLog) -> None:
        self.target = target
        self.log = log
        self.backend: str = str(log.meta.get("backend", "other"))
        self.hold_sql = HOLD_SQL.get(self.backend)

    def connection(self) -> Any:
        """A context manager that checks a connection out for the block and back in after it; yields a handle."""
        raise NotImplementedError

    def work(self, handle: Any, name: str) -> None:
        """The request's ``User`` work on the checked-out connection: insert ``name`` and read it back."""
        raise NotImplementedError

    def execute_hold(self, handle: Any, seconds: float) -> None:
        """Run :data:`~poolviz.backends.HOLD_SQL` for ``seconds`` on the checked-out connection."""
        raise NotImplementedError

    def hold(self, handle: Any, seconds: float) -> None:
        """Hold the checked-out connection for ``seconds``: on the server where it can sleep, else here."""
        if seconds <= 0:
            return
        if self.hold_sql is not None:
            self.execute_hold(handle, seconds)
        else:
            time.sleep(seconds)

    def setup(self) -> None:
        """Create the ``User`` table if it is missing."""
        raise NotImplementedError

    def cleanup(self, prefix: str) -> None:
        """Delete the ``User`` rows whose name starts with ``prefix``; raises what the driver raised."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the pool and its connections (the end of a sweep's size, of a worker process)."""
        raise NotImplementedError


class PeeweeClient(Client):
    """peewee's pools: the connection is the thread's (``connection_context``), the work goes through peewee."""

    library = "peewee"

    def __init__(self, target: Any, log: EventLog) -> None:
        super().__init__(target, log)
        # The tutorial's User, bound to this pool only (see poolviz.models.user_model).
        self.model = user_model(target)

    def connection(self) -> Any:
        return self.target.connection_context()

    def work(self, handle: Any, name: str) -> None:
        user_work(self.model, name)

    def execute_hold(self, handle: Any, seconds: float) -> None:
        self.target.execute_sql(self.hold_sql, (seconds,))

    def setup(self) -> None:
        cursor = self.log.cursor()
        ensure_schema(self.target)
        events, _lost = cursor.read()
        if any(e.kind == "connect" for e in events):
            # A fresh pool: leave it empty again so the trace shows it growing.
            self.target.close_idle()

    def cleanup(self, prefix: str) -> None:
        with connection(self.target):
            delete_rows(self.model, prefix)

    def close(self) -> None:
        self.target.close_all()


class Statements:
    """The ``User`` work's SQL and parameters as peewee writes them for one backend (quoting, paramstyle).

    peewee writes ``%s`` (``?`` on SQLite), which the threaded drivers take;
    ``paramstyle`` (a DBAPI driver's, e.g. asyncpg's ``numeric_dollar`` behind
    SQLAlchemy) rewrites the placeholders for a driver that wants others.
    """

    def __init__(self, backend: str, paramstyle: str | None = None) -> None:
        plain = PLAIN_CLASSES.get(backend)
        if plain is None:
            raise ValueError(f"the workloads know sqlite, mysql and postgresql; this pool's backend is {backend!r}")
        # Never connected: it only writes SQL in its dialect.
        self.model: Any = user_model(plain(None))
        self.backend = backend
        self.placeholder = "?" if backend == "sqlite" else "%s"
        self.paramstyle = paramstyle

    def styled(self, sql: str, params: list[Any]) -> tuple[str, Any]:
        """``sql`` with peewee's placeholders in :attr:`paramstyle`, and its parameters."""
        style = self.paramstyle
        if style is None or (style, self.placeholder) in (("qmark", "?"), ("format", "%s"), ("pyformat", "%s")):
            return sql, params
        parts = sql.split(self.placeholder)
        if style in ("named", "pyformat"):
            marks = [f":p{i}" if style == "named" else f"%(p{i})s" for i in range(len(parts) - 1)]
            values: Any = {f"p{i}": value for i, value in enumerate(params)}
        else:
            form = {"numeric_dollar": "${}", "numeric": ":{}", "qmark": "?", "format": "%s"}[style]
            marks, values = [form.format(i + 1) for i in range(len(parts) - 1)], params
        return "".join(part + mark for part, mark in zip(parts, [*marks, ""], strict=True)), values

    def insert(self, name: str) -> tuple[str, Any]:
        return self.styled(*self.model.insert(username=name).sql())

    def select(self, name: str) -> tuple[str, Any]:
        return self.styled(*self.model.select().where(self.model.username == name).sql())

    def delete(self, prefix: str) -> tuple[str, Any]:
        return self.styled(*self.model.delete().where(self.model.username.startswith(prefix)).sql())

    def exists(self) -> tuple[str, Any]:
        return self.styled(*self.model.select(self.model.id).limit(0).sql())

    def hold(self, seconds: float) -> tuple[str, Any]:
        """:data:`~poolviz.backends.HOLD_SQL` for ``seconds`` (a server backend only)."""
        return self.styled(HOLD_SQL[self.backend], [seconds])

    def create(self, safe: bool = False) -> list[tuple[str, Any]]:
        """The table (if not there) and its unique index (``safe``: if not there either; not on MariaDB)."""
        schema = self.model._schema
        queries = [schema._create_table(safe=True).query(), *(c.query() for c in schema._create_indexes(safe=safe))]
        return [self.styled(*query) for query in queries]


class DBAPIClient(Client):
    """Libraries that hand out DBAPI connections: the work runs peewee's statements on a cursor."""

    def __init__(self, target: Any, log: EventLog, paramstyle: str | None = None) -> None:
        super().__init__(target, log)
        self.sql = Statements(self.backend, paramstyle)

    def work(self, handle: Any, name: str) -> None:
        handle.execute(*self.sql.insert(name))
        handle.execute(*self.sql.select(name))
        handle.fetchall()

    def execute_hold(self, handle: Any, seconds: float) -> None:
        handle.execute(*self.sql.hold(seconds))
        handle.fetchall()

    def setup(self) -> None:
        with self.connection() as cursor:
            self.setup_on(cursor, cursor.connection.rollback)

    def setup_on(self, cursor: Any, rollback: Callable[[], Any]) -> None:
        """Create the ``User`` table through ``cursor`` unless it is there (``rollback`` after a failed statement)."""
        try:
            cursor.execute(*self.sql.exists())
            cursor.fetchall()
            return
        except Exception:  # no table yet (the driver's own error class)
            rollback()
        try:
            for statement in self.sql.create():
                cursor.execute(*statement)
        except Exception:
            # Another process created it at the same moment: fine if it is there now.
            rollback()
            cursor.execute(*self.sql.exists())
            cursor.fetchall()

    def cleanup(self, prefix: str) -> None:
        with self.connection() as cursor:
            cursor.execute(*self.sql.delete(prefix))


class SQLAlchemyClient(DBAPIClient):
    """A SQLAlchemy ``Engine``: ``raw_connection()`` checks out, ``close()`` checks in (after a commit)."""

    library = "sqlalchemy"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = self.target.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            conn.commit()
        finally:
            conn.close()  # back to the pool, which rolls back whatever was not committed

    def close(self) -> None:
        self.target.dispose()


class PsycopgClient(DBAPIClient):
    """A psycopg_pool ``ConnectionPool``: ``with pool.connection():`` commits on a clean exit."""

    library = "psycopg"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self.target.connection() as conn, conn.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        self.target.close()


_CLIENTS: dict[str, type[Client]] = {"peewee": PeeweeClient, "sqlalchemy": SQLAlchemyClient, "psycopg": PsycopgClient}


def client_for(target: Any) -> Client:
    """The client for an instrumented threaded target (:data:`THREAD_TARGETS`), or a TypeError naming them."""
    from ..pools import events_of

    if not is_threaded_target(target):
        raise TypeError(f"a workload needs {THREAD_TARGETS}, got {type(target).__module__}.{type(target).__qualname__}")
    return _CLIENTS[library_of(target)](target, events_of(target))


__all__ = [
    "THREAD_TARGETS",
    "Client",
    "DBAPIClient",
    "PeeweeClient",
    "PsycopgClient",
    "SQLAlchemyClient",
    "Statements",
    "client_for",
    "is_threaded_target",
    "library_of",
]
