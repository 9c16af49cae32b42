"""A recorded trace played back in the live view: play, pause, speed and a time slider, all drawn in the browser."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets
import traitlets

from .. import checks
from ..data import analysis
from ..data.traces import as_frame
from ..events import FIELDS, Event
from .shared import JOIN_TIMEOUT_S, Latest, classed, frame_stats, message_html, stats_html
from .view import LiveView

SPEEDS = (("¼×", 0.25), ("½×", 0.5), ("1×", 1.0), ("2×", 2.0), ("4×", 4.0))


def _text(value: Any) -> str:
    # A saved trace reads empty strings back as NaN.
    return value if isinstance(value, str) else ""


def frame_events(frame: Any) -> list[Event]:
    """The rows of an event frame (from ``to_frame()`` or a saved trace) as :class:`~poolviz.events.Event` records."""
    columns = [frame[name].tolist() for name in FIELDS]
    return [
        Event(
            int(seq),
            float(t),
            str(kind),
            int(conn),
            str(thread),
            float(w),
            float(d),
            bool(r),
            _text(reason),
            _text(msg),
            int(u),
            int(i),
            int(q),
        )
        for seq, t, kind, conn, thread, w, d, r, reason, msg, u, i, q in zip(*columns, strict=True)
    ]


class Replay:
    """A recorded trace played back: Play, speed and a time slider move the view's cursor through the trace.

    ``events`` is an :class:`~poolviz.events.EventLog` (or a pool), a frame
    from ``to_frame()`` or :func:`poolviz.load_recording` (a finished
    recording: lanes grouped by process, sites on hover and in the holders
    table) or the path of a trace saved with :func:`poolviz.traces.save_events`. The whole trace is sent to the browser
    once; moving the slider only moves a cursor there. The view shows events
    with ``t <=`` the cursor over the whole trace's time axis (or a moving
    window of ``window_s`` seconds). ``steps`` is how many frames a full play
    takes at 1×, ``interval_ms`` the pause between them; the numbers under
    the view are the analysis of the trace up to the cursor.
    """

    def __init__(
        self,
        events: Any,
        *,
        steps: int = 100,
        interval_ms: int = 100,
        window_s: float | None = None,
        max_fps: float = 30.0,
    ) -> None:
        self.frame = as_frame(events)
        steps = checks.count("steps", steps)
        self._interval_ms = checks.count("interval_ms", interval_ms)
        window_s = checks.seconds("window_s", window_s, positive=True, none_allowed=True)
        self._lock = threading.Lock()
        self.last_stats: dict[str, Any] = {}
        self.shown_t: float | None = None
        t = self.frame["t"].to_numpy(dtype=float)
        self.t_end = float(t.max()) if len(t) else 0.0
        # From 0 when the trace starts from an empty pool, else from its first event (see poolviz.analysis).
        self.t_start = self.t_end - analysis.span(self.frame) if len(t) else 0.0
        step = (self.t_end - self.t_start) / steps if self.t_end > self.t_start else 1.0
        limit = self.frame.attrs.get("max_connections")
        self.view = classed(
            LiveView(
                max_fps=max_fps,
                window_s=window_s or max(1e-3, self.t_end - self.t_start),
                max_connections=int(limit) if limit else None,
                cursor_t=self.t_end,
                # A merged trace (several processes: a recording, a multi-process run) groups lanes by process.
                by_process="process" in self.frame.columns,
                span=[] if window_s else [self.t_start, max(self.t_end, self.t_start + step)],
            ),
            "poolviz-view",
        )
        self.play = classed(
            widgets.Play(value=steps, min=0, max=steps, step=1, interval=self._interval_ms, description="play"),
            "poolviz-replay-play",
        )
        self.speed = classed(
            widgets.Dropdown(options=SPEEDS, value=1.0, description="speed", layout=widgets.Layout(width="160px")),
            "poolviz-replay-speed",
        )
        self.slider = classed(
            widgets.FloatSlider(
                value=self.t_end,
                min=self.t_start,
                max=max(self.t_end, self.t_start + step),
                step=step,
                description="t (s)",
                continuous_update=True,
                readout_format=".3f",
                layout=widgets.Layout(width="600px"),
            ),
            "poolviz-replay-time",
        )
        self._link = traitlets.link(
            (self.play, "value"),
            (self.slider, "value"),
            # The last step is the trace's end exactly, whatever the rounding of i * step.
            transform=(
                lambda i: self.t_end if i >= steps else self.t_start + i * step,
                lambda t: round((t - self.t_start) / step),
            ),
        )
        self._cursor = traitlets.dlink((self.slider, "value"), (self.view, "cursor_t"))
        self.speed.observe(self._speed_changed, names="value")
        self.message = classed(widgets.HTML(), "poolviz-message")
        self.stats = classed(widgets.HTML(), "poolviz-stats")
        self.widget = classed(
            widgets.VBox([widgets.HBox([self.play, self.speed, self.slider]), self.message, self.view, self.stats]),
            "poolviz-replay",
        )
        self._events = frame_events(self.frame)
        self.view.on_hello = self._send_trace
        self._send_trace()
        self._numbers = Latest("poolviz-replay-numbers", self._count)
        self.slider.observe(lambda change: self._numbers.request(change["new"]), names="value")
        if self.frame.empty:
            self.message.value = message_html("This trace holds no events.", "error")
        self._numbers.request(self.slider.value)

    def _send_trace(self) -> None:
        self.view.reset(self.view.max_connections)
        self.view.send_events(self._events)
        self.view.end(self.t_end)

    def _speed_changed(self, change: Any) -> None:
        self.play.interval = max(1, round(self._interval_ms / change["new"]))

    def seek(self, t: float, wait: bool = True, timeout: float = 30.0) -> bool:
        """Move the cursor to ``t`` seconds; with ``wait``, return once the numbers for it are computed."""
        if self.slider.value != t:
            self.slider.value = t
        else:
            self._numbers.request(t)
        return self.wait(timeout) if wait else True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the numbers for the cursor asked for last are shown; True when they are."""
        return self._numbers.wait(timeout)

    def _count(self, t: float) -> None:
        upto = self.frame[self.frame["t"] <= t]
        upto.attrs = dict(self.frame.attrs)
        stats = frame_stats(upto)
        with self._lock:
            self.stats.value = stats_html(stats, f"up to t = {t:.3f} s")
            self.last_stats = stats
            self.shown_t = t

    def close(self) -> None:
        """Stop playing, wait for the numbers thread and close the widgets."""
        self.play.playing = False
        self._link.unlink()
        self._cursor.unlink()
        self._numbers.wait(JOIN_TIMEOUT_S)
        for widget in (self.play, self.speed, self.slider, self.message, self.view, self.stats, self.widget):
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
