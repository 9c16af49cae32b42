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
              ``message`` is its *site*: where the application asked,
              ``path.py:LINE in function``, the first frame outside the pool
              libraries (see :mod:`poolviz.pools.sites`); ``""`` when none is
              the application's or the pool was instrumented with ``sites=False``.
``checkin``   a caller returned its connection and the pool kept it idle.
              ``duration_s`` is how long it was held.
``wait``      a caller found the pool full (``max_connections`` in use) and
              starts waiting. Recorded once per waiting caller.
``timeout``   the pool gave up on a caller (peewee's ``MaxConnectionsExceeded``,
              SQLAlchemy's ``TimeoutError``, psycopg_pool's ``PoolTimeout``).
              ``wait_s`` is how long it waited (0.0 when it failed at once).
              ``reason`` is ``""`` (waited and timed out), ``refused``
              (psycopg_pool's ``max_waiting`` reached: ``TooManyRequests``),
              ``cancelled`` (a waiting task was cancelled) or ``closed`` (the
              pool was closed under a waiting caller).
``close``     a driver connection left the pool for good. ``reason`` says why
              (see :data:`CLOSE_REASONS`), ``duration_s`` is its age.
``error``     opening a driver connection failed. ``reason`` is the exception's
              type name, ``message`` its text with credentials masked.
``leak``      (only with ``leak_threshold``) a connection has been held longer
              than the threshold. ``thread`` is the holder, ``message`` where it
              was checked out: its stack, innermost first, `` < ``-joined
              application frames, the first being the checkout's site;
              ``duration_s`` how long it has been held,
              ``reason`` ``held`` or ``thread_exited`` (its holder is gone and
              will never return it).
``unleak``    a connection reported as leaked came back (check-in or close);
              ``duration_s`` is how long it was held in all, ``message`` the
              leak's stack.
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

The other pool libraries speak the same words, with three more where they have
a transition peewee lacks: ``overflow`` (a connection beyond the pool's steady
size closed on return: SQLAlchemy's overflow, ``NullPool`` and psycopg_pool's
null pool, which keep none), ``invalidated`` (invalidated on purpose:
SQLAlchemy's ``invalidate()`` without an error, a soft invalidation, a
pool-wide invalidation) and ``detached`` (SQLAlchemy's ``detach()``: it left the
pool still open). The rest map onto peewee's: an age limit (SQLAlchemy's
``pool_recycle``, psycopg_pool's ``max_lifetime``) is ``stale``; found dead
(a failed pre-ping or ``check()``, a disconnect) is ``broken``; a failed reset
on return is ``not_reusable``; ``max_idle`` is ``idle``; ``close()`` and
``dispose()`` are ``all``. psycopg_pool's background connects (its ``min_size``
fill, replacements) are ``connect`` events on its worker threads, and its
``in_use`` is ``pool_size - pool_available`` as its ``get_stats()`` counts it
(connections being opened or returned included).

Every event also carries ``seq`` (gap-free within a log), ``t`` (seconds on a
monotonic clock since the log started), ``conn`` (poolviz's serial for the
driver connection, never reused; 0 when the event concerns none), ``thread``
(the caller's thread name) and the pool's counts right after the event:
``in_use``, ``idle`` and ``waiting``.

An events frame (:meth:`EventLog.to_frame <poolviz.events.EventLog.to_frame>`)
adds a ``site`` column worked out from the events, not recorded: a checkout's
site, and for a ``checkin``, ``leak``, ``unleak`` or ``close`` of a connection
still held, the site of its latest checkout (``""`` otherwise).

"""

from __future__ import annotations

from typing import NamedTuple

KINDS = ("connect", "checkout", "checkin", "wait", "timeout", "close", "error", "leak", "unleak", "dispose")
CLOSE_REASONS = (
    "stale",
    "broken",
    "not_reusable",
    "idle",
    "manual",
    "all",
    "stale_in_use",
    "overflow",
    "invalidated",
    "detached",
)
TIMEOUT_REASONS = ("", "refused", "cancelled", "closed")
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
