"""Pool occupancy over time: connections in use and idle, callers waiting, the limit on top."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from ..data.analysis import occupancy
from .common import LEGEND_RIGHT, check_window, new_axes


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
    ax = new_axes(ax)
    shown = check_window(window)
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
    ax.legend(**LEGEND_RIGHT)
    return ax
