"""What poolviz knows of each driver connection, and the one rule that names why a connection closed."""

from __future__ import annotations

import threading
from typing import Any


class Tracked:
    """One driver connection the pool has opened, keyed in the pool by ``id(conn)``."""

    # Holding the connection keeps its id() from being reused while it is tracked,
    # even after peewee has dropped it (a dead connection discarded at checkout).
    __slots__ = ("checked_out", "conn", "holder", "leaked", "opened", "origin", "serial")

    def __init__(self, conn: Any, serial: int, opened: float, checked_out: float | None) -> None:
        self.conn = conn
        self.serial = serial
        self.opened = opened
        #: perf_counter() of the checkout, None while idle.
        self.checked_out = checked_out
        # Filled in only when leak detection is on.
        self.holder: threading.Thread | None = None
        self.origin = ""
        self.leaked = False


class CloseContext(threading.local):
    """What this thread is doing when peewee closes a driver connection; :meth:`reason` decides the why.

    peewee closes connections through one hook, ``_close_raw(conn)``, which
    does not say why. The instrumented methods that can lead there note the
    circumstance here first (the class attributes are each thread's starting
    values), and :meth:`reason` turns it into one of ``CLOSE_REASONS``.
    """

    #: ``_is_stale`` just answered yes: the next close is for age.
    stale = False
    #: A public method is closing connections on purpose: ``idle``, ``manual``,
    #: ``all`` or ``stale_in_use``.
    scope: str | None = None

    def reason(self, conn: Any, checking_in: int | None) -> str:
        """Why ``conn`` is being closed now; ``checking_in`` is the ``id()`` being checked in, if any.

        The pool keeps ``checking_in`` itself (set under its lock, so one
        attribute serves every thread) to keep the check-in path cheap.
        Consumes the stale mark.
        """
        if self.stale:
            self.stale = False
            return "stale"
        if checking_in == id(conn):
            # Checked in, not stale, and still closed: the driver said it cannot be reused.
            return "not_reusable"
        return self.scope or "manual"
