"""Delivering events to listeners only once the pool's locks are released.

A listener is user code: called under the pool lock it would stall every
other caller's checkout, and one that queried the database would deadlock.
So the pools record under their locks and deliver afterwards, in the thread
that caused the events (see ``EventLog.flush``).
"""

from __future__ import annotations

from threading import get_ident
from typing import Any

from ...events import EventLog


class DeliveringLock:
    """peewee's database lock, wrapped while anyone listens: events recorded inside are delivered on release.

    peewee holds this lock (not reentrant) around ``_connect`` and ``_close``.
    The wrapper shares the same underlying lock, so swapping it in and out
    while others hold it is safe.
    """

    __slots__ = ("_events", "lock", "owner")

    def __init__(self, lock: Any, events: EventLog) -> None:
        self.lock = lock
        self.owner: int | None = None
        self._events = events

    def __enter__(self) -> DeliveringLock:
        self.lock.__enter__()
        self.owner = get_ident()
        return self

    def __exit__(self, *exc: object) -> None:
        self.owner = None
        self.lock.__exit__(*exc)
        # peewee never takes this lock while holding the pool lock.
        self._events.flush()

    def locked(self) -> bool:
        """Whether the wrapped lock is held, like ``threading.Lock.locked()``."""
        return bool(self.lock.locked())


def wrap_database_lock(db: Any, listening: bool) -> None:
    """Wrap ``db._lock`` while ``listening`` (so a pool nobody listens to pays nothing), unwrap after."""
    lock = db._lock
    if listening and not isinstance(lock, DeliveringLock):
        db._lock = DeliveringLock(lock, db.events)
    elif not listening and isinstance(lock, DeliveringLock):
        db._lock = lock.lock


def deliver(db: Any) -> None:
    """Deliver this thread's pending events, unless it is still inside a pool operation.

    Inside means: within an instrumented method that closes connections on
    purpose (``close_all`` calls ``close_idle`` with the pool lock held: its
    events wait for ``close_all``), or holding peewee's database lock
    (``connect()`` and ``close()`` hold it around ``_connect`` and ``_close``:
    its release delivers them instead).
    """
    events = db.events
    if events.has_listeners and db._pv_close.scope is None and getattr(db._lock, "owner", None) != get_ident():
        events.flush()
