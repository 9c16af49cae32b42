"""The one way peewee's pools, threaded and asyncio, record an event off their hot path.

Both call ``self._pv_event(kind, serial, extra, now, thread, change)``; they
differ only in where the counts come from, which each says in
``_pv_full_counts()``: the asyncio pools read them from the driver at every
event; the threaded pools keep none on their hot path and record the change
the event makes (see :data:`poolviz.events.store.DELTAS`), except after a
change no event showed, when they record the counts in full.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ..backends import backend_of
from ..events import NO_CONN, EventLog
from ..events.store import SAME


class EventRecorder:
    """Mixin: :meth:`_pv_event`, over the pool's ``events`` log."""

    events: EventLog

    def _pv_full_counts(self) -> tuple[int, int, int] | None:
        """``(in_use, idle, waiting)`` to record with the next event, or None to record its change instead."""
        raise NotImplementedError

    def _pv_caller_name(self) -> str:
        """The name of the thread or task recording now."""
        raise NotImplementedError

    def _pv_settings(self) -> dict[str, Any]:
        """The pool's own settings, as its trace records them (``max_connections``, ``timeout``, ...)."""
        raise NotImplementedError

    def _pv_describe(self) -> None:
        """Record in the log's meta what the trace came from: the library, the pool class, backend and settings."""
        self.events.meta.update(
            library="peewee", pool=type(self).__name__, backend=backend_of(self), **self._pv_settings()
        )

    def _pv_event(
        self,
        kind: str,
        serial: int = NO_CONN,
        extra: Any = None,
        now: float | None = None,
        thread: str | None = None,
        change: int = SAME,
    ) -> None:
        """Record an event stamped ``now`` (default: now), by ``thread`` (default: the caller).

        ``extra`` is the payload as :meth:`EventLog.write <poolviz.events.EventLog>`
        takes it; ``change`` what the event did to the counts. Hold the log's lock.
        """
        now = perf_counter() if now is None else now
        name = self._pv_caller_name() if thread is None else thread
        counts = self._pv_full_counts()
        if counts is None:
            self.events.write_change(now, kind, serial, name, change, extra)
        else:
            self.events.write(now, kind, serial, name, *counts, extra)
