"""Instrumenting a peewee pool that already exists, threaded or asyncio: in place, adopting what it holds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import checks
from .sites import check_sites


class Adoptable(NamedTuple):
    """What :func:`instrument_in_place` needs to know of one kind of pool."""

    #: The class a pool must be an instance of, and the error's text when it is not.
    needs: type
    needs_text: str
    #: The instrumented base class: a pool already one is left as it is.
    done: type
    #: The instrumented subclass of a pool's class.
    make: Callable[[type], type]
    #: Whether the class is swapped holding the pool's (threading) ``_pool_lock``.
    locked: bool


def instrument_in_place(db: Any, kind: Adoptable, event_capacity: Any, leak_threshold: Any, sites: Any = True) -> Any:
    """Make ``db`` an instance of ``kind.make(type(db))``, its instrumented subclass, and return it.

    ``db`` must be a ``kind.needs`` (else ``TypeError``); one already a
    ``kind.done`` is returned as it is. The settings are checked first, so a
    bad one leaves ``db`` as it was; then the class is swapped (under the pool
    lock of a threaded pool), the event log (and leak watch) set up, and the
    connections the pool already holds given serials, without events.
    """
    if not isinstance(db, kind.needs):
        raise TypeError(f"{kind.needs_text}, got {type(db).__module__}.{type(db).__qualname__}")
    if isinstance(db, kind.done):
        return db
    event_capacity = checks.count("event_capacity", event_capacity)
    leak_threshold = checks.leak_threshold(leak_threshold)
    sites = check_sites(sites)
    pool: Any = db
    with pool._pool_lock if kind.locked else contextlib.nullcontext():
        pool.__class__ = kind.make(type(pool))
        pool._pv_setup(event_capacity, leak_threshold, sites)
        pool._pv_adopt()
    return pool
