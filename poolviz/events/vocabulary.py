"""The event vocabulary and the event record: what every pool transition is called and carries.

Every pool transition is one :class:`Event`. The kinds, and what each one's
fields mean, are defined here and nowhere else:

============  =================================================================
kind          meaning and payload
============  =================================================================
``connect``   a new driver connection was opened. ``conn`` is its new serial,
              ``duration_s`` how long opening it took.
``checkout``  a caller got a connection. ``wait_s`` is how long it waited for a
              free slot (0.0 when it did not wait), ``reused`` is True when the
              connection came from the idle heap rather than being just opened.
``checkin``   a caller returned its connection and the pool kept it idle.
              ``duration_s`` is how long it was held.
``wait``      a caller found the pool full (``max_connections`` in use) and
              starts waiting. Recorded once per waiting caller.
``timeout``   ``MaxConnectionsExceeded`` was raised to a caller. ``wait_s`` is
              how long it waited (0.0 when the pool was built with
              ``timeout=None`` and so fails at once).
``close``     a driver connection left the pool for good. ``reason`` says why
              (see :data:`CLOSE_REASONS`), ``duration_s`` is its age.
``error``     opening a driver connection failed. ``reason`` is the exception's
              type name, ``message`` its text with credentials masked.
``leak``      (only with ``leak_threshold``) a connection has been held longer
              than the threshold. ``thread`` is the holder, ``message`` where it
              was checked out, ``duration_s`` how long it has been held,
              ``reason`` ``held`` or ``thread_exited`` (its holder is gone and
              will never return it).
``unleak``    a connection reported as leaked came back (check-in or close);
              ``duration_s`` is how long it was held in all.
``dispose``   ``dispose()`` made the pool forget every connection without
              closing it (after ``fork()`` the parent owns them); no ``close``
              events follow for them, and the counts drop to zero.
============  =================================================================

Close reasons: ``stale`` (older than ``stale_timeout``, found at checkout or
check-in), ``broken`` (found dead at checkout and discarded: peewee drops such
a connection without closing it, poolviz records it anyway), ``not_reusable``
(the driver said it cannot be reused at check-in), ``idle`` (``close_idle()``),
``manual`` (``manual_close()``), ``all`` (``close_all()``) and ``stale_in_use``
(``close_stale()``, which closes connections still checked out).

Every event also carries ``seq`` (gap-free within a log), ``t`` (seconds on a
monotonic clock since the log started), ``conn`` (poolviz's serial for the
driver connection, never reused; 0 when the event concerns none), ``thread``
(the caller's thread name) and the pool's counts right after the event:
``in_use``, ``idle`` and ``waiting``.

"""

from __future__ import annotations

from typing import NamedTuple

KINDS = ("connect", "checkout", "checkin", "wait", "timeout", "close", "error", "leak", "unleak", "dispose")
CLOSE_REASONS = ("stale", "broken", "not_reusable", "idle", "manual", "all", "stale_in_use")
NO_CONN = 0
DEFAULT_CAPACITY = 1_000_000


class Event(NamedTuple):
    """One pool transition. See the module docstring for each field's meaning per kind."""

    seq: int
    t: float
    kind: str
    conn: int
    thread: str
    wait_s: float
    duration_s: float
    reused: bool
    reason: str
    message: str
    in_use: int
    idle: int
    waiting: int


FIELDS: tuple[str, ...] = Event._fields
