"""The two workloads with asyncio tasks instead of threads, on peewee's, psycopg_pool's and SQLAlchemy's asyncio pools.

The closed loop runs ``tasks`` tasks that each make requests back to back;
the open loop starts one task per arrival, as an ASGI server does per request.
A request is the threaded loops' request in async form. On a peewee asyncio
database: ``await db.aconnect()``, the tutorial's ``User`` insert and select
(run through ``db.run``, peewee's greenlet bridge), a hold (``SELECT
SLEEP``/``pg_sleep`` on a server, ``asyncio.sleep`` on SQLite), then ``await
db.aclose()``. On a psycopg_pool ``AsyncConnectionPool``: ``async with
pool.connection()`` and the same statements on its cursor
(:class:`~.clients.Statements`); a pool made with ``open=False`` is opened in
the run's loop. On a SQLAlchemy ``AsyncEngine``: ``await engine.connect()``,
the threads' DBAPI work through ``run_sync``, ``close()``. Both return the same
:class:`~poolviz.workload.results.WorkloadResult` as the threaded loops, with
each task's name where a thread's name would be.

``arun_*`` are coroutines for code that already runs an event loop (a
notebook cell can ``await`` them); ``run_async_*`` run one on an event loop of
their own (in a helper thread when the caller already has a loop running) and
close the pool at the end, since an asyncio pool belongs to the loop that
created it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from inspect import Signature
from typing import Any

from ..models import user_model
from .args import closed_loop_args, open_loop_args
from .clients import DBAPIClient, Statements, delete_rows, ensure_schema, library_of, user_work
from .loops import run_closed_loop, run_open_loop
from .results import RequestRecord, WorkloadResult
from .run import Frame, Run, check_pool, cleanup_failed

ASYNC_CLIENT_SLEEP = "asyncio.sleep"


def check_async_pool(db: Any) -> None:
    """An asyncio workload runs on an instrumented asyncio database only."""
    check_pool(db, tasks=True)


class PeeweeTasks:
    """peewee's asyncio databases: ``aconnect``/``aclose``, the threads' ``User`` work through ``db.run``."""

    def __init__(self, db: Any, hold_sql: str | None) -> None:
        self.db = db
        self.hold_sql = hold_sql
        # The tutorial's User, bound to this run's database only (see poolviz.models.user_model).
        self.model = user_model(db)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[None]:
        await self.db.aconnect()
        try:
            yield None
        finally:
            await self.db.aclose()

    async def work(self, handle: Any, name: str) -> None:
        # peewee's greenlet bridge (db.run) lets the threads' sync User work await here.
        await self.db.run(user_work, self.model, name)

    async def execute_hold(self, handle: Any, seconds: float) -> None:
        await self.db.aexecute_sql(self.hold_sql, (seconds,))

    async def open(self) -> None:
        """Nothing to do: peewee opens its asyncio pool on first use."""

    async def setup(self) -> None:
        fresh = self.db.pool is None
        with warnings.catch_warnings():
            # aiomysql turns MariaDB's note "Table 'user' already exists" into a Warning.
            warnings.simplefilter("ignore")
            await self.db.run(ensure_schema, self.db)
        if fresh:
            await self.db.close_pool()

    async def cleanup(self, prefix: str) -> None:
        await self.db.run(_delete_rows, self.db, self.model, prefix)

    async def close(self) -> None:
        await self.db.close_pool()
        # peewee's pool-creation lock binds to the first loop that contends
        # for it and refuses every later loop: give the next run a new one.
        self.db._pool_lock = asyncio.Lock()


class PsycopgTasks:
    """psycopg_pool's ``AsyncConnectionPool``: ``async with pool.connection()``, peewee's statements on its cursor."""

    def __init__(self, pool: Any, hold_sql: str | None) -> None:
        self.pool = pool
        self.hold_sql = hold_sql
        self.sql = Statements("postgresql")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self.pool.connection() as conn, conn.cursor() as cursor:
            yield cursor

    async def work(self, handle: Any, name: str) -> None:
        await handle.execute(*self.sql.insert(name))
        await handle.execute(*self.sql.select(name))
        await handle.fetchall()

    async def execute_hold(self, handle: Any, seconds: float) -> None:
        await handle.execute(*self.sql.hold(seconds))

    async def open(self) -> None:
        """Open a pool made with ``open=False`` in this loop (psycopg_pool refuses to reopen a closed one)."""
        if self.pool.closed:
            await self.pool.open()

    async def setup(self) -> None:
        async with self.connection() as cursor:
            for statement in self.sql.create(safe=True):
                await cursor.execute(*statement)

    async def cleanup(self, prefix: str) -> None:
        async with self.connection() as cursor:
            await cursor.execute(*self.sql.delete(prefix))

    async def close(self) -> None:
        await self.pool.close()


class SQLAlchemyTasks:
    """SQLAlchemy's ``AsyncEngine``: ``await engine.connect()`` ... ``close()`` in the request's own task.

    The work is the threads' (:class:`~.clients.DBAPIClient`) on the driver's
    DBAPI cursor, run through ``run_sync`` (SQLAlchemy's greenlet bridge), with
    the placeholders its asyncio driver wants (asyncpg's ``$1``). ``close()``
    rather than ``async with``: SQLAlchemy closes in a task of its own on
    ``__aexit__``, and the check-in belongs to the request's task.
    """

    def __init__(self, engine: Any, hold_sql: str | None) -> None:
        from ..pools import events_of

        self.engine = engine
        self.hold_sql = hold_sql
        self.dbapi = DBAPIClient(engine, events_of(engine), engine.dialect.paramstyle)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            cursor = await conn.run_sync(lambda _sync: raw.cursor())
            yield conn, cursor
            await conn.run_sync(lambda _sync: raw.commit())
        finally:
            await conn.close()

    async def work(self, handle: Any, name: str) -> None:
        conn, cursor = handle
        await conn.run_sync(lambda _sync: self.dbapi.work(cursor, name))

    async def execute_hold(self, handle: Any, seconds: float) -> None:
        conn, cursor = handle
        await conn.run_sync(lambda _sync: self.dbapi.execute_hold(cursor, seconds))

    async def open(self) -> None:
        """Nothing to do: the engine's pool connects on first use."""

    async def setup(self) -> None:
        async with self.connection() as (conn, cursor):
            raw = await conn.get_raw_connection()
            await conn.run_sync(lambda _sync: self.dbapi.setup_on(cursor, raw.rollback))

    async def cleanup(self, prefix: str) -> None:
        async with self.connection() as (conn, cursor):
            await conn.run_sync(lambda _sync: cursor.execute(*self.dbapi.sql.delete(prefix)))

    async def close(self) -> None:
        await self.engine.dispose()


def tasks_client(db: Any, hold_sql: str | None = None) -> PeeweeTasks | PsycopgTasks | SQLAlchemyTasks:
    """How asyncio tasks use ``db``: a peewee asyncio database, a psycopg_pool or SQLAlchemy asyncio pool."""
    library = library_of(db)
    if library == "psycopg":
        return PsycopgTasks(db, hold_sql)
    if library == "sqlalchemy":
        return SQLAlchemyTasks(db, hold_sql)
    return PeeweeTasks(db, hold_sql)


class AsyncRun(Run):
    """A run whose requests are made by asyncio tasks (records, progress and errors as in :class:`Run`)."""

    client_sleep = ASYNC_CLIENT_SLEEP

    def __init__(self, db: Any, progress: Any, total: int | None) -> None:
        super().__init__(db, progress, total)
        self.client = tasks_client(db, self.hold_sql)

    async def request(self, worker: int, index: int, hold_s: float, arrived: float | None = None) -> RequestRecord:
        """Run one request in the current task and return its record; errors are recorded, never raised."""
        client = self.client
        with self.track(worker, index, hold_s, arrived) as request:
            async with client.connection() as handle:
                await client.work(handle, self.row_name(worker, index))
                await self.hold(handle, hold_s)
        return request.record

    async def hold(self, handle: Any, seconds: float) -> None:
        """Hold the connection for ``seconds``: sleeping on the server where possible, else ``asyncio.sleep``."""
        if seconds <= 0:
            return
        if self.hold_sql is not None:
            await self.client.execute_hold(handle, seconds)
        else:
            await asyncio.sleep(seconds)

    async def setup(self) -> None:
        """Create the User table if missing; a peewee pool created for that is closed, so the run shows it opening."""
        await self.client.open()
        await self.client.setup()

    async def cleanup(self) -> None:
        """Delete the rows this run created (see :func:`.run.cleanup_failed` for a failure)."""
        try:
            await self.client.cleanup(self.prefix)
        except Exception as exc:
            cleanup_failed(self.prefix, exc)


def _delete_rows(db: Any, model: Any, prefix: str) -> None:
    with db.connection_context():
        delete_rows(model, prefix)


async def _execute(run: AsyncRun, frame: Frame, body: Callable[[AsyncRun], Awaitable[int]]) -> WorkloadResult:
    """The asyncio frame around both loops: :func:`.loops.execute` with awaits."""
    await run.client.open()
    if frame.setup:
        await run.setup()
    with run.watch() as window:
        abandoned = await body(run)
    if frame.cleanup:
        await run.cleanup()
    return run.result(frame, window, abandoned)


def twin_signature(threaded: Callable[..., Any], rename: dict[str, str] | None = None, drop: str = "") -> Signature:
    """A threaded loop's signature as its asyncio twin takes it: one definition of the arguments serves both.

    ``rename`` maps a parameter to the twin's name for it; ``drop`` names one the twin has no use for.
    """
    signature = inspect.signature(threaded)
    names = rename or {}
    kept = [p.replace(name=names.get(p.name, p.name)) for p in signature.parameters.values() if p.name != drop]
    return signature.replace(parameters=kept)


#: :func:`~poolviz.workload.run_closed_loop`'s arguments, ``tasks`` for ``workers``.
CLOSED_LOOP = twin_signature(run_closed_loop, rename={"workers": "tasks"})
#: :func:`~poolviz.workload.run_open_loop`'s arguments but ``threads``: each arrival gets a task of its own.
OPEN_LOOP = twin_signature(run_open_loop, drop="threads")


def _frame(mode: str, settings: dict[str, Any], called: dict[str, Any]) -> Frame:
    stop = called["stop"] if called["stop"] is not None else threading.Event()
    return Frame(mode, {**settings, "concurrency": "asyncio"}, stop, called["setup"], called["cleanup"])


def _bind(signature: Signature, *args: Any, **kwargs: Any) -> dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


async def arun_closed_loop(*args: Any, **kwargs: Any) -> WorkloadResult:
    """Run ``tasks`` asyncio tasks that each make ``requests`` requests back to back through ``db``.

    The asyncio twin of :func:`~poolviz.workload.run_closed_loop`, with its
    arguments (:data:`CLOSED_LOOP`: ``tasks`` for ``workers``): the same seeded
    draws per worker, the same result. Setting ``stop`` ends the run once each
    task finishes its current request.
    """
    called = _bind(CLOSED_LOOP, *args, **kwargs)
    db = called["db"]
    check_async_pool(db)
    args_ = closed_loop_args(*(called[k] for k in ("tasks", "requests", "hold", "think", "seed")), workers_name="tasks")
    frame = _frame("closed", args_.settings("tasks"), called)

    async def body(run: AsyncRun) -> int:
        async def work(worker: int) -> None:
            for index, hold_s, think_s in args_.draws(worker):
                if frame.stop.is_set():
                    return
                await run.request(worker, index, hold_s)
                if think_s > 0:
                    await asyncio.sleep(think_s)

        await asyncio.gather(*(asyncio.create_task(work(w), name=f"task-{w}") for w in range(args_.workers)))
        return 0

    return await _execute(AsyncRun(db, called["progress"], args_.workers * args_.requests), frame, body)


async def arun_open_loop(*args: Any, **kwargs: Any) -> WorkloadResult:
    """Start one task per Poisson arrival at ``rate`` per second, like an asyncio web server.

    The asyncio twin of :func:`~poolviz.workload.run_open_loop`, with its
    arguments but ``threads`` (:data:`OPEN_LOOP`): every arrival gets a task at
    once, so ``queued_s`` is only the event loop's delay in starting it and the
    waiting happens in the pool. The run makes ``requests`` arrivals, or
    arrivals for ``duration`` seconds, whichever ends first. Setting ``stop``
    ends arrivals; tasks already started finish.
    """
    called = _bind(OPEN_LOOP, *args, **kwargs)
    db = called["db"]
    check_async_pool(db)
    args_ = open_loop_args(*(called[k] for k in ("rate", "duration", "requests", "hold", "seed")))
    frame = _frame("open", args_.settings(), called)

    async def body(run: AsyncRun) -> int:
        started: list[asyncio.Task[RequestRecord]] = []
        for arrival in args_.arrivals(run.log.t0):
            if arrival.delay > 0:
                await asyncio.sleep(arrival.delay)
            if frame.stop.is_set():
                break
            coro = run.request(arrival.number, 0, arrival.hold_s, arrival.at)
            started.append(asyncio.create_task(coro, name=f"request-{arrival.number}"))
        await asyncio.gather(*started)
        return 0

    total = args_.requests if args_.duration is None else None
    return await _execute(AsyncRun(db, called["progress"], total), frame, body)


# help(), notebooks' tooltips and inspect show the arguments the twins take.
arun_closed_loop.__signature__ = CLOSED_LOOP.replace(return_annotation="WorkloadResult")  # type: ignore[attr-defined]
arun_open_loop.__signature__ = OPEN_LOOP.replace(return_annotation="WorkloadResult")  # type: ignore[attr-defined]


def run_async_closed_loop(db: Any, *args: Any, **kwargs: Any) -> WorkloadResult:
    """:func:`arun_closed_loop` on an event loop of its own; the pool is closed at the end."""
    check_async_pool(db)
    return on_own_loop(db, arun_closed_loop(db, *args, **kwargs))


def run_async_open_loop(db: Any, *args: Any, **kwargs: Any) -> WorkloadResult:
    """:func:`arun_open_loop` on an event loop of its own; the pool is closed at the end."""
    check_async_pool(db)
    return on_own_loop(db, arun_open_loop(db, *args, **kwargs))


def on_own_loop(db: Any, coro: Awaitable[Any]) -> Any:
    """Run ``coro`` on an event loop of its own (in a helper thread if this one runs a loop); close ``db``'s pool."""

    async def main() -> Any:
        try:
            return await coro
        finally:
            await tasks_client(db).close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # A loop already runs in this thread (a notebook): asyncio.run() refuses, so use a thread of our own.
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="poolviz-asyncio", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


__all__ = [
    "ASYNC_CLIENT_SLEEP",
    "CLOSED_LOOP",
    "OPEN_LOOP",
    "AsyncRun",
    "arun_closed_loop",
    "arun_open_loop",
    "check_async_pool",
    "on_own_loop",
    "run_async_closed_loop",
    "run_async_open_loop",
]
