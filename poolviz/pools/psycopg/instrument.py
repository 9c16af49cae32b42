"""Instrumenting a psycopg_pool pool in place: its class swapped for a cached subclass carrying the hooks."""

from __future__ import annotations

import functools
import itertools
import threading
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool, AsyncNullConnectionPool, ConnectionPool, NullConnectionPool

from ... import checks
from ...credentials import mask_text, secrets_of
from ...events import DEFAULT_CAPACITY, EventLog
from ..sites import check_sites
from .fast import install_busy_path
from .hooks import Hooks, NullHooks
from .hooks_async import AsyncHooks, AsyncNullHooks
from .leaks import watchdog_for
from .recorder import HOOKED

P = TypeVar("P")

ACCEPTED = "a psycopg_pool ConnectionPool, AsyncConnectionPool, NullConnectionPool or AsyncNullConnectionPool"


def is_psycopg_pool(target: object) -> bool:
    """Whether ``target`` is a psycopg_pool pool, threaded or asyncio."""
    return isinstance(target, (ConnectionPool, AsyncConnectionPool))


def is_instrumented(target: object) -> bool:
    """True for a psycopg_pool pool passed through :func:`instrument_psycopg`."""
    return bool(getattr(type(target), "_pv_instrumented", False))


def _hooks_for(cls: type) -> type:
    if issubclass(cls, AsyncNullConnectionPool):
        return AsyncNullHooks
    if issubclass(cls, AsyncConnectionPool):
        return AsyncHooks
    if issubclass(cls, NullConnectionPool):
        return NullHooks
    return Hooks


@functools.cache
def instrumented_class(cls: type, checks_connections: bool = True) -> type:
    """The instrumented subclass of a psycopg_pool pool class (made once per class).

    It keeps the class's name, qualified name and module, so ``repr(pool)`` and
    psycopg_pool's own messages read as before. Its only base is ``cls``: the
    hooks' methods are copied in, not inherited, because CPython lets an object
    change class only to one of the same layout, and no one mixin base keeps
    it for every pool (a plain one breaks it for ``ConnectionPool``, whose first
    base is ``Generic``; a ``Generic`` one for the null pools). So the hooks
    call psycopg_pool's methods as ``_pv_next_<name>``.
    ``checks_connections=False`` (a pool without a ``check`` callback) leaves
    ``_check_connection`` alone: it does nothing then, and getconn() skips one call.
    """
    namespace: dict[str, Any] = {}
    for klass in reversed(_hooks_for(cls).__mro__[:-1]):  # Recorder first, object left out
        namespace.update((k, v) for k, v in vars(klass).items() if not (k.startswith("__") and k.endswith("__")))
    if not checks_connections:
        del namespace["_check_connection"]
    for name in HOOKED:
        namespace[f"_pv_next_{name}"] = staticmethod(getattr(cls, name))
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__, __doc__=cls.__doc__)
    namespace["_pv_instrumented"] = True
    return type(cls.__name__, (cls,), namespace)


def instrument_psycopg(
    pool: P, *, event_capacity: int = DEFAULT_CAPACITY, leak_threshold: float | None = None, sites: bool = True
) -> P:
    """Instrument a psycopg_pool pool in place and return it; its events are in ``pool._poolviz_events``.

    Takes the pool as built and possibly open: the connections it holds idle
    get serials without events, and one checked out now is tracked once it is
    returned. Instrumenting twice is harmless. The pool behaves as before
    (see :mod:`poolviz.pools.psycopg`). With ``leak_threshold`` (seconds), a
    connection held longer is reported by a ``leak`` event while still held
    (the watchdog of :mod:`poolviz.pools.leaks`), and ``unleak`` when it comes back.
    Each checkout records its site in ``message`` (:mod:`poolviz.pools.sites`) unless ``sites=False``.
    """
    if not is_psycopg_pool(pool):
        raise TypeError(f"instrument_psycopg() needs {ACCEPTED}, got {type(pool).__module__}.{type(pool).__qualname__}")
    if is_instrumented(pool):
        return pool
    leak_threshold = checks.leak_threshold(leak_threshold)
    event_capacity = checks.count("event_capacity", event_capacity)
    sites = check_sites(sites)
    target: Any = pool
    if target._opened and target._closed:
        raise ValueError(
            f"cannot instrument {target!r}: it is closed, and psycopg_pool does not reopen a closed pool; "
            "instrument a pool before closing it"
        )
    asyncio_pool = isinstance(pool, AsyncConnectionPool)
    # The threaded pool's lock is an RLock made in __init__: the log shares it, so
    # an event and psycopg_pool's state are read under one lock. The asyncio
    # pool's lock is an asyncio.Lock: its log keeps a threading lock of its own.
    log = EventLog(event_capacity, lock=threading.RLock() if asyncio_pool else target._lock)
    with log.lock:
        target.__class__ = instrumented_class(type(target), target._check is not None)  # type: ignore[arg-type]
        target._pv_conns = {}
        target._pv_waiters = {}
        target._pv_retrying = set()
        target._pv_serial = itertools.count(1)
        target._pv_secrets = _secrets(target)
        target._pv_record = log.record
        target._pv_write = log.write
        target._pv_tail = log.tail
        target._pv_append = log.append
        target._poolviz_events = log
        log.on_listening = target._pv_on_listening
        target._pv_adopt()
        target._pv_leak_threshold = leak_threshold
        target._pv_sites = sites
        target._pv_local = threading.local()  # each thread's site, noted before psycopg_pool's lock
        if leak_threshold is not None:
            target._pv_watchdog = watchdog_for(target, asyncio_pool)
        elif _hooks_for(type(target).__mro__[1]) in (Hooks, AsyncHooks):
            install_busy_path(target, asyncio=asyncio_pool)
        log.meta.update(describe(target), leak_threshold=leak_threshold)
    return pool


def _secrets(pool: Any) -> tuple[str, ...]:
    kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
    return secrets_of(kwargs)


def describe(pool: Any) -> dict[str, Any]:
    """What a trace records of the pool: its library, class and settings, the connection string masked."""
    cls = next(klass for klass in type(pool).__mro__ if klass.__module__.startswith("psycopg_pool"))
    conninfo = pool.conninfo
    shown = mask_text(conninfo, _secrets(pool)) if isinstance(conninfo, str) else "(callable)"
    meta: dict[str, Any] = {
        "library": "psycopg_pool",
        "pool": type(pool).__name__,
        "pool_class": f"{cls.__module__.split('.')[0]}.{cls.__name__}",
        "name": pool.name,
        "backend": "postgresql",
        "min_size": pool.min_size,
        "max_size": pool.max_size,
        "max_connections": pool.max_size,
        "max_waiting": pool.max_waiting,
        "max_lifetime": pool.max_lifetime,
        "max_idle": pool.max_idle,
        "timeout": pool.timeout,
        "conninfo": shown,
    }
    if "://" in shown:
        meta["url"] = shown
    return meta
