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
queue's ``not_empty`` condition (a caller about to block is a ``wait``; the asyncio queue's ``get``),
``_invoke_creator``
(a failed connect is an ``error``), and ``dispose`` / ``_cleanup`` (why the
connections they close are closed). Every wrapper calls the original with
the same arguments and returns or raises what it did.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
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
        queue.not_empty = _ObservedCondition(queue.not_empty, observer)
    elif isinstance(queue, sa_queue.AsyncAdaptedQueue):
        queue.get = _asyncio_get(queue, observer)  # type: ignore[method-assign]
    if isinstance(pool, SingletonThreadPool):
        checked_out, return_conn = observer.busy_path(pool.connect, pool._return_conn, depth=3)
        connect = _connect_once_per_thread(pool.connect, checked_out)
    else:
        connect, return_conn = observer.busy_path(pool.connect, pool._return_conn)
    pool.connect = functools.update_wrapper(connect, pool.connect)
    pool._return_conn = functools.update_wrapper(return_conn, pool._return_conn)  # type: ignore[method-assign]
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


def _connect_once_per_thread(original: Callable[[], Any], checked_out: Callable[[Any], Any]) -> Any:
    """SingletonThreadPool hands a thread its own connection again: counted by SQLAlchemy, not a new checkout."""

    def connect() -> Any:
        fairy = original()
        if fairy._counter == 1:
            checked_out(fairy)
        return fairy

    return connect


class _ObservedCondition(threading.Condition):
    """The threaded queue's ``not_empty``, telling the observer when a caller blocks on it and when it stops.

    ``get`` waits on ``not_empty`` only when the queue is empty and the caller
    blocks, holding the queue's mutex, so the first :meth:`wait` of a ``get`` is
    exactly "empty, so this caller waits"; the ``with not_empty`` block that
    ``get`` runs in ends (returning or raising ``Empty``) when it stops waiting.
    A ``get`` that finds a record wakes nobody and costs nothing more. It takes
    over the original's lock and its list of waiters, so callers blocked on
    the original before instrumenting are woken by ``put`` as before.
    """

    def __init__(self, original: threading.Condition, observer: PoolObserver) -> None:
        super().__init__(original._lock)  # type: ignore[attr-defined]
        self._waiters = original._waiters  # type: ignore[attr-defined]
        self._pv_observer = observer
        self._pv_blocked = 0  # callers blocked on it now, as counted here

    def wait(self, timeout: float | None = None) -> bool:
        if not _blocked_here.get():
            _blocked_here.set(True)
            self._pv_blocked += 1
            self._pv_observer.waits()
        return super().wait(timeout)

    def __exit__(self, *args: Any) -> Any:
        if self._pv_blocked and _blocked_here.get():  # this caller blocked in the get now ending
            _blocked_here.set(False)
            self._pv_blocked -= 1
            self._pv_observer.wait_over()
        return self._lock.__exit__(*args)  # type: ignore[attr-defined]


# Whether this caller (thread, task or greenlet) blocks in a threaded queue's get now.
_blocked_here: contextvars.ContextVar[bool] = contextvars.ContextVar("poolviz_sqla_blocked", default=False)


def _asyncio_get(queue: Any, observer: PoolObserver) -> Callable[..., Any]:
    # One event loop: nothing runs between this check and the queue's own.
    return _observed_get(queue, observer, lambda: queue._queue.qsize() == 0)


def _observed_get(queue: Any, observer: PoolObserver, empty: Callable[[], bool]) -> Callable[..., Any]:
    """The queue's ``get``, telling ``observer`` when a blocking caller finds it empty and when it stops waiting."""
    original = queue.get

    @functools.wraps(original)
    def get(block: bool = True, timeout: float | None = None) -> Any:
        if not block or not empty():
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
