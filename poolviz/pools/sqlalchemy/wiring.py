"""Attaching a :class:`~.observer.PoolObserver` to a live SQLAlchemy pool, and nothing more.

Two kinds of attachment, both undone by nothing and both invisible to the
pool's users:

- SQLAlchemy's own pool events (``event.listen``), appended after any
  listener already there, so the application's listeners run first and see
  exactly what they saw before;
- wrappers set on the pool *instance* (never its class) around the four
  places SQLAlchemy announces nothing: the queue's ``get`` (a caller about to
  block is a ``wait``), ``_do_get`` (a ``TimeoutError`` is a ``timeout``),
  ``_invoke_creator`` (a failed connect is an ``error``) and ``_do_return_conn``
  / ``dispose`` (why the connections they close are closed). Each wrapper calls
  the original with the same arguments and returns or raises what it did.

``recreate()`` (what ``engine.dispose()`` calls) copies a pool's listeners to
its successor; poolviz's stay silent there (see :func:`_only_for`).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.util import queue as sa_queue

from .observer import PoolObserver

_EVENTS = ("connect", "checkout", "checkin", "invalidate", "soft_invalidate", "close", "detach")
_in_do_get: contextvars.ContextVar[bool] = contextvars.ContextVar("poolviz_sqla_in_do_get", default=False)


def attach(pool: Any, observer: PoolObserver) -> None:
    """Subscribe ``observer`` to ``pool``'s events and wrap the places that announce nothing."""
    for name in _EVENTS:
        event.listen(pool, name, _only_for(pool, getattr(observer, f"on_{name}")))
    queue = getattr(pool, "_pool", None)
    if isinstance(queue, sa_queue.Queue):
        queue.get = _threaded_get(queue, observer)  # type: ignore[method-assign]
    elif isinstance(queue, sa_queue.AsyncAdaptedQueue):
        queue.get = _asyncio_get(queue, observer)  # type: ignore[method-assign]
    pool._do_get = _do_get(pool._do_get, observer)
    pool._invoke_creator = _invoke_creator(pool._invoke_creator, observer)
    pool._do_return_conn = _closing_as(pool._do_return_conn, observer, "overflow")
    pool.dispose = _closing_as(pool.dispose, observer, "all")


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


def _threaded_get(queue: Any, observer: PoolObserver) -> Callable[..., Any]:
    original = queue.get

    @functools.wraps(original)
    def get(block: bool = True, timeout: float | None = None) -> Any:
        if not block:
            return original(block, timeout)
        # The queue's mutex is an RLock and its Condition.wait() releases it fully:
        # holding it across the call makes "empty, so this caller waits" exact.
        with queue.mutex:
            if queue._qsize():
                return original(block, timeout)
            observer.waits()
            try:
                return original(block, timeout)
            finally:
                observer.wait_over()

    return get


def _asyncio_get(queue: Any, observer: PoolObserver) -> Callable[..., Any]:
    original = queue.get

    @functools.wraps(original)
    def get(block: bool = True, timeout: float | None = None) -> Any:
        # One event loop: nothing runs between this check and the queue's own.
        if not block or queue._queue.qsize():
            return original(block, timeout)
        observer.waits()
        try:
            return original(block, timeout)
        finally:
            observer.wait_over()

    return get


def _do_get(original: Callable[[], Any], observer: PoolObserver) -> Callable[[], Any]:
    @functools.wraps(original)
    def do_get() -> Any:
        if _in_do_get.get():  # QueuePool._do_get calls itself again: the outer call reports
            return original()
        token = _in_do_get.set(True)
        # Connections closed while a record is fetched are closed for being over the
        # pool's size (SingletonThreadPool's clean-up of other threads' connections).
        closing = observer.closing("overflow")
        try:
            return original()
        except sa_exc.TimeoutError as error:
            observer.timed_out(error)
            raise
        finally:
            observer.closed(closing)
            _in_do_get.reset(token)

    return do_get


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
