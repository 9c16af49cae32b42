"""psycopg_pool's pools, instrumented in place: ``ConnectionPool``, ``AsyncConnectionPool`` and their null pools.

``instrument_psycopg(pool)`` takes a pool already built, possibly open and in
use, and returns it; its :class:`~poolviz.events.EventLog` is
``pool._poolviz_events``. The pool's class is swapped for a subclass (same
name and module) whose overrides run psycopg_pool's own code and only record
what it did (:mod:`.hooks`, :mod:`.hooks_async`, both deciding through
:mod:`.recorder`), so the pool serves, queues, times out, checks, resets and
closes exactly as before.

How psycopg_pool's transitions read in poolviz's vocabulary
(:mod:`poolviz.events.vocabulary`):

- ``connect``: every connection psycopg_pool opens, recorded when it lands in
  the pool (or, in a null pool, is handed to its caller): the ``min_size``
  fill, growth and replacements come from the pool's worker, so ``thread`` is
  the worker's name (``pool-1-worker-0``); ``duration_s`` is the time to open
  and configure it. ``error``: opening or ``configure`` failed (message masked).
- ``wait``: a caller joined psycopg_pool's first-come-first-served queue;
  ``checkout`` when ``getconn()`` returns (``wait_s`` from the wait, ``reused``
  once the connection was checked out before); ``timeout`` on ``PoolTimeout``,
  reason ``refused`` on ``TooManyRequests`` (``max_waiting``), and for a
  waiting caller that leaves otherwise, ``closed`` (``PoolClosed``) or
  ``cancelled``.
- ``checkin``: a returned connection is back in the pool or handed straight to
  the next waiter (``duration_s``: held until ``putconn()``). With a ``reset``
  callback psycopg_pool returns it in a worker, so the checkin comes later.
- ``close`` reasons: ``stale`` (``max_lifetime``, at its return or in
  ``check()``), ``idle`` (shrunk after ``max_idle``), ``broken`` (dead at its
  return, or failing ``check()`` / the ``check`` callback: psycopg_pool drops
  it unclosed), ``not_reusable`` (the rollback or ``reset`` at its return
  failed, or it came back mid-query), ``all`` (``close()``, ``drain()``, or
  returned to a closed or drained pool), ``overflow`` (a null pool closing a
  returned connection nobody waits for: its steady size is 0).

Counts on every event are psycopg_pool's ``get_stats()`` at that moment (see
:mod:`.recorder`): ``in_use`` is ``pool_size - pool_available``, so it includes
connections being opened or returned, and after ``close()`` it keeps the
``pool_size`` psycopg_pool keeps. Not recorded: ``check()`` taking idle
connections out while it tests them (psycopg_pool counts them as not available
meanwhile; the next event shows it), and a failed reconnection lowering
``pool_size``. ``leak_threshold`` reports connections held too long (:mod:`.leaks`), and
each checkout's ``message`` is its site (:mod:`poolviz.pools.sites`).
:mod:`.testing` has the helpers the tests use to hold the pools to this.
"""

from __future__ import annotations

from .instrument import describe, instrument_psycopg, instrumented_class, is_instrumented, is_psycopg_pool

__all__ = ["describe", "instrument_psycopg", "instrumented_class", "is_instrumented", "is_psycopg_pool"]
