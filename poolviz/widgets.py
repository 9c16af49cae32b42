"""Widgets for JupyterLab: a live dashboard driven by sliders, a replay of a trace, a side-by-side comparison.

Data flows one way. Worker threads only record events in the pool's
:class:`~poolviz.events.EventLog`; one render thread per widget reads what is
new with :meth:`~poolviz.events.EventLog.since`, keeps a frame, draws it with
:func:`poolviz.plots.plot_dashboard` on an Agg :class:`~matplotlib.figure.Figure`
(never pyplot) and puts the PNG bytes into an :class:`ipywidgets.Image`. Since
no drawing happens in the kernel's main thread, the picture moves while a cell
is busy, and the same code runs headless in tests.

Widget callbacks may run in a thread other than the main one (ipykernel 7
handles comm messages off the main thread), so every piece of shared state is
guarded by a lock, and a callback never lets an exception reach the cell: bad
values become a message in the widget instead.
"""

from __future__ import annotations

import html
import logging
import math
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd
import traitlets
from matplotlib.figure import Figure

from . import analysis, servers
from .checks import count as positive_int
from .checks import pool_args as check_pool_args
from .credentials import mask_url
from .events import EventLog
from .frames import as_frame, events_to_frame
from .plots import figure_to_png_bytes, plot_dashboard
from .pool import is_instrumented
from .urls import POOL_SCHEMES, connect
from .workload import DISTRIBUTIONS, Distribution, WorkloadResult, run_closed_loop

__all__ = ["Compare", "DashboardSettings", "PoolDashboard", "Replay", "frame_stats", "resize_pool"]

logger = logging.getLogger("poolviz")

# A dashboard run is bounded by its length in seconds; this only satisfies
# run_closed_loop's need for a request count.
_UNBOUNDED_REQUESTS = 10**9
_JOIN_TIMEOUT_S = 30.0
_FIGSIZE = (12.0, 7.0)
_DPI = 72
_RESIZE_COLOUR = "tab:purple"


def _fit(fig: Figure) -> None:
    # A fixed layout: constrained layout costs two to three times the drawing
    # itself, too much for a figure redrawn several times a second. The right
    # margin and the column gap leave room for the legends beside each plot.
    fig.subplots_adjust(left=0.06, right=0.835, bottom=0.075, top=0.95, wspace=0.42, hspace=0.32)


