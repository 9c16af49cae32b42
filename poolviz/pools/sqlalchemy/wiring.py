"""Attaching a :class:`~.observer.PoolObserver` to a live SQLAlchemy pool, and nothing more.

The busy path (a checkout and its checkin) is observed at the pool's own two
entry points, wrapped on the pool *instance* (never its class):
``pool.connect`` (what ``engine.connect()`` and ``engine.raw_connection()``
call) and ``pool._return_conn`` (what a checked-in record calls). Listening to
SQLAlchemy's ``checkout``/``checkin`` events instead would cost more than the
recording itself: a ``checkout`` listener sends every checkout down
SQLAlchemy's slower validation loop.

The rare transitions come through SQLAlchemy's own pool events (``connect``,
``close``, ``invalidate``, ``soft_invalidate``, ``detach``), appended after any
listener already there, so the application's listeners run first and see what
they saw before. The places SQLAlchemy announces nothing are wrapped too: the
queue's ``get`` (a caller about to block is a ``wait``), ``_invoke_creator``
(a failed connect is an ``error``), and ``dispose`` / ``_cleanup`` (why the
connections they close are closed). Every wrapper calls the original with
the same arguments and returns or raises what it did.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.util import queue as sa_queue

from .observer import PoolObserver

_EVENTS = ("connect", "invalidate", "soft_invalidate", "close", "detach")


def attach(pool: Any, observer: PoolObserver) -> None:
    """Subscribe ``observer`` to ``pool``'s rare events and wrap its entry points."""
    for name in _EVENTS:
        event.listen(pool, name, _only_for(pool, getattr(observer, f"on_{name}")))
    queue = getattr(pool, "_pool", None)
    if isinstance(queue, sa_queue.Queue):
        queue.get = _threaded_get(queue, observer)  # type: ignore[method-assign]
    elif isinstance(queue, sa_queue.AsyncAdaptedQueue):
        queue.get = _asyncio_get(queue, observer)  # type: ignore[method-assign]
    checked_out, checked_in = observer.hot_path()
    wrap_connect = _connect_once_per_thread if isinstance(pool, SingletonThreadPool) else _connect
    pool.connect = wrap_connect(pool.connect, observer, checked_out)
    pool._return_conn = _return_conn(pool._return_conn, checked_in)
    pool._invoke_creator = _invoke_creator(pool._invoke_creator, observer)
    pool.dispose = _closing_as(pool.dispose, observer, "all")
    if isinstance(pool, SingletonThreadPool):
        # Connections of other threads, closed once more threads than pool_size have one.
        pool._cleanup = _closing_as(pool._cleanup, observer, "overflow")  # type: ignore[method-assign]


def records_in(pool: Any) -> list[Any]:
    """The connection records idle in ``pool`` right now (without creating a queue that does not exist yet)."""
    queue = getattr(pool, "_pool", None)
    if isinstance(queue, sa_queue.Queue):
        with queue.mutex:
            return list(queue.queue)
    if isinstance(queue, sa_queue.AsyncAdaptedQueue):
        inner = queue.__dict__.get("_queue")
        return list(inner._queue) if inner is not None else []  # type: ignore[attr-defined]
    static = pool.__dict__.get("connection")  # StaticPool's one record, once made
    if static is not None:
        return [static]
    return list(getattr(pool, "_all_conns", ()))  # SingletonThreadPool


def _connect(original: Callable[[], Any], observer: PoolObserver, checked_out: Callable[[Any], None]) -> Any:
    timed_out = observer.timed_out

    @functools.wraps(original)
    def connect() -> Any:
        try:
            fairy = original()
        except sa_exc.TimeoutError as error:
            timed_out(error)
            raise
        checked_out(fairy.dbapi_connection)
        return fairy

    return connect


def _connect_once_per_thread(
    original: Callable[[], Any], observer: PoolObserver, checked_out: Callable[[Any], None]
) -> Any:
    """SingletonThreadPool hands a thread its own connection again: counted by SQLAlchemy, not a new checkout."""

    @functools.wraps(original)
    def connect() -> Any:
        fairy = original()
        if fairy._counter == 1:
            checked_out(fairy.dbapi_connection)
        return fairy

    return connect


def _return_conn(original: Callable[[Any], None], checked_in: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(original)
    def return_conn(record: Any) -> None:
        connection = record.dbapi_connection
        if connection is not None:  # None: invalidated while out, its close was recorded then
            checked_in(connection)
        original(record)  # a connection the pool does not keep is closed in here: reason "overflow"

    return return_conn


def _threaded_get(queue: Any, observer: PoolObserver) -> Callable[..., Any]:
    # The queue's mutex is an RLock and its Condition.wait() releases it fully: holding
    # it across the call makes "empty, so this caller waits" exact.
    return _observed_get(queue, observer, lambda: queue._qsize() == 0, queue.mutex)


def _asyncio_get(queue: Any, observer: PoolObserver) -> Callable[..., Any]:
    # One event loop: nothing runs between this check and the queue's own.
    return _observed_get(queue, observer, lambda: queue._queue.qsize() == 0, contextlib.nullcontext())


def _observed_get(
    queue: Any, observer: PoolObserver, empty: Callable[[], bool], guard: contextlib.AbstractContextManager[Any]
) -> Callable[..., Any]:
    """The queue's ``get``, telling ``observer`` when a blocking caller finds it empty and when it stops waiting."""
    original = queue.get

    @functools.wraps(original)
    def get(block: bool = True, timeout: float | None = None) -> Any:
        if not block:
            return original(block, timeout)
        with guard:
            if not empty():
                return original(block, timeout)
            observer.waits()
            try:
                return original(block, timeout)
            finally:
                observer.wait_over()

    return get


def _invoke_creator(original: Callable[[Any], Any], observer: PoolObserver) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def invoke_creator(record: Any) -> Any:
        try:
            return original(record)
        except Exception as error:
            observer.connect_failed(error)
            raise

    return invoke_creator


def _closing_as(original: Callable[..., Any], observer: PoolObserver, reason: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def closing_as(*args: Any, **kwargs: Any) -> Any:
        token = observer.closing(reason)
        try:
            return original(*args, **kwargs)
        finally:
            observer.closed(token)

    return closing_as


def _only_for(pool: Any, listener: Callable[..., None]) -> Callable[..., None]:
    """``listener``, called only for ``pool``'s own connection records.

    ``recreate()`` (``engine.dispose()``) copies a pool's listeners to the new
    pool, where SQLAlchemy's ``event.remove`` cannot reach them; they stay
    silent there, so the new pool is a plain one until it is instrumented in
    turn. A record names its pool in the name-mangled ``__pool`` attribute.
    """

    @functools.wraps(listener)
    def only_for(dbapi_connection: Any, record: Any, *rest: Any) -> None:
        if getattr(record, "_ConnectionRecord__pool", pool) is pool:
            listener(dbapi_connection, record, *rest)

    return only_for
