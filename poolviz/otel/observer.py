"""A pool's events published as OpenTelemetry metrics, read from its event log off the pool's path.

The pool is never asked for anything: :class:`PoolMetrics` keeps a cursor into
the pool's :class:`~poolviz.events.EventLog` and reads what is new (a *drain*)
when metrics are collected, and every ``drain_interval`` seconds on a thread of
its own so a long gap between collections neither loses events to the log's
capacity nor makes one collection do an hour's work. A drain records each
checkout's wait, each return's hold and each connect's time in the histograms
and counts the timeouts; the gauges (the connection counts, the waiting
requests) are the counts of the newest event, and the limits come from the
pool's settings as its log records them.

The SDK calls every observable callback of a collection before it reads any
instrument, and the connection count's callback (registered first) drains:
values drained during a collection are in that collection.

Instruments are made once per meter provider and shared by every pool
observed through it (the SDK keeps one instrument per name), each pool's
points told apart by their :data:`~poolviz.otel.names.POOL_NAME` attribute.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .. import checks
from ..events import EventLog
from ..pools import ACCEPTED, events_of, instrument
from . import names

logger = logging.getLogger(__name__)

METER_NAME = "poolviz.otel"
DEFAULT_DRAIN_INTERVAL_S = 1.0


class _Instruments:
    """One meter provider's instruments and the pools observed through it."""

    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter(METER_NAME, _version())
        self.observed: list[PoolMetrics] = []
        # Where a closed observer of a log stopped, by pool name: observing the same pool again
        # under the same name goes on from there, so the cumulative histograms count nothing twice.
        self.stopped_at: weakref.WeakKeyDictionary[EventLog, dict[str, int]] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

        def gauge(name: str, callback: Any) -> None:
            unit, description = names.METRICS[name]
            meter.create_observable_up_down_counter(name, [callback], unit=unit, description=description)

        def histogram(name: str) -> Any:
            unit, description = names.METRICS[name]
            return meter.create_histogram(
                name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(names.BUCKETS_S)
            )

        # The count first: its callback drains, before the SDK reads the histograms.
        gauge(names.COUNT, self._counts)
        gauge(names.MAX, self._setting("limit"))
        gauge(names.IDLE_MAX, self._setting("idle_max"))
        gauge(names.IDLE_MIN, self._setting("idle_min"))
        gauge(names.PENDING_REQUESTS, self._setting("pending"))
        unit, description = names.METRICS[names.TIMEOUTS]
        self.timeouts = meter.create_counter(names.TIMEOUTS, unit=unit, description=description)
        self.create_time = histogram(names.CREATE_TIME)
        self.wait_time = histogram(names.WAIT_TIME)
        self.use_time = histogram(names.USE_TIME)

    def pools(self) -> list[PoolMetrics]:
        with self.lock:
            return list(self.observed)

    def _counts(self, options: CallbackOptions) -> Iterator[Observation]:
        for pool in self.pools():
            try:
                pool.drain()
            except Exception:  # the other pools' points still go out; the next collection retries
                logger.exception("poolviz.otel: draining %s's events failed", pool.pool_name)
            in_use, idle, _waiting = pool.counts
            yield Observation(in_use, pool.used_attributes)
            yield Observation(idle, pool.idle_attributes)

    def _setting(self, what: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value, pool.attributes)
                for pool in self.pools()
                if (value := getattr(pool, what)()) is not None
            ]

        return callback


_providers: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()
_providers_lock = threading.Lock()
# The instruments made through OpenTelemetry's global provider. Made before the application
# sets one, they sit on its proxy, which hands them to the real provider once set: observing
# through the global provider afterwards must find them, not make the same names again (the SDK
# would keep the first instruments and drop the new callbacks).
_global: list[_Instruments] = []
_live: weakref.WeakSet[PoolMetrics] = weakref.WeakSet()


def _version() -> str | None:
    try:
        return importlib.metadata.version("poolviz")
    except importlib.metadata.PackageNotFoundError:
        return None


def _instruments_for(provider: metrics.MeterProvider | None) -> _Instruments:
    """The instruments made through ``provider`` (None: the global provider), made on first use."""
    with _providers_lock:
        current = metrics.get_meter_provider()
        if provider is None or (_global and provider is current):
            if not _global:
                _global.append(_providers.get(current) or _Instruments(current))
            _providers[current] = _global[0]
            return _global[0]
        found = _providers.get(provider)
        if found is None:
            found = _providers[provider] = _Instruments(provider)
        return found


