"""Matplotlib pictures of a pool trace: timeline, occupancy, waits, pool-size sweeps, a dashboard.

Every helper takes the frame from :meth:`poolviz.EventLog.to_frame`, draws on
the ``ax`` it is given (or on a new headless :class:`~matplotlib.figure.Figure`
when ``ax`` is None) and returns the Axes. Nothing here imports pyplot, shows a
window or touches rcParams, so the helpers work the same in a notebook, a
widget and a script on a server.

Large traces stay cheap to draw because each kind of mark is one artist: all
holds are a single :class:`~matplotlib.collections.PolyCollection`, all waits a
single :class:`~matplotlib.collections.LineCollection`, so a hundred thousand
holds cost one artist, not a hundred thousand.
"""

from __future__ import annotations

import io
import os
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .analysis import hold_intervals, occupancy, span, summarize, wait_stats

MAX_LEGEND_THREADS = 10
"""With more worker threads than this, the timeline colours them from a colour map and lists none."""

CLOSE_MARKERS: dict[str, tuple[str, str]] = {
    "stale": ("x", "tab:red"),
    "broken": ("X", "black"),
    "not_reusable": ("D", "tab:purple"),
    "stale_in_use": ("*", "tab:red"),
    "idle": ("v", "tab:gray"),
    "manual": ("s", "tab:brown"),
    "all": ("|", "tab:gray"),
}
"""Marker and colour for each close reason on the timeline."""

_BAR_HEIGHT = 0.8
_WAIT_ROWS = 8


def _new_axes(ax: Axes | None) -> Axes:
    """``ax``, or the Axes of a new headless Figure (no pyplot, no GUI backend)."""
    if ax is not None:
        return ax
    return Figure(layout="constrained").add_subplot()


def _check_window(window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    try:
        t0, t1 = (float(x) for x in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a pair (t0, t1) of seconds, got {window!r}") from None
    if not t0 < t1:
        raise ValueError(f"window must have t0 < t1, got {window!r}")
    return t0, t1


def _kind_is(frame: pd.DataFrame, *kinds: str) -> np.ndarray:
    return np.asarray(frame["kind"].isin(kinds), dtype=bool)


def _thread_colours(count: int) -> np.ndarray:
    """``count`` RGBA rows: the distinct tab10 colours when they suffice, else a colour map."""
    if count <= MAX_LEGEND_THREADS:
        rgba: np.ndarray = matplotlib.colormaps["tab10"](np.arange(count))
    else:
        rgba = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, count))
    return rgba


def _boxes(x0: np.ndarray, x1: np.ndarray, y: np.ndarray, height: float) -> Any:
    """An (N, 4, 2) array of rectangles, which PolyCollection takes without a Python loop.

    Typed ``Any`` because matplotlib's stubs ask for a sequence of polygons,
    while the array is what lets it skip converting them one by one.
    """
    low, high = y - height / 2, y + height / 2
    return np.stack([np.column_stack(corner) for corner in ((x0, low), (x0, high), (x1, high), (x1, low))], axis=1)


def _segments(x0: np.ndarray, x1: np.ndarray, y: np.ndarray) -> Any:
    """An (N, 2, 2) array of horizontal segments for a LineCollection (see :func:`_boxes`)."""
    return np.stack([np.column_stack((x0, y)), np.column_stack((x1, y))], axis=1)


