"""What poolviz reads from each asyncio driver's pool: its connections, its counts, where callers wait.

peewee's asyncio databases keep no pool of their own (SQLite aside): the pool
is asyncpg's or aiomysql's, and it opens, hands out and closes connections
inside the driver. Each :class:`DriverView` answers the few questions the
instrumented database asks at every event, from the pool's own state, so the
counts on an event are the driver's counts at that moment, and says where a
caller starts to wait:

=============  ====================================  ==========================================
driver         in use / idle                         a caller waits when it
=============  ====================================  ==========================================
asyncpg        ``get_size() - get_idle_size()`` /    finds the queue of connection holders
               ``get_idle_size()``                   empty (``Queue.get`` must block)
aiomysql       ``size - freesize`` / ``freesize``    finds nothing free and no room to open one
                                                     (``Condition.wait`` in ``_acquire``)
peewee SQLite  opened and not idle / queue length    finds the queue empty (``Queue.get``)
=============  ====================================  ==========================================

The views only read the driver's attributes, except :meth:`DriverView.watch_waits`,
which wraps the one blocking call on the pool instance so poolviz hears of a
wait at the moment the driver decides it, not when the caller asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

# A driver connection as the view reports it: the raw connection and whether the pool holds it idle.
Known = dict[int, tuple[Any, bool]]


class DriverView:
    """The questions asked of a driver's pool; one subclass per driver."""

    name = "?"
    # Whether the pool itself knows the connections it has handed out.
    tracks_in_use = True

    def raw(self, conn: Any) -> Any:
        """The driver connection inside peewee's connection wrapper."""
        return conn.conn

    def known(self, pool: Any) -> Known:
        """Every open connection of the pool: ``id(raw) -> (raw, idle)``."""
        raise NotImplementedError

    def counts(self, pool: Any, opened: int) -> tuple[int, int]:
        """``(in_use, idle)`` as the driver counts them (``opened``: connections poolviz saw open)."""
        raise NotImplementedError

    def watch_waits(self, pool: Any, on_wait: Callable[[], None]) -> None:
        """Call ``on_wait()`` each time a caller is about to block in the pool for lack of a connection."""
        _watch_queue(pool._queue, on_wait)

    def is_closed(self, raw: Any) -> bool:
        """Whether the driver connection is closed."""
        raise NotImplementedError

    def gone_reason(self, pool: Any, raw: Any, idle_since: float | None) -> str:
        """Why an idle connection left the pool without poolviz closing it (a close reason)."""
        return "broken"

    async def resize(self, pool: Any, limit: int, opened: int) -> None:
        """Make the driver's pool hold at most ``limit`` connections (``opened`` now): room at once when
        growing, idle connections over it closed when shrinking (those in use go as they come back)."""
        raise NotImplementedError

    async def retire(self, pool: Any, conn: Any, raw: Any) -> bool:
        """A connection is about to be released while the pool is over its limit: make sure it is not kept.

        True when the view closed it and the driver's release must be
        skipped; False when the release must still run (it then drops the
        closed connection, or keeps it idle for :meth:`resize` to close).
        """
        return False


class AsyncpgView(DriverView):
    """asyncpg's ``Pool``: a LIFO queue of connection holders, each with at most one connection."""

    name = "asyncpg"

    def raw(self, conn: Any) -> Any:
        # peewee wraps asyncpg's PoolConnectionProxy, which wraps the Connection.
        proxy = conn.conn
        return getattr(proxy, "_con", proxy)

    def known(self, pool: Any) -> Known:
        found: Known = {}
        if pool is None:
            return found
        for holder in pool._holders:
            con = holder._con
            if con is not None and not con.is_closed():
                found[id(con)] = (con, not holder._in_use)
        return found

    def counts(self, pool: Any, opened: int) -> tuple[int, int]:
        if pool is None:
            return 0, 0
        size = idle = 0
        # One pass doing what get_size() and get_idle_size() do.
        for holder in pool._holders:
            if holder.is_connected():
                size += 1
                idle += holder.is_idle()
        return size - idle, idle

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.is_closed())

    async def resize(self, pool: Any, limit: int, opened: int) -> None:
        # asyncpg has one holder per slot, each with at most one connection, in a LIFO queue.
        from asyncpg.pool import PoolConnectionHolder

        holders, queue = pool._holders, pool._queue
        pool._maxsize = limit
        pool._minsize = min(pool._minsize, limit)
        while len(holders) < limit:
            holder = PoolConnectionHolder(
                pool,
                max_queries=pool._max_queries,
                max_inactive_time=pool._max_inactive_connection_lifetime,
                setup=pool._setup,
            )
            holders.append(holder)
            queue._maxsize = max(queue._maxsize, len(holders))
            queue.put_nowait(holder)  # wakes a task waiting for a holder
        while len(holders) > limit:
            # Idle holders leave first, those without a connection before those with one.
            idle = sorted(queue._queue, key=lambda h: h.is_connected())
            if not idle:
                break  # the rest are in use: each goes as it comes back
            holder = idle[0]
            queue._queue.remove(holder)
            holders.remove(holder)
            await holder.close()
        queue._maxsize = max(limit, len(holders))

    def gone_reason(self, pool: Any, raw: Any, idle_since: float | None) -> str:
        # asyncpg terminates a connection idle for max_inactive_connection_lifetime.
        limit = getattr(pool, "_max_inactive_connection_lifetime", 0) if pool is not None else 0
        if limit and idle_since is not None and perf_counter() - idle_since >= limit * 0.99:
            return "idle"
        return "broken"


