"""A still of a whole run on one figure: timeline, occupancy, waits and the key numbers."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..data.analysis import summarize
from ..units import duration
from .occupancy import plot_occupancy
from .timeline import plot_timeline
from .waits import plot_waits


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
        f"span           {took('span_s')}  ({summary['events']} events, {summary['events_dropped']} dropped)",
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
    :func:`poolviz.data.analysis.fairness`; default: every thread that asked).

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
