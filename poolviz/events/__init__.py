"""Events: the vocabulary every pool speaks (:mod:`.vocabulary`), the log that holds them (:mod:`.log`)
and many processes' logs merged on one clock (:mod:`.merge`).

This is the bottom of the core layer: it imports only the standard library.
"""

from __future__ import annotations

from .log import Cursor, EventLog, Listener, Subscription
from .vocabulary import CLOSE_REASONS, DEFAULT_CAPACITY, FIELDS, KINDS, NO_CONN, TIMEOUT_REASONS, Event

__all__ = [
    "CLOSE_REASONS",
    "DEFAULT_CAPACITY",
    "FIELDS",
    "KINDS",
    "NO_CONN",
    "Cursor",
    "Event",
    "EventLog",
    "Listener",
    "Subscription",
    "TIMEOUT_REASONS",
]