class AiomysqlView(DriverView):
    """aiomysql's ``Pool``: a deque of free connections and a set of used ones."""

    name = "aiomysql"

    def known(self, pool: Any) -> Known:
        found: Known = {}
        if pool is None:
            return found
        for conn in pool._free:
            if not conn.closed:
                found[id(conn)] = (conn, True)
        for conn in pool._used:
            if not conn.closed:
                found[id(conn)] = (conn, False)
        return found

    def counts(self, pool: Any, opened: int) -> tuple[int, int]:
        if pool is None:
            return 0, 0
        free = pool.freesize
        return pool.size - free, free

    def watch_waits(self, pool: Any, on_wait: Callable[[], None]) -> None:
        cond = pool._cond
        wait = cond.wait

        async def watched_wait() -> Any:
            # _acquire waits here only after a refill left nothing free; close waits here too.
            if not pool._closing:
                on_wait()
            return await wait()

        cond.wait = watched_wait

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    async def resize(self, pool: Any, limit: int, opened: int) -> None:
        # aiomysql's limit is its free deque's maxlen; it opens a connection while size < maxsize.
        import collections

        pool._minsize = min(pool._minsize, limit)
        free = pool._free
        while pool.size > limit and free:
            free.popleft().close()  # the longest idle first, as peewee's pools close their oldest
        # Never shorter than what it holds: a full deque would drop a connection without closing it.
        pool._free = collections.deque(free, maxlen=max(limit, len(free)))
        async with pool._cond:
            pool._cond.notify_all()  # waiting tasks look again: there may be room now

    async def retire(self, pool: Any, conn: Any, raw: Any) -> bool:
        # Closed before the release, aiomysql drops it (from its used set) instead of keeping it free.
        raw.close()
        return False

    def gone_reason(self, pool: Any, raw: Any, idle_since: float | None) -> str:
        # aiomysql closes, then drops, a free connection last used longer than pool_recycle
        # ago (on its loop's clock) at the next acquire; one it finds dead it drops younger.
        recycle = getattr(pool, "_recycle", -1) if pool is not None else -1
        last_usage = getattr(raw, "last_usage", None)
        if recycle > -1 and last_usage is not None and pool._loop.time() - last_usage > recycle:
            return "stale"
        return "broken"


class SqliteView(DriverView):
    """peewee's own ``AsyncSqlitePool``: an ``asyncio.Queue`` of idle aiosqlite connections."""

    name = "aiosqlite"
    tracks_in_use = False

    def known(self, pool: Any) -> Known:
        found: Known = {}
        if pool is None:
            return found
        for wrapper in _queued(pool):
            raw = wrapper.conn
            if raw is not None and not wrapper.stale():
                found[id(raw)] = (raw, True)
        return found

    def counts(self, pool: Any, opened: int) -> tuple[int, int]:
        if pool is None:
            return 0, 0
        idle = pool._queue.qsize()
        return max(opened - idle, 0), idle

    def is_closed(self, raw: Any) -> bool:
        return not getattr(raw, "_running", True) or getattr(raw, "_connection", True) is None

    async def resize(self, pool: Any, limit: int, opened: int) -> None:
        # peewee's queue holds every idle connection and refuses (then closes) one more than its maxsize.
        queue = pool._queue
        pool._pool_size = limit
        while opened > limit and not queue.empty():
            await pool._close_conn(queue.get_nowait())
            opened -= 1
        queue._maxsize = limit
        while opened < limit:
            queue.put_nowait(await pool._create_connection())  # wakes a task waiting for one
            opened += 1

    async def retire(self, pool: Any, conn: Any, raw: Any) -> bool:
        # What peewee's release does with a connection its queue has no room for.
        await pool._close_conn(conn)
        return True


def _queued(pool: Any) -> Iterable[Any]:
    # The queue's deque itself: callers read it without awaiting, so it cannot change under them.
    return pool._queue._queue  # type: ignore[no-any-return]


def _watch_queue(queue: Any, on_wait: Callable[[], None]) -> None:
    get = queue.get

    async def watched_get() -> Any:
        # asyncio.Queue.get blocks exactly when the queue is empty.
        if queue.empty():
            on_wait()
        return await get()

    queue.get = watched_get


def view_for(db: Any) -> DriverView:
    """The view for a peewee asyncio database, by the backend it is built on."""
    from peewee import MySQLDatabase, PostgresqlDatabase

    if isinstance(db, PostgresqlDatabase):
        return AsyncpgView()
    if isinstance(db, MySQLDatabase):
        return AiomysqlView()
    return SqliteView()