class PoolMetrics:
    """What :func:`observe` returns: one pool published as OpenTelemetry metrics until :meth:`close`."""

    def __init__(self, log: EventLog, pool_name: str, instruments: _Instruments, drain_interval: float | None) -> None:
        self.log = log
        #: The ``db.client.connection.pool.name`` every point carries.
        self.pool_name = pool_name
        self.attributes = {names.POOL_NAME: pool_name}
        self.used_attributes = {**self.attributes, names.STATE: names.USED}
        self.idle_attributes = {**self.attributes, names.STATE: names.IDLE}
        #: ``(in_use, idle, waiting)`` after the newest event drained.
        self.counts: tuple[int, int, int] = (0, 0, 0)
        #: Events published so far, and events the log no longer held when a drain came for
        #: them (its capacity ran out between drains): those are in no metric.
        self.drained = 0
        self.lost = 0
        self.closed = False
        self._announced = False
        self._instruments = instruments
        self._drain_interval = drain_interval
        self._held: dict[int, float] = {}  # conn -> t of its checkout, to time a return the pool closes
        self._lock = threading.Lock()
        with instruments.lock:
            start = instruments.stopped_at.get(log, {}).get(pool_name, 0)
        self._cursor = log.cursor(start)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        last = log.last
        if last is not None:
            self.counts = (last.in_use, last.idle, last.waiting)
        with instruments.lock:
            taken = next((p for p in instruments.observed if p.pool_name == pool_name), None)
            if taken is not None:
                raise ValueError(
                    f"pool_name {pool_name!r} is already published through this meter provider (by {taken!r}): "
                    "pass another pool_name= to tell the pools apart, or close() the first"
                )
            instruments.observed.append(self)
        _live.add(self)
        self._start_thread()

    def _start_thread(self) -> None:
        if self._drain_interval is None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain_every, name="poolviz-otel-drain", daemon=True)
        self._thread.start()

    def _drain_every(self) -> None:
        interval = self._drain_interval
        while not self._stop.wait(interval):
            try:
                self.drain()
            except Exception:  # the app goes on; the next drain retries
                logger.exception("poolviz.otel: draining %s's events failed", self.pool_name)

    def drain(self) -> int:
        """Publish the events recorded since the last drain now; returns how many. Collections call it."""
        with self._lock:
            if self.closed:
                return 0
            if not self._announced:  # the timeouts' series exists from the first collection on, at zero
                self._announced = True
                self._instruments.timeouts.add(0, self.attributes)
            events, lost = self._cursor.read()
            self.lost += lost
            self.drained += len(events)
            if lost:
                self._held.clear()  # returns may have been lost with them
            if events:
                self._publish(events)
            return len(events)

    def _publish(self, events: list[Any]) -> None:
        inst, attributes, held = self._instruments, self.attributes, self._held
        wait_time, use_time, create_time = inst.wait_time.record, inst.use_time.record, inst.create_time.record
        for event in events:
            kind = event.kind
            if kind == "checkout":
                wait_time(event.wait_s, attributes)
                held[event.conn] = event.t
            elif kind == "checkin":
                held.pop(event.conn, None)
                use_time(event.duration_s, attributes)
            elif kind == "close":
                # A connection closed while held was returned and not kept (SQLAlchemy's
                # overflow, a null pool, a bad return, close_stale): its hold ends here.
                taken = held.pop(event.conn, None)
                if taken is not None:
                    use_time(max(0.0, event.t - taken), attributes)
            elif kind == "connect":
                create_time(event.duration_s, attributes)
            elif kind == "timeout":
                inst.timeouts.add(1, attributes)
            elif kind == "dispose":
                held.clear()
        last = events[-1]
        self.counts = (last.in_use, last.idle, last.waiting)

    def limit(self) -> int | None:
        """``db.client.connection.max``: the pool's limit (None: it has none)."""
        return _setting(self.log.meta, "max_connections")

    def idle_max(self) -> int | None:
        """``db.client.connection.idle.max``: the most idle connections the pool keeps (SQLAlchemy's ``pool_size``)."""
        meta = self.log.meta
        return _setting(meta, "pool_size", least=0) if meta.get("library") == "sqlalchemy" else None

    def idle_min(self) -> int | None:
        """``db.client.connection.idle.min``: psycopg_pool's ``min_size``, peewee asyncio's ``pool_min_size``."""
        meta = self.log.meta
        if meta.get("library") == "psycopg_pool":
            return _setting(meta, "min_size", least=0)
        if meta.get("backend") != "sqlite":  # peewee's asyncio SQLite pool ignores pool_min_size
            return _setting(meta, "pool_min_size", least=0)
        return None

    def pending(self) -> int:
        """``db.client.connection.pending_requests``: callers waiting for a connection now."""
        return self.counts[2]

    def close(self) -> None:
        """Publish what is left, then stop: the pool's points leave the next collections. Idempotent."""
        if self.closed:
            return
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.drain()
        with self._lock:
            self.closed = True
        inst = self._instruments
        with inst.lock:
            if self in inst.observed:
                inst.observed.remove(self)
            inst.stopped_at.setdefault(self.log, {})[self.pool_name] = self._cursor.next_seq

    def _after_fork_in_child(self) -> None:
        # The parent's drain thread did not come along, and it may have held these locks.
        self._lock = threading.Lock()
        self._cursor = self.log.cursor(self._cursor.next_seq)
        if not self.closed:
            self._start_thread()

    def __enter__(self) -> PoolMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "publishing"
        return f"<PoolMetrics {self.pool_name!r} {state}>"


