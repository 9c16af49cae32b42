"""A recording followed live in JupyterLab: the live view of an application's pool across its processes.

:func:`follow` (or :class:`Follow`) tails the files :func:`poolviz.record`
writes, with a :class:`~poolviz.recording.RecordingReader` polled in a
background thread. The reader merges every process's stream on one clock
into a :class:`~poolviz.events.merge.MergedEventLog` (threads read
``p<pid>:<thread>``); a :class:`~poolviz.live.view.Shipper` sends what it
releases to a :class:`~poolviz.live.view.LiveView` that groups the lanes by
process and lists who holds every connection, with the site it was taken at.
A line above the view says which processes are recorded, which are still
running and how many events each one's stream dropped. When a process's
stream ends (its process exited, or it stopped recording), the view is told
once the process's last events are shipped, and its holds end there: a
worker that died holds nothing, whatever it held when it died.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .. import checks
from ..events import Event
from ..recording import RecordingReader
from .shared import JOIN_TIMEOUT_S, classed, message_html
from .view import LiveView, Shipper

logger = logging.getLogger("poolviz.live")

#: Events per message at most when a long recording's history goes to the browser at once.
CHUNK_EVENTS = 100_000
#: How often the line about the processes is rewritten at most.
STATUS_EVERY_S = 1.0


class Follow:
    """A live view that follows the recording in ``directory`` (of the application ``name``) while it is written.

    Every ``interval_s`` a background thread polls the reader; at most ten
    times a second the view gets the events released since. ``window_s`` is
    the time axis's width. The directory must exist (it may hold no stream
    yet: the view waits for the application's first). :meth:`stop` ends both
    threads and sends the last events; :meth:`close` also closes the widgets.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        interval_s: float = 0.2,
        window_s: float = 30.0,
        max_fps: float = 30.0,
        height: int = 520,
    ) -> None:
        self.interval_s = checks.seconds("interval_s", interval_s, positive=True)
        self.reader = RecordingReader(directory, name=name)
        self.view = classed(
            LiveView(by_process=True, window_s=window_s, max_fps=max_fps, height=height, title=self._title()),
            "poolviz-view",
        )
        self.status = classed(widgets.HTML(), "poolviz-follow-status")
        self.widget = classed(widgets.VBox([self.status, self.view]), "poolviz-follow")
        #: The last problem reading the recording ("" when none), also shown above the view.
        self.error = ""
        self.polls = 0
        # Ended streams: thread-label prefix -> (the log's next seq when seen ended, t of its last event).
        self._ended: dict[str, tuple[int, float]] = {}
        self._told: set[str] = set()
        self._sent_upto = 0
        self._status_at = -float("inf")
        self._status_lock = threading.Lock()
        self.view.reset()
        self.shipper = Shipper(self.reader.log, self._send)
        self.view.on_hello = lambda: self.shipper.resend(self._reset)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="poolviz-follow", daemon=True)
        self._show_status(force=True)
        self.shipper.start()
        self._thread.start()

    def _title(self) -> str:
        name = self.reader.name or "the application"
        return f"{name}, recorded in {self.reader.directory}: lanes grouped by process"

    def _reset(self) -> None:
        self._told.clear()
        self.view.reset()

    def _send(self, events: Sequence[Event], *, now: float, lost: int, dropped: int) -> None:
        # The shipper's thread, one batch at a time. A long recording's history arrives in one read: sent in
        # messages of at most CHUNK_EVENTS. Then each ended process whose last event has gone is told.
        for start in range(0, max(1, len(events)), CHUNK_EVENTS):
            part = events[start : start + CHUNK_EVENTS]
            self.view.send_batch(part, now=now, lost=lost if start == 0 else 0, dropped=dropped)
        if events:
            self._sent_upto = events[-1].seq + 1
        for label, (upto, t) in list(self._ended.items()):
            if label not in self._told and upto <= self._sent_upto:
                self._told.add(label)
                self.view.gone(label, t)

    def _note_ended(self) -> None:
        # Called after a poll: streams newly ended, with where the log stood once their last events were in it.
        log = self.reader.log
        for pid, stream in list(self.reader.processes.items()):
            label = f"p{pid}"
            if stream.ended and label not in self._ended:
                last = stream.last - log.t0 if stream.last > float("-inf") else log.now()
                self._ended[label] = (log.cursor().next_seq, last)

    def poll(self) -> int:
        """Read what is new in the recording now (the thread does this every ``interval_s``); events released."""
        try:
            released = self.reader.poll()
        except (OSError, ValueError) as exc:
            if str(exc) != self.error:
                logger.warning("poolviz follow: %s", exc)
            self.error = str(exc)
            self._show_status(force=True)
            return 0
        was, self.error = self.error, ""
        self._note_ended()
        self.polls += 1
        self._show_status(force=bool(was))
        return released

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                logger.exception("poolviz follow: reading the recording failed")
            self._stop.wait(self.interval_s)

    def status_text(self) -> str:
        """The line above the view: the processes recorded, live or ended, and the events each dropped."""
        processes = self.reader.processes
        if not processes:
            return f"waiting for a recording in {self.reader.directory}"
        parts = []
        for pid, stream in sorted(processes.items()):
            state = stream.ended or "running"
            dropped = f", {stream.dropped} dropped" if stream.dropped else ""
            parts.append(f"p{pid} {state} ({stream.events} events{dropped})")
        name = self.reader.name or ""
        return f"{name}: {len(processes)} process{'es' if len(processes) != 1 else ''}: " + "; ".join(parts)

    def _show_status(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._status_lock:
            if not force and now - self._status_at < STATUS_EVERY_S:
                return
            self._status_at = now
            text = html.escape(self.status_text())
            error = message_html(f"reading the recording: {self.error}", "error") if self.error else ""
            self.status.value = f'<span style="font-family:var(--jp-code-font-family, monospace)">{text}</span>{error}'
        if self.reader.name and not self.view.title.startswith(self.reader.name):
            self.view.title = self._title()

    @property
    def running(self) -> bool:
        """True while the polling thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop polling, send the events released so far, freeze the time axis; True when both threads ended."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        shipped = self.shipper.stop(timeout)
        self.view.end(self.reader.log.now())
        self._show_status(force=True)
        return shipped and not self._thread.is_alive()

    def close(self) -> None:
        """Stop (see :meth:`stop`) and close the widgets."""
        self.stop()
        for widget in (self.status, self.view, self.widget):
            widget.close()

    def __enter__(self) -> Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def follow(directory: str | os.PathLike[str], *, name: str | None = None, **options: Any) -> Follow:
    """Follow the recording in ``directory`` live in JupyterLab: the :class:`Follow` (display it, ``.stop()`` it).

    ``options`` are :class:`Follow`'s: ``interval_s``, ``window_s``, ``max_fps``, ``height``.
    """
    return Follow(directory, name=name, **options)