def _render_png(
    frame: pd.DataFrame,
    fig: Figure,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
    resizes: Sequence[tuple[float, int, int]] = (),
) -> bytes:
    """The dashboard figure of ``frame`` as PNG bytes, with a mark on the occupancy plot per live resize."""
    plot_dashboard(frame, fig=fig, max_connections=max_connections, window=window)
    _fit(fig)
    for ax in fig.axes:
        # A title with a set height skips matplotlib's search for a clear spot, a tenth of the frame.
        ax.set_title(ax.get_title(), y=1.0)
    occupancy_ax = fig.axes[1]
    for t, old, new in resizes:
        occupancy_ax.axvline(t, color=_RESIZE_COLOUR, linestyle=":", linewidth=1.5)
        occupancy_ax.annotate(
            f"{old}→{new}",
            (t, 0.98),
            xycoords=("data", "axes fraction"),
            xytext=(3, 0),
            textcoords="offset points",
            va="top",
            color=_RESIZE_COLOUR,
            fontsize="small",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    return figure_to_png_bytes(fig)


def _new_figure() -> Figure:
    return Figure(figsize=_FIGSIZE, dpi=_DPI)


def frame_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """The numbers a live view shows for a trace, computed with :mod:`poolviz.analysis`.

    Keys: ``events``, ``requests`` (checkouts and timeouts), ``throughput_rps``,
    ``wait_p50_s``, ``wait_p95_s``, ``timeouts``, ``connections_opened``,
    ``connections_closed``, the counts after the last event (``in_use``,
    ``idle``, ``waiting``), ``max_connections`` and ``events_dropped`` (both
    from ``frame.attrs``). NaN where a figure is undefined (no requests yet).
    """
    waits = analysis.wait_stats(frame)
    kinds = frame["kind"]
    last = frame.iloc[-1] if len(frame) else None
    return {
        "events": len(frame),
        "requests": int(waits["count"]),
        "throughput_rps": analysis.throughput(frame),
        "wait_p50_s": waits["p50_s"],
        "wait_p95_s": waits["p95_s"],
        "timeouts": analysis.timeouts(frame),
        "connections_opened": int((kinds == "connect").sum()),
        "connections_closed": int((kinds == "close").sum()),
        "in_use": int(last["in_use"]) if last is not None else 0,
        "idle": int(last["idle"]) if last is not None else 0,
        "waiting": int(last["waiting"]) if last is not None else 0,
        "max_connections": frame.attrs.get("max_connections"),
        "events_dropped": int(frame.attrs.get("dropped", 0)),
    }


def _number(value: Any, unit: str = "", scale: float = 1.0, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value}{unit}"
    return f"{value * scale:.{digits}g}{unit}"


def _stats_html(stats: Mapping[str, Any], title: str = "") -> str:
    """One header row and one value row; each value cell has a class ``poolviz-stat-<key>`` to find it by."""
    limit = stats.get("max_connections")
    cells = [
        ("throughput", "throughput", _number(stats["throughput_rps"], " req/s")),
        (
            "wait",
            "wait p50 / p95",
            f"{_number(stats['wait_p50_s'], ' ms', 1e3)} / {_number(stats['wait_p95_s'], ' ms', 1e3)}",
        ),
        ("requests", "requests", str(stats["requests"])),
        ("timeouts", "timeouts", str(stats["timeouts"])),
        ("connections", "opened / closed", f"{stats['connections_opened']} / {stats['connections_closed']}"),
        ("now", "in use / idle / waiting", f"{stats['in_use']} / {stats['idle']} / {stats['waiting']}"),
        ("max_connections", "max_connections", "no limit" if not limit else str(limit)),
        ("events", "events (dropped)", f"{stats['events']} ({stats['events_dropped']})"),
    ]
    pad = "padding:1px 10px;text-align:left"
    head = "".join(f'<th style="{pad}">{html.escape(label)}</th>' for _key, label, _value in cells)
    values = "".join(
        f'<td class="poolviz-stat-{key}" style="{pad};font-family:monospace">{html.escape(value)}</td>'
        for key, _label, value in cells
    )
    heading = f"<b>{html.escape(title)}</b>" if title else ""
    return f'{heading}<table style="font-size:12px;border-collapse:collapse"><tr>{head}</tr><tr>{values}</tr></table>'


def _message_html(text: str, level: str) -> str:
    colour = {"error": "#b00020", "ok": "#1b5e20"}.get(level, "#333")
    icon = {"error": "⚠ ", "ok": "✓ "}.get(level, "")
    return f'<span style="color:{colour}">{icon}{html.escape(text)}</span>' if text else ""


class _EventFeed:
    """One EventLog's events as a growing frame, read a piece at a time with ``since(seq)``."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.next_seq = 0
        self.frame = events_to_frame([])

    def update(self) -> int:
        """Add the events recorded since the last call; returns how many."""
        new = self.log.since(self.next_seq)
        if new:
            self.next_seq = new[-1].seq + 1
            part = events_to_frame(new)
            self.frame = pd.concat([self.frame, part], ignore_index=True) if len(self.frame) else part
        with self.log.lock:
            attrs = {"dropped": self.log.dropped, "capacity": self.log.capacity, **self.log.meta}
        self.frame.attrs = attrs
        return len(new)


# Live resizing. peewee's limit only decides whether the pool may open another
# connection: idle ones are handed out whatever the limit. Shrinking therefore
# also closes the connections over the new limit, idle ones at once and the
# ones in use as they come back, until in use + idle fits.
def resize_pool(db: Any, max_connections: int) -> int:
    """Change a running instrumented pool's ``max_connections`` (see the pools' ``resize()``).

    Returns how many connections in use are over the new limit; they close as
    they are checked in, so the pool settles within one hold time.
    """
    if not is_instrumented(db):
        raise TypeError(f"resize_pool needs an instrumented pool, got {type(db).__qualname__}")
    return int(db.resize(_check_setting("max_connections", max_connections)))


@dataclass(frozen=True)
class DashboardSettings:
    """What one dashboard run uses: the pool's settings and the closed-loop workload's.

    ``timeout`` is peewee's: seconds a request waits for a free connection,
    ``0`` waits forever, ``None`` fails at once when the pool is full.
    ``stale_timeout`` ``None`` never retires a connection for its age. Hold
    and think times are means in milliseconds of ``distribution``; ``duration``
    is the run's length in seconds.
    """

    backend: str = "sqlite"
    max_connections: int = 4
    workers: int = 8
    hold_ms: float = 20.0
    think_ms: float = 5.0
    distribution: str = "exp"
    timeout: float | None = 10.0
    stale_timeout: float | None = None
    duration: float = 10.0
    seed: int = 0

    def hold(self) -> Distribution:
        """The hold-time distribution, in seconds."""
        return Distribution.with_mean(self.distribution, self.hold_ms / 1000.0)

    def think(self) -> Distribution:
        """The think-time distribution, in seconds."""
        return Distribution.with_mean(self.distribution, self.think_ms / 1000.0)


SETTING_NAMES: tuple[str, ...] = tuple(DashboardSettings.__dataclass_fields__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_setting(name: str, value: Any) -> Any:
    """``value`` for setting ``name`` in its canonical form, or a ValueError that says what is allowed."""
    if name == "max_connections":
        if not _is_int(value) or value < 1:
            raise ValueError(
                f"max_connections must be a positive integer, got {value!r} (peewee would read 0 as no limit)"
            )
        return value
    if name == "workers":
        return positive_int(name, value)
    if name in ("hold_ms", "think_ms"):
        if not _is_number(value) or value < 0:
            raise ValueError(f"{name} must be a number of milliseconds >= 0, got {value!r}")
        return float(value)
    if name == "distribution":
        if value not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {value!r}")
        return value
    if name in ("timeout", "stale_timeout"):
        if value is None:
            return None
        if not _is_number(value) or value < 0:
            raise ValueError(f"{name} must be None or a number of seconds >= 0, got {value!r}")
        # A stale_timeout of 0 is peewee's "never": say so with None.
        return None if name == "stale_timeout" and value == 0 else float(value)
    if name == "duration":
        if not _is_number(value) or value <= 0:
            raise ValueError(f"duration must be a number of seconds > 0, got {value!r}")
        return float(value)
    if name == "seed":
        if not _is_int(value):
            raise ValueError(f"seed must be an integer, got {value!r}")
        return value
    if name == "backend":
        if not isinstance(value, str):
            raise ValueError(f"backend must be a string, got {value!r}")
        return value
    raise ValueError(f"unknown setting {name!r}; the dashboard knows {', '.join(SETTING_NAMES)}")


@dataclass
class _LiveRun:
    """One run of the dashboard: its pool, its threads and what they share."""

    db: Any
    settings: DashboardSettings
    feed: _EventFeed
    stop: threading.Event = field(default_factory=threading.Event)  # the workload's stop Event
    finished: threading.Event = field(default_factory=threading.Event)  # the runner has returned
    threads: list[threading.Thread] = field(default_factory=list)
    resizes: list[tuple[float, int, int]] = field(default_factory=list)
    result: WorkloadResult | None = None
    error: str = ""
    stopped_by_user: bool = False
    deadline: float = math.inf
    began: float = 0.0

    def progress(self, done: int, total: int | None) -> None:
        # Called by the workload after each request: end the run on time.
        if time.perf_counter() >= self.deadline:
            self.stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for this run's threads; True when they have all ended."""
        until = time.monotonic() + timeout
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, until - time.monotonic()))
        return not any(t.is_alive() for t in self.threads if t is not threading.current_thread())