def _setting(meta: dict[str, Any], key: str, least: int = 1) -> int | None:
    # A limit of 0 or None is no limit (peewee's max_connections); an idle bound may be 0.
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= least else None


def _after_fork_in_child() -> None:
    # A thread of the parent may have held any of these locks at the fork: the child gets new ones.
    global _providers_lock
    _providers_lock = threading.Lock()
    for instruments in [*_providers.values(), *_global]:
        instruments.lock = threading.Lock()
    for pool in list(_live):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def observe(
    pool: Any,
    meter_provider: metrics.MeterProvider | None = None,
    pool_name: str | None = None,
    *,
    drain_interval: float | None = DEFAULT_DRAIN_INTERVAL_S,
) -> PoolMetrics:
    """Publish ``pool``'s OpenTelemetry ``db.client.connection.*`` metrics until the result's ``close()``.

    ``pool`` is any pool poolviz instruments (a peewee pool or asyncio
    database, a SQLAlchemy ``Engine``, ``AsyncEngine`` or ``Pool``, a
    psycopg_pool pool), instrumented here if it is not yet, or an
    :class:`~poolviz.events.EventLog` (a recording's merged log, say).
    ``meter_provider`` defaults to OpenTelemetry's global one; ``pool_name``
    to ``server.address:server.port/db.namespace`` (see
    :mod:`poolviz.otel.names`). Events are read from the log when metrics are
    collected and every ``drain_interval`` seconds (None: only when
    collected), never on the pool's own path. SQLAlchemy's ``engine.dispose()``
    gives the engine a new pool: observe the engine again to follow it.
    """
    # Every argument is checked before the pool is touched: a bad one leaves it as it was.
    given_name = None if pool_name is None else names.checked_pool_name(pool_name)
    if meter_provider is not None and not isinstance(meter_provider, metrics.MeterProvider):
        raise TypeError(
            "meter_provider must be an OpenTelemetry MeterProvider (opentelemetry.sdk.metrics.MeterProvider) "
            f"or None for the global one, got {type(meter_provider).__module__}.{type(meter_provider).__qualname__}"
        )
    if drain_interval is not None:
        drain_interval = checks.seconds("drain_interval", drain_interval, positive=True)
    log = _log_of(pool)
    name = names.default_pool_name(pool, log) if given_name is None else given_name
    return PoolMetrics(log, name, _instruments_for(meter_provider), drain_interval)


def _log_of(pool: Any) -> EventLog:
    if isinstance(pool, EventLog):
        return pool
    try:
        return events_of(pool)
    except ValueError:
        instrument(pool)  # not instrumented yet (or a SQLAlchemy engine's new pool): from now on
        return events_of(pool)
    except TypeError:
        raise TypeError(
            f"observe() takes {ACCEPTED}, or an EventLog; got {type(pool).__module__}.{type(pool).__qualname__}"
        ) from None
