"""The live view: an anywidget drawn in the browser on a canvas, fed with packed event batches.

Python never draws here. A :class:`Shipper` thread reads what is new in an
:class:`~poolviz.events.EventLog` through a log cursor (``cursor.read()``) at
most :data:`MAX_BATCH_HZ` times a second, packs it
(:mod:`poolviz.live.packing`) and sends it as one comm message with binary
buffers; jupyter_server drops IOPub messages above about 1,000 a second, so
events are never sent one by one. Each batch carries the kernel clock
(``now``), so the browser's time axis moves with the pool's even between
batches.

The browser side is one ES module (anywidget loads a single module string),
kept as several files in ``poolviz/live/js/`` by what they do and joined here
in the fixed order of :data:`JS_PARTS`: ``theme.js`` (colours from
JupyterLab's CSS variables), ``store.js`` (decoding batches into a bounded
window), ``numbers.js`` (the figures shown), ``timeline.js`` (the timeline
panel and the hover crosshair, whose tooltip names a hold's checkout site),
``panels.js`` (occupancy, the waits histogram, per-worker service, the strip
of numbers), ``holders.js`` (the "holders now" table under the canvas: who
holds each connection, where it was taken, for how long) and ``render.js`` (the
DOM, the layout and a frame loop that sleeps while nothing changes; its
exports). The files are plain script fragments without imports: each uses
the functions of the files before it, and only the last one exports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import anywidget
import traitlets

from .. import checks
from ..events import Event, EventLog
from .packing import EventPacker, wire_format

logger = logging.getLogger("poolviz.live")

MAX_BATCH_HZ = 10.0
JS_DIR = Path(__file__).parent / "js"
#: The view's source files, in the order they are joined into its one ES module.
JS_PARTS = ("theme.js", "store.js", "numbers.js", "timeline.js", "panels.js", "holders.js", "render.js")


def esm_source() -> str:
    """The view's ES module: the files of :data:`JS_PARTS` joined in order, each under a comment naming it."""
    return "\n".join(f"// ---- poolviz/live/js/{name} ----\n{(JS_DIR / name).read_text()}" for name in JS_PARTS)


class LiveView(anywidget.AnyWidget):
    """A canvas in the browser that draws a pool's events: timeline, occupancy, waits and numbers.

    Settings are synced traits (``max_fps``, ``window_s``, ``paused``,
    ``max_connections``, ``cursor_t``, ``span``, ``workers``); events arrive
    through :meth:`send_batch`. ``cursor_t`` set shows the events up to that
    time (a replay); ``span`` set fixes the time axis (two views on one axis).

    The numbers strip counts waits still going at their age so far (the
    oldest waiter's age grows while it waits) and shows per-worker service:
    checkouts per worker and the longest wait. ``workers`` names the callers
    to report (one that never got a connection still counts, with zero);
    empty means every thread that asked the pool. The browser puts the same
    numbers on the view's ``data-`` attributes (``data-waiting``,
    ``data-oldest-wait-ms``, ``data-wait-p50-ms`` ... ``data-checkouts-min``,
    ``data-checkouts-max``, ``data-starved``, ``data-longest-wait-ms``) for tests,
    and what its frame loop does (``data-frames`` drawn, ``data-ticks`` run,
    ``data-sleeping``) and which palette it drew with (``data-theme``,
    ``data-bg``, ``data-fg``).

    Under the canvas a "holders now" table lists who holds every connection
    (connection, holder thread or task, checkout site, held for; longest
    first; ``data-holders`` counts them; ``show_holders=False`` hides it), and hovering a hold shows its
    checkout's site (``data-hover-site``). ``by_process`` (a merged log of
    several processes, thread labels ``p<pid>:<thread>``) groups the lanes by
    process and adds a process column to the table; set it before sending
    events (a reset sends it again).

    ``wire`` tells the browser how to decode batches (the kinds, the column
    names, the time unit: :func:`poolviz.live.packing.wire_format`); it is
    sent again with every reset.
    """

    _esm = esm_source()
    max_fps = traitlets.Float(30.0).tag(sync=True)
    window_s = traitlets.Float(10.0).tag(sync=True)
    paused = traitlets.Bool(False).tag(sync=True)
    max_connections = traitlets.Int(None, allow_none=True).tag(sync=True)
    cursor_t = traitlets.Float(None, allow_none=True).tag(sync=True)
    span = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(520).tag(sync=True)
    workers = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    by_process = traitlets.Bool(False).tag(sync=True)
    show_holders = traitlets.Bool(True).tag(sync=True)
    wire = traitlets.Dict(default_value=wire_format()).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        kwargs["max_fps"] = checks.number("max_fps", kwargs.get("max_fps", 30.0), positive=True)
        kwargs["window_s"] = checks.seconds("window_s", kwargs.get("window_s", 10.0), positive=True)
        super().__init__(**kwargs)
        self.packer = EventPacker()
        self._send_lock = threading.Lock()
        self.batches_sent = 0
        self.events_sent = 0
        self.bytes_sent = 0
        #: Called (in a comm thread) when a browser view starts and asks for what it missed.
        self.on_hello: Callable[[], None] | None = None
        self.on_msg(self._front_end_message)

    def _front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # Batches sent before the browser loaded the view's module are lost: it says "hello" and gets them again.
        if isinstance(content, dict) and content.get("type") == "hello" and self.on_hello is not None:
            try:
                self.on_hello()
            except Exception:
                logger.exception("poolviz live view: sending the history failed")

    def send_batch(self, events: Sequence[Event], now: float, lost: int = 0, dropped: int = 0) -> None:
        """Send ``events`` packed; ``now`` is the kernel clock, ``lost`` events the log dropped before we read them."""
        with self._send_lock:
            header, buffers = self.packer.pack(events)
            header.update(type="events", now=now, lost=lost, dropped=dropped)
            self.send(header, buffers=buffers)
            self.batches_sent += 1
            self.events_sent += len(events)
            self.bytes_sent += sum(len(b) for b in buffers)

    def send_events(self, events: Sequence[Event], chunk: int = 200_000) -> None:
        """Send a whole recorded trace, in messages of at most ``chunk`` events."""
        for start in range(0, max(1, len(events)), chunk):
            part = events[start : start + chunk]
            self.send_batch(part, now=part[-1].t if part else 0.0)

    def reset(self, max_connections: int | None = None) -> None:
        """Forget every event shown, for a new run (or a trace shown again)."""
        with self._send_lock:
            self.packer.reset()
            self.max_connections = max_connections
            self.send(
                {"type": "reset", "max_connections": max_connections, "wire": self.wire, "by_process": self.by_process}
            )

    def mark_resize(self, t: float, old: int, new: int) -> None:
        """Show a change of the pool's limit at time ``t``."""
        self.send({"type": "resize", "t": t, "old": old, "new": new})
        self.max_connections = new

    def gone(self, process: str, t: float) -> None:
        """The merged log's process ``process`` (``"p<pid>"``) ended at ``t``, after its last event sent: its holds end.

        Send it after that process's last batch; only a ``by_process`` view acts on it.
        """
        self.send({"type": "gone", "process": process, "t": t})

    def end(self, t: float) -> None:
        """The run ended at ``t``: the time axis stops moving."""
        self.send({"type": "end", "t": t})