class _Resources:
    """What a dashboard must release even if nobody calls close(): its runs and its temp dir."""

    def __init__(self) -> None:
        self.runs: list[_LiveRun] = []
        self.tempdir: str | None = None


def _shutdown(resources: _Resources) -> None:
    # Run by close(), by the garbage collector or at interpreter exit (kernel shutdown).
    for run in resources.runs:
        run.stop.set()
    for run in resources.runs:
        run.join(5.0)
        try:
            run.db.close_all()
        except Exception:
            logger.debug("poolviz dashboard: closing a pool failed", exc_info=True)
    resources.runs.clear()
    if resources.tempdir:
        shutil.rmtree(resources.tempdir, ignore_errors=True)
        resources.tempdir = None


_BACKEND_LABELS = {"sqlite": "SQLite (temp file)", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}

_HELP = (
    "<details><summary>What the controls mean</summary><ul>"
    "<li><b>max_connections</b>: the most connections the pool keeps open. Changing it during a run "
    "resizes the running pool. 0 is refused: peewee would read it as no limit at all.</li>"
    "<li><b>workers</b>: threads that each make requests back to back.</li>"
    "<li><b>hold / think</b>: mean milliseconds a request keeps its connection, and a worker pauses "
    "between requests (drawn from the distribution).</li>"
    "<li><b>timeout</b>: seconds a request waits for a free connection before "
    "<code>MaxConnectionsExceeded</code>; <b>0 = wait forever</b>. Tick <b>fail at once</b> for "
    "<code>timeout=None</code>: a full pool raises at once.</li>"
    "<li><b>stale_timeout</b>: seconds after which a connection is closed when next checked out or in; "
    "0 = never.</li>"
    "<li><b>run length</b>: seconds the workload runs (Stop ends it sooner).</li>"
    "</ul>Settings other than max_connections apply from the next run.</details>"
)


def _classed(widget: Any, css_class: str) -> Any:
    widget.add_class(css_class)
    return widget


