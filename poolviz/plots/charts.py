"""Matplotlib pictures of a pool trace: timeline, occupancy, waits, fairness, pool-size sweeps, a dashboard.

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

from ..data.analysis import (
    fairness,
    fairness_stats,
    hold_intervals,
    occupancy,
    span,
    summarize,
    wait_stats,
    waits_in_progress,
)
from ..units import duration

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
    :data:`CLOSE_MARKERS`), and leak reports (``leak`` events) with a black
    ring. The lane at the bottom shows waits: a line from the moment a caller
    started waiting to its checkout (in its thread's colour), or to its
    timeout (red, ending in a cross); a wait still going at the end of the
    trace is dotted and ends in an arrow head. A hold still open at the end
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
    ongoing = waits_in_progress(frame)
    # Callers that never got a connection still get a colour: they are the ones still waiting.
    threads = pd.Index(pd.unique(np.r_[frame["thread"].to_numpy(dtype=object)[requests], ongoing["thread"].to_numpy()]))
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
        ongoing = ongoing.loc[ongoing["since"] <= t1]

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
    if len(ongoing):
        ongoing_thread = threads.get_indexer(ongoing["thread"])
        y_ongoing = wait_rows(ongoing_thread)
        ongoing_colours = colours[ongoing_thread]
        since = ongoing["since"].to_numpy(dtype=float)
        ax.add_collection(
            LineCollection(
                _segments(since, np.full(len(since), t_end), y_ongoing),
                colors=ongoing_colours,
                linewidths=1.5,
                linestyles=":",
                label="still waiting",
            ),
            autolim=False,
        )
        ax.scatter(np.full(len(since), t_end), y_ongoing, marker=">", color=ongoing_colours, s=20, zorder=3)

    if len(leaks):
        # A black ring on a white halo reads on any thread colour (an orange ring vanished on an orange bar).
        for edge, width, label in (("white", 3.5, None), ("black", 1.5, "leak")):
            ax.scatter(
                leaks["t"],
                leaks["conn"],
                marker="o",
                facecolors="none",
                edgecolors=edge,
                s=130,
                linewidths=width,
                label=label,
                zorder=4,
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


def _binned_means(occ: pd.DataFrame, bins: int, t0: float, t1: float) -> pd.DataFrame:
    """The step series' time-weighted mean in each of ``bins`` equal slices of ``t0..t1``."""
    t = occ["t"].to_numpy(dtype=float)
    edges = np.linspace(t0, t1, bins + 1)
    out = {"t": edges[:-1]}
    for column in ("in_use", "idle", "waiting"):
        values = occ[column].to_numpy(dtype=float)
        # The integral of a step function up to each edge, then differences per slice.
        area = np.r_[0.0, np.cumsum(values[:-1] * np.diff(t))]
        at = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 1)
        integral = area[at] + values[at] * np.clip(edges - t[at], 0.0, None)
        out[column] = np.diff(integral) / np.diff(edges)
    return pd.DataFrame(out)