class Send(Protocol):
    """What a :class:`Shipper` calls with each batch (:meth:`LiveView.send_batch` is one)."""

    def __call__(self, events: Sequence[Event], *, now: float, lost: int, dropped: int) -> None: ...


class Shipper:
    """A background thread that sends an EventLog's new events to ``send`` in batches, at most ``hz`` a second.

    It reads the log through one cursor (:meth:`EventLog.cursor`) from
    ``start_seq`` on and calls ``send(events, now=..., lost=..., dropped=...)``
    (see :class:`Send`) with the events new since the last batch (oldest
    first; :meth:`LiveView.send_batch` packs them), ``now`` (the log's
    clock), ``lost`` (events the log dropped before this shipper read them:
    never sent, counted so the view can say so) and ``dropped`` (the log's
    own count). A batch is sent when there are new events, or every second
    to keep the clock moving. :meth:`stop` sends what is left, so no event
    is lost at the end.
    """

    def __init__(self, log: EventLog, send: Send, hz: float = MAX_BATCH_HZ, start_seq: int = 0) -> None:
        hz = checks.number("hz", hz, positive=True)
        if hz > MAX_BATCH_HZ:
            raise ValueError(f"hz must be at most {MAX_BATCH_HZ:g} (IOPub drops bursts), got {hz!r}")
        self.log = log
        self._send = send
        self.period = 1.0 / hz
        self._cursor = log.cursor(start_seq)
        self.batches = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one batch at a time, so batches never overlap or repeat
        self._thread = threading.Thread(target=self._loop, name="poolviz-live-shipper", daemon=True)

    @property
    def next_seq(self) -> int:
        """The ``seq`` of the next event this shipper will send."""
        return self._cursor.next_seq

    @property
    def lost(self) -> int:
        """Events the log dropped before this shipper read them, over the whole run."""
        return self._cursor.lost

    def start(self) -> Shipper:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def ship(self, force: bool = False) -> int:
        """Send what is new now (when there is any, or ``force``); returns how many events went."""
        with self._lock:
            return self._ship(force)

    def _ship(self, force: bool) -> int:
        began = time.thread_time()
        events, lost = self._cursor.read()
        if events or force:
            with self.log.lock:
                dropped = self.log.dropped
            self._send(events, now=self.log.now(), lost=lost, dropped=dropped)
            self.batches += 1
        self.cpu_s += time.thread_time() - began
        return len(events)

    def resend(self, before: Callable[[], None]) -> None:
        """Call ``before`` (a view's reset) and send again every held event already shipped, without a gap."""
        with self._lock:
            before()
            upto = self.next_seq
            events = [e for e in self.log.since(0) if e.seq < upto]
            self._send(events, now=self.log.now(), lost=0, dropped=self.log.dropped)

    def _loop(self) -> None:
        last_sent = time.monotonic()
        while not self._stop.wait(self.period):
            try:
                now = time.monotonic()
                if self.ship(force=now - last_sent >= 1.0) or now - last_sent >= 1.0:
                    last_sent = now
            except Exception:
                logger.exception("poolviz live view: shipping events failed")

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread and send the last events; True when the thread has ended."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        try:
            self.ship(force=True)
        except Exception:
            logger.exception("poolviz live view: shipping the last events failed")
        return not self._thread.is_alive()
