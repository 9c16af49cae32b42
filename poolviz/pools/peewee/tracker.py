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
        self.holder: Any = None  # the holding thread
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

    def reason(self, checking_in: bool) -> str:
        """Why a connection is being closed now; ``checking_in``: it was in use and peewee has just taken it back.

        Consumes the stale mark.
        """
        if self.stale:
            self.stale = False
            return "stale"
        if self.scope is not None:
            return self.scope
        if checking_in:
            # Checked in, not stale, not closed on purpose, and still closed: the driver said it cannot be reused.
            return "not_reusable"
        return "manual"