def plot_occupancy(
    frame: pd.DataFrame,
    ax: Axes | None = None,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
    max_steps: int = 500,
) -> Axes:
    """Connections in use and idle, and callers waiting, over time; the limit drawn on top.

    A dashed line marks ``max_connections`` (default: the limit recorded in
    ``frame.attrs``), above the lines so it is never hidden. The y axis reaches
    the number waiting as well as the pool's size. With more than
    ``max_steps`` changes in view the lines become each count's time-weighted
    mean over ``max_steps // 4`` slices of time, which a long run needs to
    stay readable (the legend says so). ``window=(t0, t1)`` shows only that stretch.
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
    averaged = len(occ) > max_steps
    if averaged:
        t0, t1 = shown if shown is not None else (float(occ["t"].iloc[0]), float(occ["t"].iloc[-1]))
        occ = _binned_means(occ, max(max_steps // 4, 1), t0, t1)
    suffix = " (time-weighted mean)" if averaged else ""
    for column, label, colour in (
        ("in_use", "in use", "tab:blue"),
        ("idle", "idle", "tab:green"),
        ("waiting", "waiting", "tab:red"),
    ):
        ax.step(occ["t"], occ[column], where="post", label=label + suffix, color=colour)
    limit = max_connections if max_connections is not None else frame.attrs.get("max_connections")
    if limit:
        ax.axhline(limit, linestyle="--", color="black", linewidth=1.2, zorder=4, label=f"max_connections = {limit}")
    if shown is not None:
        ax.set_xlim(*shown)
    top = max(float(limit or 0), float(occ[["in_use", "idle", "waiting"]].to_numpy().max()) if len(occ) else 0.0)
    ax.set_ylim(0, max(top, 1.0) * 1.08)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("count")
    ax.set_title("Pool occupancy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def _wait_unit(waits_s: Any) -> tuple[float, str]:
    """``(scale, unit)`` for an axis of waits: seconds once the longest passes 2 s (never "8000 ms")."""
    longest = float(np.nanmax(waits_s)) if len(waits_s) else 0.0
    return (1.0, "s") if longest >= 2.0 else (1000.0, "ms")


def plot_waits(frame: pd.DataFrame, ax: Axes | None = None, now: float | None = None) -> Axes:
    """The cumulative distribution of request waits, p50/p95/p99 marked, waits still going included.

    Finished requests (checkouts and timeouts) count with their wait, callers
    still waiting at ``now`` (default: the last event) with the age their wait
    has reached, so starving workers are in the curve and the percentiles
    (:func:`poolviz.analysis.wait_stats`), not only in the prose. Requests that
    did not wait sit at 0: the curve's height there is the share served at once.
    """
    ax = _new_axes(ax)
    ax.set_ylabel("fraction of requests")
    finished = frame.loc[_kind_is(frame, "checkout", "timeout"), "wait_s"].to_numpy(dtype=float)
    ongoing = waits_in_progress(frame, now)["age_s"].to_numpy(dtype=float)
    waits = np.sort(np.r_[finished, ongoing])
    scale, unit = _wait_unit(waits)
    ax.set_xlabel(f"wait ({unit})")
    ax.set_title("Waits for a connection" + (f" ({len(ongoing)} still waiting)" if len(ongoing) else ""))
    if not len(waits):
        ax.text(0.5, 0.5, "no requests", transform=ax.transAxes, ha="center", va="center")
        return ax
    fractions = np.arange(1, len(waits) + 1) / len(waits)
    ax.step(np.r_[0.0, waits * scale], np.r_[0.0, fractions], where="post", color="tab:blue", label="requests")
    stats = wait_stats(frame, now)
    for key, style in (("p50_s", ":"), ("p95_s", "--"), ("p99_s", "-.")):
        ax.axvline(stats[key] * scale, linestyle=style, color="tab:gray", label=f"{key[:3]} = {duration(stats[key])}")
    if len(ongoing):
        ax.scatter(
            ongoing * scale,
            np.full(len(ongoing), 1.0),
            marker="v",
            color="tab:red",
            zorder=3,
            label=f"still waiting (oldest {duration(stats['oldest_wait_s'])})",
        )
    ax.set_ylim(0, 1.04)
    ax.set_xlim(left=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def plot_fairness(frame: pd.DataFrame, ax: Axes | None = None, threads: Any = None, now: float | None = None) -> Axes:
    """Checkouts per worker, busiest first, with each worker's longest wait on a twin axis.

    ``threads`` names the workers to show (see :func:`poolviz.analysis.fairness`):
    a worker that never got a connection shows as an empty bar. An even pool
    gives bars of one height; a pool that lets a releasing thread barge gives a
    few tall bars and long waits everywhere else. The title carries Jain's index
    (1 when every worker got the same).
    """
    ax = _new_axes(ax)
    table = fairness(frame, threads, now)
    stats = fairness_stats(frame, threads, now)
    ax.set_xlabel("worker (busiest first)")
    ax.set_ylabel("checkouts", color="tab:blue")
    if table.empty:
        ax.set_title("Service per worker (no requests)")
        return ax
    x = np.arange(len(table))
    ax.bar(x, table["checkouts"], color="tab:blue", label="checkouts")
    twin = ax.twinx()
    scale, unit = _wait_unit(table["wait_max_s"].to_numpy(dtype=float))
    twin.plot(x, table["wait_max_s"] * scale, "o", color="tab:red", label="longest wait")
    twin.set_ylabel(f"longest wait ({unit})", color="tab:red")
    twin.set_ylim(bottom=0)
    if len(table) <= 16:
        ax.set_xticks(x, [str(name) for name in table["thread"]], rotation=45, ha="right", fontsize="small")
    ax.set_title(
        f"Service per worker\ncheckouts {stats['checkouts_min']}–{stats['checkouts_max']} "
        f"(median {stats['checkouts_median']:g}), Jain's index {stats['jain_index']:.2f}"
    )
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="upper left", bbox_to_anchor=(1.12, 1.0), fontsize="small")
    return ax


# The sweep columns (analysis.SWEEP_COLUMNS) that plot_sweep cannot do without.
_SWEEP_NEEDS = ("max_connections", "throughput_rps", "wait_p95_s")


# Wait columns plot_sweep draws when the sweep has them: (column, label, marker and line).
_SWEEP_WAITS = (
    ("wait_mean_s", "mean wait", "d-"),
    ("wait_p95_s", "p95 wait", "s-"),
    ("wait_p99_s", "p99 wait", "v-"),
    ("wait_max_s", "longest wait", "x:"),
)


def plot_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Throughput and waits against pool size, the Erlang C prediction beside the measured p95.

    ``sweep`` has one row per pool size with at least the columns
    ``max_connections``, ``throughput_rps`` and ``wait_p95_s`` (see
    ``analysis.SWEEP_COLUMNS``); ``wait_mean_s``, ``wait_p99_s``,
    ``wait_max_s`` and ``predicted_wait_p95_s`` are drawn when present. A p95
    of 0 beside a long maximum is the sign of a few workers doing all the work
    (barging), so the maximum is worth its line. Throughput is on ``ax`` (left
    axis), waits in ms on a twin axis sharing x (``ax.twinx()``, on the right).
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
    for column, label, style in _SWEEP_WAITS:
        if column in rows.columns:
            values = rows[column].to_numpy(dtype=float) * 1000.0
            twin.plot(
                x,
                values,
                style,
                color="tab:orange",
                alpha=1.0 if column == "wait_p95_s" else 0.6,
                label=f"{label}, measured",
            )
    if "predicted_wait_p95_s" in rows.columns:
        predicted = rows["predicted_wait_p95_s"].to_numpy(dtype=float) * 1000.0
        predicted = np.where(np.isfinite(predicted), predicted, np.nan)
        twin.plot(x, predicted, "^--", color="tab:purple", alpha=0.8, label="p95 wait, Erlang C")
    twin.set_ylabel("wait (ms)", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(
        handles + twin_handles, labels + twin_labels, loc="upper left", bbox_to_anchor=(1.15, 1.0), fontsize="small"
    )
    ax.set_title("Pool size sweep")
    return ax


def _format_stats(summary: dict[str, Any]) -> str:
    def number(key: str, unit: str = "", scale: float = 1.0) -> str:
        value = summary[key]
        return "-" if value is None else f"{value * scale:.3g}{unit}"

    def took(key: str) -> str:
        return duration(summary[key])

    reasons = ", ".join(f"{k} {v}" for k, v in summary["closed_by_reason"].items()) or "none"
    lines = [
        f"requests       {summary['requests']}  (timeouts {summary['timeouts']})",
        f"throughput     {number('throughput_rps', ' /s')}",
        f"utilisation    {number('utilisation', ' %', 100.0)}",
        f"waiting now    {summary['waiting_now']}  (oldest {took('oldest_wait_s')})",
        f"waited         {summary['waited']}  (waits still going count at their age)",
        f"wait p50/p95   {took('wait_p50_s')} / {took('wait_p95_s')}",
        f"wait p99/max   {took('wait_p99_s')} / {took('wait_max_s')}",
        f"per worker     checkouts {number('fair_checkouts_min')}–{number('fair_checkouts_max')}"
        f" (median {number('fair_checkouts_median')}), {summary['fair_starved']} never served",
        f"mean hold      {took('hold_mean_s')}  ({summary['holds_open']} open)",
        f"connections    {summary['connections_opened']} opened, {summary['connections_closed']} closed",
        f"closed by      {reasons}",
        f"Little's law   L = {number('littles_L')},  λW = {number('littles_L_from_lambda_W')}",
        f"span           {took('span_s')}  ({summary['events']} events, {summary['dropped_events']} dropped)",
    ]
    return "\n".join(lines)


def plot_dashboard(
    frame: pd.DataFrame,
    fig: Figure | None = None,
    max_connections: int | None = None,
    window: tuple[float, float] | None = None,
    threads: Any = None,
) -> Figure:
    """Timeline, occupancy, waits and key numbers of a trace on one 2x2 figure.

    ``threads`` names the workers the numbers' per-worker line counts (see
    :func:`poolviz.analysis.fairness`; default: every thread that asked).

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
        _format_stats(summarize(frame, max_connections, threads=threads)),
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
