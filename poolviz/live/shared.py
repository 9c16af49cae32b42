"""What the live widgets share: their numbers, their messages, a PNG export and small widget helpers.

The dashboard, the replay and the comparison all show the same numbers for a
trace (:func:`frame_stats`, computed once a run has ended, never per frame),
write messages the same way, and export the window on screen as a PNG through
:mod:`poolviz.plots`.
"""

from __future__ import annotations

import html
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..credentials import mask_url
from ..data import analysis
from ..servers import reachability as servers
from ..units import duration
from ..urls import POOL_SCHEMES
from .settings import BACKEND_LABELS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger("poolviz.live")

JOIN_TIMEOUT_S = 30.0
_RESIZE_COLOUR = "tab:purple"


def closed_loop_workers(workers: int) -> list[str]:
    """The thread names of a closed loop's ``workers`` (``worker-0`` ...), as run_closed_loop names them.

    Per-worker service is reported for these, so a worker that never got a
    connection still counts (with zero checkouts), and the run's set-up
    thread does not.
    """
    return [f"worker-{i}" for i in range(workers)]


def frame_stats(frame: pd.DataFrame, now: float | None = None, workers: Sequence[str] | None = None) -> dict[str, Any]:
    """The numbers a live view shows for a trace, computed with :mod:`poolviz.data.analysis`.

    Waits still going at ``now`` (default: the last event) count at their age
    so far, as in the view's strip. The keys are those marked F in the table of
    summary keys in :mod:`poolviz.data.analysis` (the pool's state named as
    :meth:`~poolviz.EventLog.get_stats` names it: ``pool_max``, ``pool_size``,
    ``pool_available``, ``requests_waiting``, ``events_dropped``), with
    per-worker service of ``workers`` (default: every thread that asked):
    ``workers``, ``checkouts_min``, ``checkouts_median``, ``checkouts_max``,
    ``starved``, ``longest_wait_s``, ``longest_wait_thread``. NaN where a
    figure is undefined (no requests yet). The old names ``idle``, ``waiting``
    and ``max_connections`` repeat ``pool_available``, ``requests_waiting`` and
    ``pool_max`` for readers not moved yet.
    """
    waits = analysis.wait_stats(frame, now)
    fair = analysis.fairness_stats(frame, workers, now)
    kinds = frame["kind"]
    stats: dict[str, Any] = {
        "events": len(frame),
        "requests": int(waits["count"] - waits["in_progress"]),
        "throughput_rps": analysis.throughput(frame),
        "wait_p50_s": waits["p50_s"],
        "wait_p95_s": waits["p95_s"],
        "wait_p99_s": waits["p99_s"],
        "wait_max_s": waits["max_s"],
        "waiting_now": int(waits["in_progress"]),
        "oldest_wait_s": waits["oldest_wait_s"],
        **{key: fair[key] for key in _SERVICE_KEYS},
        "timeouts": analysis.timeouts(frame),
        "connections_opened": int((kinds == "connect").sum()),
        "connections_closed": int((kinds == "close").sum()),
        **analysis.pool_counts(frame),
        "events_dropped": int(frame.attrs.get("dropped", 0)),
    }
    return stats


_SERVICE_KEYS = (
    "workers",
    "checkouts_min",
    "checkouts_median",
    "checkouts_max",
    "starved",
    "longest_wait_s",
    "longest_wait_thread",
)


def _number(value: Any, unit: str = "", scale: float = 1.0, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value}{unit}"
    return f"{value * scale:.{digits}g}{unit}"


def stats_html(stats: Mapping[str, Any], title: str = "") -> str:
    """One header row and one value row; each value cell has a class ``poolviz-stat-<key>`` to find it by."""
    limit = stats.get("pool_max")
    longest = stats.get("longest_wait_thread") or ""
    cells = [
        ("throughput", "throughput", _number(stats["throughput_rps"], " req/s")),
        (
            "wait",
            "wait p50 / p95 / p99 (ongoing counted)",
            " / ".join(duration(stats[key]) for key in ("wait_p50_s", "wait_p95_s", "wait_p99_s")),
        ),
        ("oldest_wait", "waiting now (oldest)", f"{stats['waiting_now']} ({duration(stats['oldest_wait_s'])})"),
        (
            "checkouts_per_worker",
            "checkouts per worker (min / median / max)",
            " / ".join(_number(stats[key]) for key in ("checkouts_min", "checkouts_median", "checkouts_max")),
        ),
        ("longest_wait", "longest wait", f"{duration(stats['longest_wait_s'])} {longest}".strip()),
        # Every checkout of the pool (set-up and clean-up included), so it can exceed the run's requests.
        ("requests", "pool checkouts", str(stats["requests"])),
        ("timeouts", "timeouts", str(stats["timeouts"])),
        ("connections", "opened / closed", f"{stats['connections_opened']} / {stats['connections_closed']}"),
        (
            "now",
            "in use / idle / waiting",
            f"{stats['in_use']} / {stats['pool_available']} / {stats['requests_waiting']}",
        ),
        ("max_connections", "max_connections", "no limit" if not limit else str(limit)),
        ("events", "events (dropped)", f"{stats['events']} ({stats['events_dropped']})"),
    ]
    pad = "padding:1px 10px;text-align:left;vertical-align:bottom"
    # Labels may wrap onto a few lines; values never do (a wait of "4.03 s" split in two reads wrong).
    head = "".join(f'<th style="{pad};max-width:10em">{html.escape(label)}</th>' for _key, label, _value in cells)
    cell = f"{pad};font-family:monospace;white-space:nowrap"
    values = "".join(
        f'<td class="poolviz-stat-{key}" style="{cell}">{html.escape(value)}</td>' for key, _label, value in cells
    )
    heading = f"<b>{html.escape(title)}</b>" if title else ""
    return f'{heading}<table style="font-size:12px;border-collapse:collapse"><tr>{head}</tr><tr>{values}</tr></table>'