class PoolDashboard:
    """A live view of a connection pool under load, driven by sliders: ``display()`` it in JupyterLab.

    Pick a backend (SQLite in a temp dir always; MariaDB and PostgreSQL when
    :func:`poolviz.servers.reachable` says so, else listed as unavailable with
    the reason), set the pool and the workload, press Run. Each run gets a
    fresh pool and a closed-loop workload; one render thread redraws the
    timeline (a moving window of ``window_s`` seconds), occupancy with the
    limit, the wait distribution and the numbers at most ``fps`` times a
    second, and spends at most ``render_budget`` of the time drawing, so the
    workload keeps its pace. ``fps=0`` draws only when a run ends.

    **Changing max_connections during a run resizes the running pool** (see
    :func:`resize_pool`): growing wakes waiting requests at once; shrinking
    closes idle connections over the new limit at once and the ones in use as
    they come back. The message line says what happened and the occupancy
    plot marks the moment. Every other setting applies from the next run, and
    the message line says so.

    ``url`` adds a backend for that ``+pool`` URL. ``defaults`` set the
    controls (names in :class:`DashboardSettings`); a bad one is reported in
    the message line and the control keeps its default. Nothing here raises
    into the cell: problems become messages, and a run already recorded stays
    on screen.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        fps: float = 5.0,
        render_budget: float = 0.15,
        window_s: float = 10.0,
        check_servers: bool = True,
        **defaults: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, _shutdown, self._resources)
        self._run: _LiveRun | None = None
        self._starting = False
        self._closed = False
        self._seed = 0
        self._fig = _new_figure()
        self.frames_rendered = 0
        self.render_seconds = 0.0
        self.last_stats: dict[str, Any] = {}
        self.messages: list[tuple[str, str]] = []
        problems: list[str] = []
        self._fps = _option(problems, "fps", fps, lambda v: _is_number(v) and v >= 0, "a number >= 0", 5.0)
        self._budget = _option(
            problems, "render_budget", render_budget, lambda v: _is_number(v) and 0 < v <= 1, "in (0, 1]", 0.15
        )
        self._window_s = _option(problems, "window_s", window_s, lambda v: _is_number(v) and v > 0, "> 0", 10.0)
        self._backends = self._find_backends(url, check_servers, problems)
        self._build_widgets()
        self._apply_defaults(defaults, problems)
        self._wire()
        self._backend_changed(self.controls["backend"].value, quiet=True)
        self.image.value = _render_png(events_to_frame([]), self._fig, self.controls["max_connections"].value)
        if problems:
            self._say("; ".join(problems), "error")
        else:
            self._say("Ready: set the pool and the workload, then press Run.")

    def _find_backends(self, url: str | None, check_servers: bool, problems: list[str]) -> dict[str, Any]:
        """Backend key -> (label, url, reason it is unavailable or None)."""
        found: dict[str, Any] = {}
        if url is not None:
            reason = _url_problem(url)
            if reason is None and check_servers:
                reason = servers.reachable(url, timeout=1.0)
            shown = mask_url(url) if isinstance(url, str) else repr(url)
            found["url"] = (shown, url, reason)
            if reason:
                problems.append(f"{shown}: {reason}")
        found["sqlite"] = (_BACKEND_LABELS["sqlite"], None, None)
        for key, server_url in (("mariadb", servers.mysql_url()), ("postgresql", servers.postgres_url())):
            reason = servers.reachable(server_url, timeout=1.0) if check_servers else "server checks are off"
            found[key] = (_BACKEND_LABELS[key], server_url, reason)
        return found

    def _build_widgets(self) -> None:
        wide = {"description_width": "118px"}
        row = widgets.Layout(width="305px")

        def slider(cls: type, name: str, description: str, **kw: Any) -> Any:
            return _classed(
                cls(description=description, continuous_update=False, style=wide, layout=row, **kw),
                f"poolviz-{name.replace('_', '-')}",
            )

        d = DashboardSettings()
        options = [
            (label if reason is None else f"{label} (unavailable)", key)
            for key, (label, _url, reason) in self._backends.items()
        ]
        first = "url" if "url" in self._backends and self._backends["url"][2] is None else "sqlite"
        self.controls: dict[str, Any] = {
            "backend": _classed(
                widgets.Dropdown(options=options, value=first, description="backend", style=wide, layout=row),
                "poolviz-backend",
            ),
            # The slider reaches 0 on purpose: peewee reads 0 as "no limit", and
            # the message the dashboard gives for it is part of the lesson.
            "max_connections": slider(
                widgets.IntSlider, "max_connections", "max_connections", value=d.max_connections, min=0, max=32
            ),
            "workers": slider(widgets.IntSlider, "workers", "workers", value=d.workers, min=1, max=64),
            "hold_ms": slider(widgets.IntSlider, "hold_ms", "hold (ms)", value=int(d.hold_ms), min=0, max=500),
            "think_ms": slider(widgets.IntSlider, "think_ms", "think (ms)", value=int(d.think_ms), min=0, max=500),
            "distribution": _classed(
                widgets.Dropdown(
                    options=list(DISTRIBUTIONS),
                    value=d.distribution,
                    description="distribution",
                    style=wide,
                    layout=row,
                ),
                "poolviz-distribution",
            ),
            "timeout": slider(
                widgets.FloatSlider, "timeout", "timeout (s)", value=d.timeout, min=0.0, max=30.0, step=0.5
            ),
            "fail_at_once": _classed(
                widgets.Checkbox(
                    value=False,
                    description="fail at once (timeout=None)",
                    indent=False,
                    layout=widgets.Layout(margin="2px 0 2px 40px"),
                ),
                "poolviz-fail-at-once",
            ),
            "stale_timeout": slider(
                widgets.FloatSlider, "stale_timeout", "stale_timeout (s)", value=0.0, min=0.0, max=30.0, step=0.5
            ),
            "duration": slider(
                widgets.FloatSlider, "duration", "run length (s)", value=d.duration, min=0.5, max=120.0, step=0.5
            ),
        }
        self.backend_note = _classed(widgets.HTML(), "poolviz-backend-note")
        self.help = _classed(widgets.HTML(_HELP), "poolviz-help")
        self.run_button = _classed(
            widgets.Button(description="Run", button_style="success", icon="play"), "poolviz-run"
        )
        self.stop_button = _classed(
            widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True), "poolviz-stop"
        )
        self.status = _classed(widgets.HTML("idle"), "poolviz-status")
        self.message = _classed(widgets.HTML(), "poolviz-message")
        self.image = _classed(
            widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="1100px")), "poolviz-image"
        )
        self.stats = _classed(widgets.HTML(), "poolviz-stats")
        c = self.controls
        column = widgets.Layout(width="315px")
        settings_box = widgets.HBox(
            [
                widgets.VBox([c["backend"], c["max_connections"], c["workers"], c["duration"]], layout=column),
                widgets.VBox([c["hold_ms"], c["think_ms"], c["distribution"]], layout=column),
                widgets.VBox([c["timeout"], c["fail_at_once"], c["stale_timeout"]], layout=column),
            ],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        buttons = widgets.HBox([self.run_button, self.stop_button, self.status])
        self.widget = _classed(
            widgets.VBox([settings_box, self.backend_note, self.help, buttons, self.message, self.stats, self.image]),
            "poolviz-dashboard",
        )
        self._all_widgets = [
            *c.values(),
            self.backend_note,
            self.help,
            self.run_button,
            self.stop_button,
            self.status,
            self.message,
            self.image,
            self.stats,
            settings_box,
            *settings_box.children,
            buttons,
            self.widget,
        ]
        unavailable = [f"{label}: {reason}" for label, _url, reason in self._backends.values() if reason]
        self.backend_note.value = (
            "<small>Unavailable: " + html.escape(" · ".join(unavailable)) + "</small>" if unavailable else ""
        )

    def _apply_defaults(self, defaults: Mapping[str, Any], problems: list[str]) -> None:
        c = self.controls
        for name, value in defaults.items():
            try:
                checked = _check_setting(name, value)
                if name == "backend" and checked not in self._backends:
                    raise ValueError(f"backend must be one of {', '.join(self._backends)}, got {value!r}")
            except ValueError as exc:
                problems.append(f"{exc}; keeping {self._control_value(name)!r}")
                continue
            if name == "seed":
                self._seed = checked
            elif name == "timeout":
                c["fail_at_once"].value = checked is None
                if checked is not None:
                    _set_within(c["timeout"], checked)
            elif name == "stale_timeout":
                _set_within(c["stale_timeout"], 0.0 if checked is None else checked)
            elif name in ("backend", "distribution"):
                c[name].value = checked
            else:
                _set_within(c[name], checked)
        c["timeout"].disabled = c["fail_at_once"].value

    def _control_value(self, name: str) -> Any:
        if name == "seed":
            return self._seed
        control = self.controls.get(name)
        return control.value if control is not None else None

    def _wire(self) -> None:
        for name, control in self.controls.items():
            control.observe(self._guard(self._setting_changed, name), names="value")
        self.run_button.on_click(self._guard(lambda _button: self.run()))
        self.stop_button.on_click(self._guard(lambda _button: self.stop()))

    def _guard(self, fn: Callable[..., Any], *bound: Any) -> Callable[..., None]:
        # Widget callbacks: a problem becomes a message, never a traceback in the cell.
        def callback(*args: Any) -> None:
            try:
                fn(*bound, *args)
            except Exception as exc:
                logger.exception("poolviz dashboard callback failed")
                self._say(f"{type(exc).__name__}: {exc}", "error")

        return callback

    def _say(self, text: str, level: str = "info") -> None:
        with self._lock:
            self.messages.append((level, text))
            del self.messages[:-50]
            self.message.value = _message_html(text, level)

    def _setting_changed(self, name: str, change: Mapping[str, Any]) -> None:
        new = change["new"]
        if name == "fail_at_once":
            self.controls["timeout"].disabled = bool(new)
        if name == "backend":
            self._backend_changed(new)
            return
        if name == "max_connections":
            self._max_connections_changed(new)
            return
        run = self._active_run()
        if run is not None:
            label = "timeout" if name == "fail_at_once" else name
            self._say(f"{label} applies from the next run; the running one keeps its settings.")

    def _backend_changed(self, key: str, quiet: bool = False) -> None:
        label, _url, reason = self._backends[key]
        self.run_button.disabled = reason is not None or self._active_run() is not None
        if reason:
            self._say(f"{label} is not available: {reason}", "error")
        elif not quiet:
            self._say(f"Next run uses {label}.")

    def _max_connections_changed(self, new: Any) -> None:
        try:
            limit = _check_setting("max_connections", new)
        except ValueError as exc:
            self._say(str(exc), "error")
            return
        run = self._active_run()
        if run is None:
            return
        old = run.db.max_connections
        if old == limit:
            return
        over = resize_pool(run.db, limit)
        with self._lock:
            run.resizes.append((run.db.events.now(), old, limit))
        if limit > old:
            detail = "waiting requests may take the new slots at once"
        elif over:
            detail = f"{over} connection(s) in use over the limit close as they are returned"
        else:
            detail = "idle connections over the limit were closed"
        self._say(f"max_connections {old} → {limit} on the running pool: {detail}.", "ok")

    def _active_run(self) -> _LiveRun | None:
        with self._lock:
            run = self._run
        return run if run is not None and not run.finished.is_set() else None

    def settings(self) -> DashboardSettings:
        """The settings the controls now hold (a ValueError names any that is not allowed)."""
        c = self.controls
        values = {
            "backend": c["backend"].value,
            "max_connections": c["max_connections"].value,
            "workers": c["workers"].value,
            "hold_ms": c["hold_ms"].value,
            "think_ms": c["think_ms"].value,
            "distribution": c["distribution"].value,
            "timeout": None if c["fail_at_once"].value else c["timeout"].value,
            "stale_timeout": c["stale_timeout"].value,
            "duration": c["duration"].value,
            "seed": self._seed,
        }
        return DashboardSettings(**{name: _check_setting(name, value) for name, value in values.items()})

    @property
    def db(self) -> Any:
        """The pool of the current (or last) run, None before the first run."""
        with self._lock:
            return self._run.db if self._run is not None else None

    @property
    def result(self) -> WorkloadResult | None:
        """The last finished run's :class:`~poolviz.workload.WorkloadResult`."""
        with self._lock:
            return self._run.result if self._run is not None else None

    @property
    def running(self) -> bool:
        """True while a run's workload is going."""
        return self._active_run() is not None

    def run(self, wait: bool = False) -> bool:
        """Start a run with the controls' settings; True when one started (else the message line says why).

        ``wait=True`` returns only once the run has ended and its last frame is drawn.
        """
        if self._active_run() is not None:
            self._say("A run is going: press Stop first.", "error")
            return False
        try:
            settings = self.settings()
        except ValueError as exc:
            self._say(f"Not started: {exc}", "error")
            return False
        label, url, reason = self._backends[settings.backend]
        with self._lock:
            if self._closed:
                self._say("This dashboard is closed: make a new one.", "error")
                return False
            previous = self._run
            if self._starting or (previous is not None and not previous.finished.is_set()):
                self._say("A run is going: press Stop first.", "error")
                return False
            if reason:
                self._say(f"Not started: {label} is not available: {reason}", "error")
                return False
            self._starting = True
        try:
            if previous is not None:
                previous.join(_JOIN_TIMEOUT_S)  # its last frame
            try:
                db = connect(
                    url or self._sqlite_url(),
                    max_connections=settings.max_connections,
                    timeout=settings.timeout,
                    stale_timeout=settings.stale_timeout,
                )
            except Exception as exc:
                self._say(f"Not started: {type(exc).__name__}: {exc}", "error")
                return False
            run = _LiveRun(db=db, settings=settings, feed=_EventFeed(db.events))
            run.threads.append(threading.Thread(target=self._work, args=(run,), name="poolviz-runner", daemon=True))
            if self._fps > 0:
                run.threads.append(
                    threading.Thread(
                        target=self._render_loop, args=(run,), name="poolviz-dashboard-render", daemon=True
                    )
                )
            with self._lock:
                self._run = run
                self._resources.runs[:] = [run]
            if previous is not None:
                previous.db.close_all()
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self._say(
                f"Running on {label}: {settings.workers} workers, max_connections {settings.max_connections}, "
                f"for {settings.duration:g} s."
            )
            for thread in run.threads:
                thread.start()
        finally:
            with self._lock:
                self._starting = False
        if wait:
            self.wait()
        return True

    def _sqlite_url(self) -> str:
        with self._lock:
            if self._resources.tempdir is None:
                self._resources.tempdir = tempfile.mkdtemp(prefix="poolviz-dashboard-")
            return f"sqlite+pool:///{Path(self._resources.tempdir) / 'dashboard.db'}"

    def _work(self, run: _LiveRun) -> None:
        # The runner thread: the workload, then (without a render thread) the one frame.
        s = run.settings
        try:
            run.began = time.perf_counter()
            run.deadline = run.began + s.duration
            run.result = run_closed_loop(
                run.db,
                workers=s.workers,
                requests=_UNBOUNDED_REQUESTS,
                hold=s.hold(),
                think=s.think(),
                seed=s.seed,
                stop=run.stop,
                progress=run.progress,
            )
        except Exception as exc:  # a lost server, a full disk: shown, and the dashboard carries on
            logger.exception("poolviz dashboard run failed")
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.finished.set()
            if self._fps <= 0:
                self._draw_safely(run, final=True)
            self._finish(run)

    def _finish(self, run: _LiveRun) -> None:
        self.stop_button.disabled = True
        self.run_button.disabled = self._backends[self.controls["backend"].value][2] is not None
        result = run.result
        if run.error:
            self._say(f"The run failed: {run.error}", "error")
        elif result is not None:
            how = "stopped" if run.stopped_by_user else "finished"
            self._say(
                f"Run {how}: {result.requests_ok} requests in {result.elapsed_s:.1f} s "
                f"({result.throughput_rps:.0f}/s), {result.requests_failed} failed.",
                "ok",
            )

    def _render_loop(self, run: _LiveRun) -> None:
        # The one render thread of a run. It draws at most fps frames a second
        # and, after each frame, pauses long enough that drawing takes at most
        # render_budget of the time: matplotlib holds the GIL while it draws.
        period = 1.0 / self._fps
        cost = 0.0
        while True:
            final = run.finished.is_set()
            started = time.perf_counter()
            if started >= run.deadline:
                run.stop.set()  # also when no request finishes to notice the deadline
            self._draw_safely(run, final)
            if final:
                return
            spent = time.perf_counter() - started
            cost = spent if not cost else 0.7 * cost + 0.3 * spent
            run.finished.wait(max(period - spent, cost / self._budget - cost))

    def _draw_safely(self, run: _LiveRun, final: bool) -> None:
        started = time.perf_counter()
        try:
            self._draw(run, final)
        except Exception as exc:  # a drawing problem must not end the run
            logger.exception("poolviz dashboard could not draw")
            self._say(f"Could not draw: {type(exc).__name__}: {exc}", "error")
        with self._lock:
            self.render_seconds += time.perf_counter() - started

    def _draw(self, run: _LiveRun, final: bool) -> None:
        run.feed.update()
        frame = run.feed.frame
        limit = run.db.max_connections
        if final or not len(frame):
            window = None
        else:
            now = run.db.events.now()
            window = (max(0.0, now - self._window_s), max(now, self._window_s))
        with self._lock:
            resizes = list(run.resizes)
        png = _render_png(frame, self._fig, limit, window, resizes)
        stats = frame_stats(frame)
        stats["max_connections"] = limit
        stats["running"] = not final
        stats["elapsed_s"] = (
            run.result.elapsed_s if final and run.result else time.perf_counter() - run.began if run.began else 0.0
        )
        with self._lock:
            if self._run is not run:
                return
            self.image.value = png
            self.stats.value = _stats_html(stats)
            self.frames_rendered += 1
            self.last_stats = stats
            status = "running" if not final else ("stopped" if run.stopped_by_user else "finished")
            self.status.value = (
                f"<code>{status}: {stats['elapsed_s']:.1f} s of {run.settings.duration:g} s, "
                f"{stats['requests']} requests</code>"
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current run to end and its last frame to be drawn; True when it has."""
        with self._lock:
            run = self._run
        if run is None:
            return True
        return run.join(_JOIN_TIMEOUT_S * 100 if timeout is None else timeout)

    def stop(self, timeout: float = _JOIN_TIMEOUT_S) -> bool:
        """End the current run: workers finish the request in hand, the last frame is drawn, every thread ends.

        Returns True when all the run's threads have ended within ``timeout`` seconds.
        """
        with self._lock:
            run = self._run
            if run is not None and not run.finished.is_set():
                run.stopped_by_user = True
        if run is None:
            return True
        run.stop.set()
        return run.join(timeout)

    def close(self) -> None:
        """Stop, close the pools, remove the temp dir and close the widgets."""
        with self._lock:
            self._closed = True
        self.stop()
        self._finalizer()
        for widget in self._all_widgets:
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _option(problems: list[str], name: str, value: Any, ok: Callable[[Any], bool], allowed: str, default: Any) -> Any:
    if ok(value):
        return value
    problems.append(f"{name} must be {allowed}, got {value!r}; using {default!r}")
    return default


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return f"url must be a string like 'sqlite+pool:///app.db', got {url!r}"
    scheme = url.partition("://")[0].lower()
    if scheme not in POOL_SCHEMES:
        return f"the URL scheme must be one of {', '.join(POOL_SCHEMES)}"
    return None


def _set_within(control: Any, value: float) -> None:
    # A valid value beyond the slider's range widens the range rather than being clamped.
    if value > control.max:
        control.max = value
    if value < control.min:
        control.min = value
    control.value = value


_NOTHING = object()


class _Latest:
    """Runs ``job`` on the latest argument asked for, in a thread that ends when nothing is left to do.

    A request that arrives while the job runs replaces any that waited, so a
    fast Play widget never builds a backlog of frames.
    """

    def __init__(self, name: str, job: Callable[[Any], None]) -> None:
        self._name = name
        self._job = job
        self._lock = threading.Lock()
        self._pending: Any = _NOTHING
        self._thread: threading.Thread | None = None

    def request(self, arg: Any) -> None:
        with self._lock:
            self._pending = arg
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                arg, self._pending = self._pending, _NOTHING
                if arg is _NOTHING:
                    self._thread = None
                    return
            try:
                self._job(arg)
            except Exception:
                logger.exception("poolviz %s failed", self._name)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or being done; True when idle."""
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return True
            thread.join(None if until is None else max(0.0, until - time.monotonic()))
            if until is not None and time.monotonic() >= until:
                with self._lock:
                    return self._thread is None


class Replay:
    """A recorded trace played back: a Play widget linked to a time slider, the dashboard drawn up to that moment.

    ``events`` is an :class:`~poolviz.events.EventLog` (or a pool), a frame
    from ``to_frame()`` or the path of a trace saved with
    :func:`poolviz.traces.save_events`. The plots show the events with
    ``t <= `` the slider's time, on the whole trace's time axis (or a moving
    window of ``window_s`` seconds). ``steps`` is how many frames a full play
    takes, ``interval_ms`` the pause between them.
    """

    def __init__(self, events: Any, *, steps: int = 100, interval_ms: int = 400, window_s: float | None = None) -> None:
        self.frame = as_frame(events)
        steps = positive_int("steps", steps)
        self._window_s = window_s
        self._fig = _new_figure()
        self._lock = threading.Lock()
        self.frames_rendered = 0
        self.last_stats: dict[str, Any] = {}
        self.shown_t: float | None = None
        t = self.frame["t"].to_numpy(dtype=float)
        self.t_end = float(t.max()) if len(t) else 0.0
        # From 0 when the trace starts from an empty pool, else from its first event (see poolviz.analysis).
        self.t_start = self.t_end - analysis.span(self.frame) if len(t) else 0.0
        step = (self.t_end - self.t_start) / steps if self.t_end > self.t_start else 1.0
        self.play = _classed(
            widgets.Play(value=steps, min=0, max=steps, step=1, interval=interval_ms, description="play"),
            "poolviz-replay-play",
        )
        self.slider = _classed(
            widgets.FloatSlider(
                value=self.t_end,
                min=self.t_start,
                max=max(self.t_end, self.t_start + step),
                step=step,
                description="t (s)",
                continuous_update=False,
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
        self.message = _classed(widgets.HTML(), "poolviz-message")
        self.image = _classed(
            widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="1100px")), "poolviz-image"
        )
        self.stats = _classed(widgets.HTML(), "poolviz-stats")
        self.widget = _classed(
            widgets.VBox(
                [
                    widgets.HBox([self.play, self.slider]),
                    self.message,
                    self.stats,
                    self.image,
                ]
            ),
            "poolviz-replay",
        )
        self._painter = _Latest("poolviz-replay-render", self._draw)
        self.slider.observe(lambda change: self._painter.request(change["new"]), names="value")
        if self.frame.empty:
            self.message.value = _message_html("This trace holds no events.", "error")
        self._painter.request(self.slider.value)

    def seek(self, t: float, wait: bool = True, timeout: float = 30.0) -> bool:
        """Show the trace up to ``t`` seconds (moving the slider); with ``wait``, return once it is drawn."""
        if self.slider.value != t:
            self.slider.value = t
        else:
            self._painter.request(t)
        return self.wait(timeout) if wait else True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the frame asked for last is drawn; True when it is."""
        return self._painter.wait(timeout)

    def _draw(self, t: float) -> None:
        upto = self.frame[self.frame["t"] <= t]
        upto.attrs = dict(self.frame.attrs)
        window: tuple[float, float] | None
        if self._window_s is not None:
            window = (max(self.t_start, t - self._window_s), max(t, self.t_start + self._window_s))
        else:
            window = (self.t_start, self.t_end) if self.t_end > self.t_start else None
        png = _render_png(upto, self._fig, window=window)
        stats = frame_stats(upto)
        with self._lock:
            self.image.value = png
            self.stats.value = _stats_html(stats, f"up to t = {t:.3f} s")
            self.last_stats = stats
            self.shown_t = t
            self.frames_rendered += 1

    def close(self) -> None:
        """Stop playing, wait for the drawing thread and close the widgets."""
        self.play.playing = False
        self._link.unlink()
        self._painter.wait(_JOIN_TIMEOUT_S)
        for widget in (self.play, self.slider, self.message, self.image, self.stats, self.widget):
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


_POOL_KEYS = ("max_connections", "timeout", "stale_timeout")
_WORKLOAD_DEFAULTS: dict[str, Any] = {
    "max_connections": 4,
    "workers": 8,
    "requests": 20,
    "hold": "exp:0.02",
    "think": 0.0,
    "seed": 0,
    "timeout": 10.0,
    "stale_timeout": None,
}


class Compare:
    """The same workload run under two or more pool configurations, one after the other, shown side by side.

    ``configs`` are pool settings (``max_connections``, ``timeout``,
    ``stale_timeout``, and an optional ``label``); ``workload`` holds
    :func:`~poolviz.workload.run_closed_loop`'s ``workers``, ``requests`` (per
    worker), ``hold``, ``think`` and ``seed``, plus pool settings shared by
    every config. Each config gets a fresh pool on ``url`` (default: a SQLite
    file in a temp dir). Press Run, or call :meth:`run`; each config's
    picture and numbers appear as soon as it is done, and :attr:`table` holds
    one row per config.
    """

    def __init__(
        self,
        url: str | None = None,
        configs: Sequence[Mapping[str, Any]] = ({"max_connections": 2}, {"max_connections": 8}),
        **workload: Any,
    ) -> None:
        self._lock = threading.Lock()
        self._url = url
        self._tempdir: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.table = pd.DataFrame()
        self.results: list[WorkloadResult | None] = []
        self.frames_rendered = 0
        self.message = _classed(widgets.HTML(), "poolviz-message")
        self.run_button = _classed(
            widgets.Button(description="Run", button_style="success", icon="play"), "poolviz-run"
        )
        self.stop_button = _classed(
            widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True), "poolviz-stop"
        )
        self.table_html = _classed(widgets.HTML(), "poolviz-compare-table")
        self.problem = ""
        try:
            self.configs, self.workload = _check_compare(url, configs, workload)
        except (ValueError, TypeError) as exc:
            self.problem = str(exc)
            self.configs, self.workload = [], dict(_WORKLOAD_DEFAULTS)
        self.titles = [
            _classed(widgets.HTML(f"<b>{html.escape(c['label'])}</b>"), "poolviz-compare-title") for c in self.configs
        ]
        self.progress = [
            _classed(
                widgets.IntProgress(value=0, min=0, max=self.workload["workers"] * self.workload["requests"]),
                "poolviz-compare-progress",
            )
            for _ in self.configs
        ]
        self.images = [
            _classed(widgets.Image(format="png", layout=widgets.Layout(width="100%")), "poolviz-image")
            for _ in self.configs
        ]
        self.stats = [_classed(widgets.HTML(), "poolviz-stats") for _ in self.configs]
        columns = [
            widgets.VBox(
                [title, bar, image, stats], layout=widgets.Layout(width=f"{100 / max(1, len(self.configs)):.0f}%")
            )
            for title, bar, image, stats in zip(self.titles, self.progress, self.images, self.stats, strict=True)
        ]
        w = self.workload
        about = widgets.HTML(
            f"Same workload for each: {w['workers']} workers × {w['requests']} requests, "
            f"hold {html.escape(str(w['hold']))}, think {html.escape(str(w['think']))}."
        )
        self.widget = _classed(
            widgets.VBox(
                [
                    about,
                    widgets.HBox([self.run_button, self.stop_button]),
                    self.message,
                    widgets.HBox(columns),
                    self.table_html,
                ]
            ),
            "poolviz-compare",
        )
        self.run_button.on_click(lambda _b: self._guarded(self.run))
        self.stop_button.on_click(lambda _b: self._guarded(self.stop))
        if self.problem:
            self.run_button.disabled = True
            self._say(self.problem, "error")

    def _guarded(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            logger.exception("poolviz compare callback failed")
            self._say(f"{type(exc).__name__}: {exc}", "error")

    def _say(self, text: str, level: str = "info") -> None:
        self.message.value = _message_html(text, level)

    def run(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Run every config in turn in a background thread; True when it started (``wait``: and finished)."""
        if self.problem:
            self._say(self.problem, "error")
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._say("Already running: press Stop first.", "error")
                return False
            self._stop.clear()
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._work, name="poolviz-compare-run", daemon=True)
            self._thread.start()
        if wait:
            return self.wait(timeout)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every config has run; True when done."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self, timeout: float = _JOIN_TIMEOUT_S) -> bool:
        """End the comparison early (the config running finishes its requests in hand); True when its thread ended."""
        self._stop.set()
        return self.wait(timeout)

    def _work(self) -> None:
        rows: list[dict[str, Any]] = []
        self.results = [None] * len(self.configs)
        w = self.workload
        fig = _new_figure()
        try:
            for i, config in enumerate(self.configs):
                if self._stop.is_set():
                    break
                self._say(f"Running {config['label']} ({i + 1} of {len(self.configs)})…")
                pool = {key: config.get(key, w.get(key)) for key in _POOL_KEYS}
                db = connect(self._url or self._sqlite_url(), **pool)
                try:
                    result = run_closed_loop(
                        db,
                        w["workers"],
                        w["requests"],
                        w["hold"],
                        w["think"],
                        w["seed"],
                        self._stop,
                        self._progress(self.progress[i]),
                    )
                finally:
                    db.close_all()
                self.results[i] = result
                frame = result.events
                stats = frame_stats(frame)
                self.images[i].value = _render_png(frame, fig, pool["max_connections"])
                self.stats[i].value = _stats_html(stats)
                self.progress[i].value = result.requests
                self.frames_rendered += 1
                rows.append(
                    {
                        "config": config["label"],
                        **pool,
                        "requests": result.requests,
                        "failed": result.requests_failed,
                        "elapsed_s": result.elapsed_s,
                        "throughput_rps": result.throughput_rps,
                        "wait_p50_s": stats["wait_p50_s"],
                        "wait_p95_s": stats["wait_p95_s"],
                        "timeouts": stats["timeouts"],
                        "connections_opened": stats["connections_opened"],
                    }
                )
                self.table = pd.DataFrame(rows).set_index("config")
                self.table_html.value = self.table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="–")
            done = "Stopped" if self._stop.is_set() else "Done"
            self._say(f"{done}: {len(rows)} of {len(self.configs)} configurations ran.", "ok")
        except Exception as exc:
            logger.exception("poolviz compare failed")
            self._say(f"The comparison failed: {type(exc).__name__}: {exc}", "error")
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True

    def _progress(self, bar: Any) -> Callable[[int, int | None], None]:
        # One widget message per request would flood the frontend: at most ten a second.
        last = [0.0]

        def report(done: int, _total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                bar.value = done

        return report

    def _sqlite_url(self) -> str:
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix="poolviz-compare-")
            weakref.finalize(self, shutil.rmtree, self._tempdir, ignore_errors=True)
        return f"sqlite+pool:///{Path(self._tempdir) / 'compare.db'}"

    def close(self) -> None:
        """Stop, remove the temp dir and close the widgets."""
        self.stop()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _check_compare(
    url: str | None, configs: Any, workload: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if url is not None:
        problem = _url_problem(url)
        if problem:
            raise ValueError(f"url: {problem}")
    unknown = sorted(set(workload) - set(_WORKLOAD_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown workload setting(s) {', '.join(unknown)}; use {', '.join(_WORKLOAD_DEFAULTS)}")
    w = {**_WORKLOAD_DEFAULTS, **workload}
    w["workers"] = positive_int("workers", w["workers"])
    w["requests"] = positive_int("requests", w["requests"])
    Distribution.parse(w["hold"], "hold")
    Distribution.parse(w["think"], "think")
    if not _is_int(w["seed"]):
        raise ValueError(f"seed must be an integer, got {w['seed']!r}")
    if isinstance(configs, (str, Mapping)) or not isinstance(configs, Sequence) or len(configs) < 1:
        raise ValueError(f"configs must be a list of dicts of pool settings, got {configs!r}")
    checked = []
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise ValueError(f"configs[{i}] must be a dict like {{'max_connections': 4}}, got {config!r}")
        extra = sorted(set(config) - {*_POOL_KEYS, "label"})
        if extra:
            raise ValueError(f"configs[{i}] has unknown key(s) {', '.join(extra)}; use {', '.join(_POOL_KEYS)}, label")
        merged = {key: config.get(key, w[key]) for key in _POOL_KEYS}
        try:
            _check_setting("max_connections", merged["max_connections"])
            check_pool_args(merged["max_connections"], merged["stale_timeout"], merged["timeout"])
        except ValueError as exc:
            raise ValueError(f"configs[{i}]: {exc}") from None
        label = (
            config.get("label") or ", ".join(f"{k}={config[k]}" for k in _POOL_KEYS if k in config) or f"config {i + 1}"
        )
        checked.append({**dict(config), "label": str(label)})
    return checked, w
