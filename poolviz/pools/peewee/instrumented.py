"""The mixin that makes a peewee pool an instrumented one: set-up, and where peewee's own code is found.

``Instrumented`` = :class:`~poolviz.pool.operations.PoolOperations` (the
public operations) over :class:`~poolviz.pool.hooks.PoolHooks` (peewee's
hooks); this module gives them their state and finds the peewee
implementations they call.
"""

from __future__ import annotations

import functools
import itertools
from time import perf_counter
from typing import Any, ClassVar

from playhouse.pool import PooledDatabase

from ... import checks
from ...events import DEFAULT_CAPACITY, EventLog
from ..callers import ThreadNameCache
from ..sites import check_sites
from .delivery import wrap_database_lock
from .hooks import PoolHooks
from .operations import PoolOperations
from .tracker import CloseContext, Tracked


def _next_impl(cls: type, name: str, after: type = PoolHooks) -> Any:
    """The implementation of ``name`` that the mixin overrides in ``cls`` (what ``super()`` finds).

    Looked up once per class so the hot path calls it without building a
    ``super()`` object (``after``: the class to look past). For peewee's own ``@locked`` methods it is the body
    without the lock: the mixin already holds the pool lock around those
    calls, so taking the reentrant lock a second time would only cost time.
    """
    mro = cls.__mro__
    for klass in mro[mro.index(after) + 1 :]:
        if name in klass.__dict__:
            impl = klass.__dict__[name]
            if klass is PooledDatabase and name in ("_connect", "_close"):
                impl = getattr(impl, "__wrapped__", None) or impl
            return impl
    raise AttributeError(name)


class Instrumented(PoolOperations):
    """Hook-only mixin that records an event for every transition of a peewee pool.

    Put it first among the bases of a ``PooledDatabase`` subclass, as the
    public classes do, or let :func:`poolviz.instrument` do it for an
    existing pool. Beyond peewee's settings: ``event_capacity``,
    ``leak_threshold`` and ``sites`` (each checkout's site in its ``message``,
    :mod:`poolviz.pools.sites`; on unless ``False``).
    """

    # poolviz's own classes refuse settings that mislead (see checks.pool_args);
    # pools passed through instrument() keep whatever peewee accepted.
    _pv_validates = False
    # Driver keyword arguments whose default differs from peewee's (see each class).
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Stored as staticmethods and called as impl(self, ...).
        next_open = _next_impl(cls, "connect")
        cls._pv_next_open = staticmethod(next_open)
        # When peewee's own connect() is next, PoolHooks.connect does its work itself and calls the one after.
        own = next_open is PooledDatabase.__dict__["connect"]
        cls._pv_base_open = staticmethod(_next_impl(cls, "connect", after=PooledDatabase)) if own else None
        cls._pv_next_connect = staticmethod(_next_impl(cls, "_connect"))
        cls._pv_next_close = staticmethod(_next_impl(cls, "_close"))
        cls._pv_next_is_stale = staticmethod(_next_impl(cls, "_is_stale"))

    def __init__(
        self,
        database: Any,
        max_connections: int | None = 20,
        stale_timeout: float | None = None,
        timeout: float | None = None,
        *,
        event_capacity: int = DEFAULT_CAPACITY,
        leak_threshold: float | None = None,
        sites: bool = True,
        **kwargs: Any,
    ) -> None:
        max_connections, stale_timeout, timeout = checks.pool_args(max_connections, stale_timeout, timeout)
        leak_threshold = checks.leak_threshold(leak_threshold)
        sites = check_sites(sites)
        event_capacity = checks.count("event_capacity", event_capacity)
        kwargs = {**self._pv_driver_defaults, **kwargs}
        super().__init__(  # type: ignore[call-arg]
            database,
            max_connections=max_connections,
            stale_timeout=stale_timeout,
            timeout=timeout,
            **kwargs,
        )
        self._pv_setup(event_capacity, leak_threshold, sites)

    def init(
        self,
        database: Any,
        max_connections: int | None = None,
        stale_timeout: float | None = None,
        timeout: float | None = None,
        **connect_kwargs: Any,
    ) -> None:
        if self._pv_validates:
            max_connections, stale_timeout, timeout = checks.pool_args(max_connections, stale_timeout, timeout)
        super().init(  # type: ignore[misc]
            database,
            max_connections=max_connections,
            stale_timeout=stale_timeout,
            timeout=timeout,
            **connect_kwargs,
        )
        if hasattr(self, "events"):
            self._pv_describe()

    def _pv_setup(self, event_capacity: int, leak_threshold: float | None, sites: bool = True) -> None:
        self.events = EventLog(event_capacity, lock=self._pool_lock)
        self.events.on_listening = self._pv_on_listening
        # The plain path appends to the log's tail itself (see EventLog.append).
        self._pv_append = self.events.append
        self._pv_tail = self.events.tail
        self._pv_listening = False
        self._pv_plain = True
        self._pv_resync = False
        self.leak_threshold = leak_threshold
        # Whether each checkout records its site (poolviz.pools.sites).
        self._pv_sites = sites
        self._pv_watchdog = None
        self._pv_name = ThreadNameCache()
        self._pv_close = CloseContext()
        self._pv_conns = {}
        self._pv_serial = itertools.count(1)
        # Callers now waiting for a free slot: thread ident -> when they began.
        self._pv_waiters = {}
        # Set by resize() while connections in use are over a lowered limit.
        self._pv_over_limit = False
        self._pv_replan()
        self._pv_describe()

    def _pv_settings(self) -> dict[str, Any]:
        return {
            "max_connections": self._max_connections,
            "stale_timeout": self._stale_timeout,
            "timeout": self._wait_timeout,
        }

    def _pv_on_listening(self, listening: bool) -> None:
        # Called by the event log, under the pool lock, when its first listener
        # arrives or its last one leaves.
        self._pv_listening = listening
        self._pv_replan()
        wrap_database_lock(self, listening)

    @property
    def max_connections(self) -> int | None:
        """The pool's limit (``None`` or 0: unlimited, as peewee reads it)."""
        return self._max_connections

    def _pv_adopt(self) -> None:
        # instrument() on a pool already in use: give its connections serials, silently.
        now = perf_counter()
        for _ts, _counter, conn in self._connections:
            self._pv_conns[id(conn)] = Tracked(conn, next(self._pv_serial), now, None)
        for pool_conn in self._in_use.values():
            conn = pool_conn.connection
            self._pv_conns[id(conn)] = Tracked(conn, next(self._pv_serial), now, now)
        self.events.assume_counts(len(self._in_use), len(self._connections))


@functools.cache
def instrumented_class(cls: type) -> type:
    """The instrumented subclass of a ``PooledDatabase`` class (made once per class)."""
    return type(f"Instrumented{cls.__name__}", (Instrumented, cls), {"__module__": cls.__module__})