def dashboard_figure(
    frame: pd.DataFrame,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
    resizes: Sequence[tuple[float, int, int]] = (),
    workers: Sequence[str] | None = None,
) -> Figure:
    """The dashboard picture of ``frame`` (the ``window`` on screen), drawn by :mod:`poolviz.plots`.

    ``workers`` names the run's workers, so the per-worker numbers leave out the set-up thread.
    """
    from matplotlib.figure import Figure

    from ..plots import plot_dashboard

    fig = Figure(figsize=(12.0, 7.0), dpi=100, layout="constrained")
    plot_dashboard(frame, fig=fig, max_connections=max_connections, window=window, threads=workers)
    occupancy_ax = fig.axes[1]
    for t, old, new in resizes:
        occupancy_ax.axvline(t, color=_RESIZE_COLOUR, linestyle=":", linewidth=1.5)
        occupancy_ax.annotate(f"{old}→{new}", (t, 0.98), xycoords=("data", "axes fraction"), color=_RESIZE_COLOUR)
    return fig


def save_png(
    frame: pd.DataFrame,
    path: str | Path,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
    resizes: Sequence[tuple[float, int, int]] = (),
    workers: Sequence[str] | None = None,
) -> Path:
    """Write the dashboard picture of ``frame`` (the ``window`` on screen) to ``path`` with :mod:`poolviz.plots`."""
    from ..plots import save_png as save_figure

    path = Path(path)
    save_figure(dashboard_figure(frame, max_connections, window, resizes, workers), path)
    return path


def classed(widget: Any, css_class: str) -> Any:
    """``widget`` with ``css_class`` added (tests and the browser find widgets by class)."""
    widget.add_class(css_class)
    return widget


def message_html(text: str, level: str) -> str:
    """A message line: ``error`` in red with a warning sign, ``ok`` in green with a tick."""
    colour = {"error": "#b00020", "ok": "#1b5e20"}.get(level, "#333")
    icon = {"error": "⚠ ", "ok": "✓ "}.get(level, "")
    return f'<span style="color:{colour}">{icon}{html.escape(text)}</span>' if text else ""


def url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return f"url must be a string like 'sqlite+pool:///app.db', got {url!r}"
    scheme = url.partition("://")[0].lower()
    if scheme not in POOL_SCHEMES:
        return f"the URL scheme must be one of {', '.join(POOL_SCHEMES)}"
    return None


def set_within(control: Any, value: float) -> None:
    # A valid value beyond the slider's range widens the range rather than being clamped.
    if value > control.max:
        control.max = value
    if value < control.min:
        control.min = value
    control.value = value


_NOTHING = object()


class Latest:
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


def find_backends(url: str | None, check_servers: bool, problems: list[str]) -> dict[str, Any]:
    """The dashboard's backends: key -> (label, url, reason it is unavailable or None).

    ``url`` (a ``+pool`` URL) comes first when given; SQLite always works; MariaDB and PostgreSQL
    are listed with the reason when :func:`poolviz.servers.reachable` says they do not answer.
    A problem with ``url`` is appended to ``problems``.
    """
    found: dict[str, Any] = {}
    if url is not None:
        reason = url_problem(url)
        if reason is None and check_servers:
            reason = servers.reachable(url, timeout=1.0)
        shown = mask_url(url) if isinstance(url, str) else repr(url)
        found["url"] = (shown, url, reason)
        if reason:
            problems.append(f"{shown}: {reason}")
    found["sqlite"] = (BACKEND_LABELS["sqlite"], None, None)
    for key, server_url in (("mysql", servers.mysql_url()), ("postgresql", servers.postgres_url())):
        reason = servers.reachable(server_url, timeout=1.0) if check_servers else "server checks are off"
        found[key] = (BACKEND_LABELS[key], server_url, reason)
    return found


def option(problems: list[str], check: Callable[[], Any], default: Any) -> Any:
    """``check()``, or ``default`` with the problem appended to ``problems`` (a bad option is a message)."""
    try:
        return check()
    except ValueError as exc:
        problems.append(f"{exc}; using {default!r}")
        return default
