"""Who waited, and for how long: the distribution of waits, and the service each worker got."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..data.analysis import fairness, fairness_stats, wait_stats, waits_in_progress
from ..units import duration
from .common import LEGEND_RIGHT, kind_is, new_axes, wait_unit


def plot_waits(frame: pd.DataFrame, ax: Axes | None = None, now: float | None = None) -> Axes:
    """The cumulative distribution of request waits, p50/p95/p99 marked, waits still going included.

    Finished requests (checkouts and timeouts) count with their wait, callers
    still waiting at ``now`` (default: the last event) with the age their wait
    has reached, so starving workers are in the curve and the percentiles
    (:func:`poolviz.data.analysis.wait_stats`), not only in the prose. Requests that
    did not wait sit at 0: the curve's height there is the share served at once.
    """
    ax = new_axes(ax)
    ax.set_ylabel("fraction of requests")
    finished = frame.loc[kind_is(frame, "checkout", "timeout"), "wait_s"].to_numpy(dtype=float)
    ongoing = waits_in_progress(frame, now)["age_s"].to_numpy(dtype=float)
    waits = np.sort(np.r_[finished, ongoing])
    scale, unit = wait_unit(waits)
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
    ax.legend(**LEGEND_RIGHT)
    return ax


def plot_fairness(frame: pd.DataFrame, ax: Axes | None = None, threads: Any = None, now: float | None = None) -> Axes:
    """Checkouts per worker, busiest first, with each worker's longest wait on a twin axis.

    ``threads`` names the workers to show (see :func:`poolviz.data.analysis.fairness`):
    a worker that never got a connection shows as an empty bar. An even pool
    gives bars of one height; a pool that lets a releasing thread barge gives a
    few tall bars and long waits everywhere else. The title carries Jain's index
    (1 when every worker got the same).
    """
    ax = new_axes(ax)
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
    scale, unit = wait_unit(table["wait_max_s"].to_numpy(dtype=float))
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