def plot_timeline(frame: pd.DataFrame, ax: Axes | None = None, window: tuple[float, float] | None = None) -> Axes:
    """One lane per connection with a bar per hold, coloured by the worker thread that held it.

    Closes are marked on their connection's lane, one marker per reason (see
    :data:`CLOSE_MARKERS`), and leak reports (``leak`` events) with an orange
    ring. The lane at the bottom shows waits: a line from the moment a caller
    started waiting to its checkout (in its thread's colour), or to its
    timeout (red, ending in a cross). A hold still open at the end
    of the trace runs to the last event. ``window=(t0, t1)`` shows only that
    stretch of time and draws only the marks that overlap it, for a moving
    live view; the lanes then span the connections seen in the window. Thread
    colours follow each thread's first request in the trace, so they stay put
    as a live trace grows.
    """
    ax = _new_axes(ax)
    shown = _check_window(window)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("connection")
    if frame.empty:
        ax.set_title("Connection holds (no events)")
        return ax

    t = frame["t"].to_numpy(dtype=float)
    t_end = float(t.max())
    requests = _kind_is(frame, "checkout", "timeout")
    threads = pd.Index(pd.unique(frame["thread"].to_numpy(dtype=object)[requests]))
    colours = _thread_colours(len(threads))

    holds = hold_intervals(frame)
    start = holds["start"].to_numpy(dtype=float)
    end = holds["end"].fillna(t_end).to_numpy(dtype=float)
    waits = holds["wait_s"].to_numpy(dtype=float)
    outs = frame.loc[_kind_is(frame, "timeout")]
    out_t = outs["t"].to_numpy(dtype=float)
    out_wait = outs["wait_s"].to_numpy(dtype=float)
    closes = frame.loc[_kind_is(frame, "close") & (frame["conn"].to_numpy() != 0)]
    leaks = frame.loc[_kind_is(frame, "leak")]
    if shown is not None:
        t0, t1 = shown
        keep = (end >= t0) & (start - waits <= t1)
        holds, start, end, waits = holds.loc[keep], start[keep], end[keep], waits[keep]
        keep_out = (out_t >= t0) & (out_t - out_wait <= t1)
        outs, out_t, out_wait = outs.loc[keep_out], out_t[keep_out], out_wait[keep_out]
        closes = closes.loc[closes["t"].between(t0, t1)]
        leaks = leaks.loc[leaks["t"].between(t0, t1)]

    hold_thread = threads.get_indexer(holds["thread"])
    lanes = holds["conn"].to_numpy(dtype=float)
    bars = PolyCollection(
        _boxes(start, end, lanes, _BAR_HEIGHT),
        facecolors=colours[hold_thread],
        edgecolors="none",
        linewidths=0,
    )
    ax.add_collection(bars, autolim=False)

    # The lanes shown are those of the connections with marks in view (all of
    # them without a window: serials start at 1); waits get the lane below.
    shown_conns = np.unique(np.concatenate([holds["conn"].to_numpy(), closes["conn"].to_numpy()]))
    wait_lane = int(shown_conns.min()) - 1 if len(shown_conns) else 0
    top = int(shown_conns.max()) if len(shown_conns) else 1

    # Waits share one lane; spreading them over a few rows by thread keeps
    # concurrent waits from hiding each other.
    def wait_rows(thread_index: np.ndarray) -> np.ndarray:
        rows = thread_index % _WAIT_ROWS
        return wait_lane + _BAR_HEIGHT * ((rows + 0.5) / _WAIT_ROWS - 0.5)

    waited = waits > 0
    y_wait = wait_rows(hold_thread[waited])
    y_out = wait_rows(threads.get_indexer(outs["thread"]))
    segments: Any = np.concatenate(
        [
            _segments(start[waited] - waits[waited], start[waited], y_wait),
            _segments(out_t - out_wait, out_t, y_out),
        ]
    )
    segment_colours = np.concatenate([colours[hold_thread[waited]], np.tile(to_rgba("tab:red"), (len(out_t), 1))])
    if len(segments):
        lines = LineCollection(segments, colors=segment_colours, linewidths=1.5, label="wait")
        ax.add_collection(lines, autolim=False)
    if len(out_t):
        ax.scatter(out_t, y_out, marker="x", color="tab:red", s=25, label="timeout", zorder=3)

    if len(leaks):
        ax.scatter(
            leaks["t"], leaks["conn"], marker="o", facecolors="none", edgecolors="tab:orange", s=60, label="leak"
        )
    for reason, group in closes.groupby("reason", sort=True):
        marker, colour = CLOSE_MARKERS.get(str(reason), ("o", "tab:olive"))
        ax.scatter(group["t"], group["conn"], marker=marker, color=colour, s=40, label=f"close: {reason}", zorder=3)

    ax.set_ylim(wait_lane - 0.6, top + 0.6)
    if len(shown_conns) <= 20:
        lanes_ticked = shown_conns.tolist()
    else:
        ticks = MaxNLocator(nbins=8, integer=True).tick_values(wait_lane + 1, top)
        lanes_ticked = [int(y) for y in ticks if wait_lane < y <= top]
    ax.set_yticks([wait_lane, *lanes_ticked], ["waits", *(str(c) for c in lanes_ticked)])
    if shown is not None:
        ax.set_xlim(*shown)
    elif span(frame) > 0:
        ax.set_xlim(t_end - span(frame), t_end)

    handles, _labels = ax.get_legend_handles_labels()
    if len(threads) <= MAX_LEGEND_THREADS:
        handles = [Patch(color=colours[i], label=str(name)) for i, name in enumerate(threads)] + handles
        ax.set_title("Connection holds (colour: thread)")
    else:
        ax.set_title(f"Connection holds (colour: thread, {len(threads)} threads)")
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def plot_occupancy(
    frame: pd.DataFrame,
    ax: Axes | None = None,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
) -> Axes:
    """Connections in use and idle, and callers waiting, as step lines over time.

    A dashed line marks ``max_connections`` (default: the limit recorded in
    ``frame.attrs``). ``window=(t0, t1)`` shows only that stretch of time.
    """
    ax = _new_axes(ax)
    shown = _check_window(window)
    occ = occupancy(frame)
    if shown is not None and len(occ):
        t = occ["t"].to_numpy(dtype=float)
        # Keep the row in force at t0 as well, so the lines start at the window's edge.
        first = max(int(np.searchsorted(t, shown[0], side="right")) - 1, 0)
        last = int(np.searchsorted(t, shown[1], side="right"))
        occ = occ.iloc[first:last]
    for column, label, colour in (
        ("in_use", "in use", "tab:blue"),
        ("idle", "idle", "tab:green"),
        ("waiting", "waiting", "tab:red"),
    ):
        ax.step(occ["t"], occ[column], where="post", label=label, color=colour)
    limit = max_connections if max_connections is not None else frame.attrs.get("max_connections")
    if limit:
        ax.axhline(limit, linestyle="--", color="tab:gray", label=f"max_connections = {limit}")
    if shown is not None:
        ax.set_xlim(*shown)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("count")
    ax.set_title("Pool occupancy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def plot_waits(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The cumulative distribution of request waits (checkouts and timeouts), p50/p95/p99 marked.

    Requests that did not wait sit at 0, so the curve's height there is the
    share that got a connection at once.
    """
    ax = _new_axes(ax)
    ax.set_xlabel("wait (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Waits for a connection")
    waits_ms = np.sort(frame.loc[_kind_is(frame, "checkout", "timeout"), "wait_s"].to_numpy(dtype=float)) * 1000.0
    if not len(waits_ms):
        ax.text(0.5, 0.5, "no requests", transform=ax.transAxes, ha="center", va="center")
        return ax
    fractions = np.arange(1, len(waits_ms) + 1) / len(waits_ms)
    ax.step(np.r_[0.0, waits_ms], np.r_[0.0, fractions], where="post", color="tab:blue", label="requests")
    stats = wait_stats(frame)
    for key, style in (("p50_s", ":"), ("p95_s", "--"), ("p99_s", "-.")):
        value_ms = stats[key] * 1000.0
        ax.axvline(value_ms, linestyle=style, color="tab:gray", label=f"{key[:3]} = {value_ms:.3g} ms")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize="small")
    return ax


# The sweep columns (analysis.SWEEP_COLUMNS) that plot_sweep cannot do without.
_SWEEP_NEEDS = ("max_connections", "throughput_rps", "wait_p95_s")


def plot_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Throughput and p95 wait against pool size, the Erlang C prediction beside the measured p95.

    ``sweep`` has one row per pool size with at least the columns
    ``max_connections``, ``throughput_rps`` and ``wait_p95_s`` (see
    ``analysis.SWEEP_COLUMNS``) and optionally ``predicted_wait_p95_s``.
    Throughput is on ``ax`` (left
    axis), waits on a twin axis sharing x (``ax.twinx()``, on the right).
    Infinite predictions (an unstable pool) are left out.
    """
    missing = [c for c in _SWEEP_NEEDS if c not in sweep.columns]
    if missing:
        raise ValueError(f"sweep needs the columns {list(_SWEEP_NEEDS)}, missing {missing}")
    ax = _new_axes(ax)
    rows = sweep.sort_values("max_connections")
    x = rows["max_connections"].to_numpy(dtype=float)
    ax.plot(x, rows["throughput_rps"].to_numpy(dtype=float), "o-", color="tab:blue", label="throughput")
    ax.set_xlabel("max_connections (pool size)")
    ax.set_ylabel("throughput (requests/s)", color="tab:blue")
    twin = ax.twinx()
    twin.plot(x, rows["wait_p95_s"].to_numpy(dtype=float), "s-", color="tab:orange", label="p95 wait, measured")
    if "predicted_wait_p95_s" in rows.columns:
        predicted = rows["predicted_wait_p95_s"].to_numpy(dtype=float)
        predicted = np.where(np.isfinite(predicted), predicted, np.nan)
        twin.plot(x, predicted, "^--", color="tab:orange", alpha=0.7, label="p95 wait, Erlang C")
    twin.set_ylabel("p95 wait (s)", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, loc="center right", fontsize="small")
    ax.set_title("Pool size sweep")
    return ax


def _format_stats(summary: dict[str, Any]) -> str:
    def number(key: str, unit: str = "", scale: float = 1.0) -> str:
        value = summary[key]
        return "-" if value is None else f"{value * scale:.3g}{unit}"

    def ms(key: str) -> str:
        return number(key, " ms", 1e3)

    reasons = ", ".join(f"{k} {v}" for k, v in summary["closed_by_reason"].items()) or "none"
    lines = [
        f"requests       {summary['requests']}  (timeouts {summary['timeouts']})",
        f"throughput     {number('throughput_rps', ' /s')}",
        f"utilisation    {number('utilisation', ' %', 100.0)}",
        f"waited         {summary['waited']}",
        f"wait p50/p95   {ms('wait_p50_s')} / {ms('wait_p95_s')}",
        f"wait p99/max   {ms('wait_p99_s')} / {ms('wait_max_s')}",
        f"mean hold      {ms('hold_mean_s')}  ({summary['holds_open']} open)",
        f"connections    {summary['connections_opened']} opened, {summary['connections_closed']} closed",
        f"closed by      {reasons}",
        f"Little's law   L = {number('littles_L')},  λW = {number('littles_L_from_lambda_W')}",
        f"span           {number('span_s', ' s')}  ({summary['events']} events, {summary['dropped_events']} dropped)",
    ]
    return "\n".join(lines)


def plot_dashboard(
    frame: pd.DataFrame,
    fig: Figure | None = None,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
) -> Figure:
    """Timeline, occupancy, waits and key numbers of a trace on one 2x2 figure.

    Pass the same ``fig`` again to redraw it in place (it is cleared first), as
    a live view does on each tick; ``window`` applies to the timeline and the
    occupancy, while the waits and numbers cover the whole trace.
    """
    if fig is None:
        fig = Figure(figsize=(13, 8), layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(2, 2)
    plot_timeline(frame, axes[0, 0], window=window)
    plot_occupancy(frame, axes[0, 1], max_connections=max_connections, window=window)
    plot_waits(frame, axes[1, 0])
    stats_ax = axes[1, 1]
    stats_ax.axis("off")
    stats_ax.set_title("Numbers")
    stats_ax.text(
        0.0,
        1.0,
        _format_stats(summarize(frame, max_connections)),
        transform=stats_ax.transAxes,
        va="top",
        family="monospace",
        fontsize="small",
    )
    return fig


def _ensure_canvas(fig: Figure) -> None:
    # A bare Figure() has only the base canvas; give it Agg so it can render
    # headless. A figure that already has a canvas (a GUI window's) keeps it.
    if type(fig.canvas) is FigureCanvasBase:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: float | None = None) -> None:
    """Write ``fig`` to ``path`` as PNG with the Agg renderer (no display needed)."""
    _ensure_canvas(fig)
    fig.savefig(path, format="png", dpi=dpi if dpi is not None else "figure")


def figure_to_png_bytes(fig: Figure, dpi: float | None = None) -> bytes:
    """``fig`` rendered as PNG bytes with Agg, for a widget or an HTTP response."""
    buffer = io.BytesIO()
    _ensure_canvas(fig)
    fig.savefig(buffer, format="png", dpi=dpi if dpi is not None else "figure")
    return buffer.getvalue()
