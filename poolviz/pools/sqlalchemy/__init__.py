"""SQLAlchemy's pools, instrumented in place: every pool class it ships, threaded or asyncio, same events as peewee's.

``instrument_sqlalchemy(engine_or_pool)`` takes an ``Engine``, an
``AsyncEngine`` or a ``Pool`` (``QueuePool``, ``AsyncAdaptedQueuePool``,
``SingletonThreadPool``, ``StaticPool``, ``NullPool``, ``AssertionPool``, your
subclasses), already built and possibly in use, and returns it. The pool
behaves exactly as before: :mod:`.wiring` only listens and wraps.

How SQLAlchemy's transitions read in poolviz's vocabulary (see
:mod:`poolviz.events.vocabulary`):

- an overflow connection (beyond ``pool_size``) closed on return: ``close``,
  reason ``overflow``; ``NullPool`` closes every connection on return the same
  way (its steady size is 0);
- ``invalidate()``: ``close`` with reason ``broken`` when SQLAlchemy found the
  connection dead (a disconnect, a failed pre-ping), ``invalidated`` when it was
  invalidated on purpose (by hand, a soft invalidation, or the pool-wide
  invalidation after a disconnect); ``pool_recycle``: ``stale``;
  ``detach()``: ``detached``; ``dispose()``: ``all``;
- a caller blocked because ``pool_size + max_overflow`` are out: ``wait``, then
  ``checkout`` with its ``wait_s``, or ``timeout`` when SQLAlchemy raises
  ``TimeoutError`` ("QueuePool limit of size 5 overflow 10 reached");
- with ``leak_threshold``, ``leak`` and ``unleak`` as for every pool (:mod:`.leaks`).
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, QueuePool

from ...checks import leak_threshold as check_leak_threshold
from ...credentials import mask_url
from ...events import DEFAULT_CAPACITY, EventLog
from ..sites import check_sites
from .observer import PoolObserver
from .wiring import attach, records_in

# The pool each instrumented engine had: engine.dispose() swaps in a new one.
_instrumented_pool_of: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def is_sqlalchemy_target(target: object) -> bool:
    """Whether ``target`` is a SQLAlchemy ``Engine``, ``AsyncEngine`` or ``Pool``."""
    return isinstance(target, (Engine, Pool)) or isinstance(getattr(target, "sync_engine", None), Engine)


def instrument_sqlalchemy(
    target: Any, *, event_capacity: int = DEFAULT_CAPACITY, leak_threshold: float | None = None, sites: bool = True
) -> Any:
    """Instrument ``target``'s pool in place (an Engine, AsyncEngine or Pool) and return ``target``.

    ``leak_threshold`` (seconds): a connection held longer gets a ``leak`` event while still held, and
    ``unleak`` when it comes back (the watchdog of :mod:`poolviz.pools.leaks`: a thread, or the event loop
    for an ``AsyncEngine``). Each checkout records its site (:mod:`poolviz.pools.sites`) unless ``sites=False``.
    Settings apply when the pool is first instrumented; instrumenting again changes nothing.
    """
    leak_threshold = check_leak_threshold(leak_threshold)
    sites = check_sites(sites)
    engine = _engine_of(target)
    pool = engine.pool if engine is not None else target
    if not isinstance(pool, Pool):
        raise TypeError(f"expected a SQLAlchemy Engine, AsyncEngine or Pool, got {type(target).__name__}")
    if getattr(pool, "_poolviz_events", None) is None:
        events = EventLog(capacity=event_capacity)  # its own RLock: readers such as to_frame() take it twice
        observer = PoolObserver(pool, events, sites=sites, leak_threshold=leak_threshold)
        checked_out = pool.checkedout() if isinstance(pool, QueuePool) else 0
        observer.adopt(records_in(pool), checked_out)
        attach(pool, observer)
        events.meta.update(_describe(pool, engine), leak_threshold=leak_threshold)
        instrumented: Any = pool
        instrumented._poolviz_events = events
        instrumented._poolviz_observer = observer
    if engine is not None:
        _instrumented_pool_of[engine] = pool
    return target


def sqlalchemy_events(target: Any) -> EventLog | None:
    """The EventLog of an instrumented SQLAlchemy target, None if it was never instrumented.

    Raises ``ValueError`` for an engine whose instrumented pool was replaced
    (``engine.dispose()``): the old pool's events are kept, on the old pool.
    """
    engine = _engine_of(target)
    pool = engine.pool if engine is not None else target
    events: EventLog | None = getattr(pool, "_poolviz_events", None)
    if events is None and engine is not None and engine in _instrumented_pool_of:
        old = _instrumented_pool_of[engine]
        kept = len(old._poolviz_events)
        raise ValueError(
            f"this engine's pool was replaced (engine.dispose() makes a new one): poolviz instrumented the old "
            f"{type(old).__name__}, whose {kept} events are kept (poolviz.events_of(old_pool)); call "
            "poolviz.instrument(engine) again to follow the new pool"
        )
    return events


def _engine_of(target: Any) -> Engine | None:
    if isinstance(target, Engine):
        return target
    sync_engine = getattr(target, "sync_engine", None)  # an AsyncEngine
    return sync_engine if isinstance(sync_engine, Engine) else None


def _describe(pool: Any, engine: Engine | None) -> dict[str, Any]:
    """What the trace records of the pool: its library, class and settings (the URL with its password masked)."""
    meta: dict[str, Any] = {"library": "sqlalchemy", "pool": type(pool).__name__}
    if isinstance(pool, QueuePool):
        overflow = pool._max_overflow
        meta.update(
            pool_size=pool.size(),
            max_overflow=overflow,
            max_connections=None if overflow < 0 else pool.size() + overflow,
            timeout=pool.timeout(),
            use_lifo=bool(getattr(pool._pool, "use_lifo", False)),
        )
    meta.update(pre_ping=bool(pool._pre_ping), recycle=None if pool._recycle < 0 else pool._recycle)
    if engine is not None:
        name = engine.dialect.name
        meta["backend"] = {"mariadb": "mysql", "postgres": "postgresql"}.get(name, name)
        meta["url"] = mask_url(engine.url.render_as_string(hide_password=True))
    return meta


__all__ = ["instrument_sqlalchemy", "is_sqlalchemy_target", "sqlalchemy_events"]
