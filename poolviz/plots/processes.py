"""Pictures of multi-process runs: connection lanes grouped by process, and the server's count under the pools'.

Like every picture in :mod:`poolviz.plots`, each helper takes ``ax=None``, draws on it (on a
new headless Figure when absent) and returns the Axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

from ..data.analysis import hold_intervals, occupancy
from ..data.processes import require_process, server_frame
from .common import BAR_HEIGHT, LEGEND_RIGHT, boxes, category_colour, labelled_axes, new_axes

_GAP = 1  # empty lanes between two processes' groups


def plot_processes(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """One lane per connection, lanes grouped by process (bottom: process 0), a bar per hold in its process's colour.

    Each process's group is labelled on the left and separated by a line;
    ``error`` events (a refused connection) are red crosses on their
    process's lowest lane. Needs a merged frame (a ``process`` column).
    """
    require_process(frame)
    ax = labelled_axes(ax, "time (s)", "process")
    if frame.empty:
        ax.set_title("Connection holds by process (no events)")
        return ax
    processes = sorted(int(p) for p in pd.unique(frame["process"]))
    conns = frame.loc[frame["conn"] != 0, ["process", "conn"]].drop_duplicates().sort_values(["process", "conn"])
    lane: dict[int, float] = {}
    base: dict[int, float] = {}
    y = 0.0
    for process in processes:
        base[process] = y
        own = conns.loc[conns["process"] == process, "conn"].tolist()
        for conn in own:
            lane[int(conn)] = y
            y += 1
        y += _GAP if own else 1 + _GAP  # a process with no connection still gets a lane (for its errors)
    colours = np.array([category_colour(i) for i in range(len(processes))])
    index = {p: i for i, p in enumerate(processes)}
    conn_process = dict(zip(conns["conn"].astype(int), conns["process"].astype(int), strict=True))

    holds = hold_intervals(frame)
    t_end = float(frame["t"].max())
    start = holds["start"].to_numpy(dtype=float)
    end = holds["end"].fillna(t_end).to_numpy(dtype=float)
    ys = np.array([lane[int(c)] for c in holds["conn"]], dtype=float)
    fill = np.array([colours[index[conn_process[int(c)]]] for c in holds["conn"]]).reshape(-1, 4)
    ax.add_collection(PolyCollection(boxes(start, end, ys, BAR_HEIGHT), facecolors=fill, edgecolors="none"))

    errors = frame.loc[frame["kind"].astype(str) == "error"]
    if len(errors):
        error_y = [base[int(p)] for p in errors["process"]]
        ax.scatter(errors["t"], error_y, marker="x", color="tab:red", s=30, label="error (refused)", zorder=3)

    ticks, labels = [], []
    for process in processes:
        own = [lane[c] for c, p in conn_process.items() if p == process]
        top = max(own) if own else base[process]
        ticks.append((base[process] + top) / 2)
        labels.append(f"p{process}")
        ax.axhline(top + 0.5 + _GAP / 2, color="tab:gray", linewidth=0.5)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-0.6, max(y - _GAP, 1) - 0.4)
    ax.set_xlim(0, t_end if t_end > 0 else 1)
    handles: list[Any] = [Patch(color=colours[index[p]], label=f"p{p}") for p in processes][:10]
    extra, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + extra, **LEGEND_RIGHT)
    ax.set_title(f"Connection holds, lanes grouped by process ({len(processes)} processes)")
    return ax


def plot_server_vs_pools(
    frame: pd.DataFrame, server: Any, ax: Axes | None = None, limit: int | None = None, column: str = "user_connections"
) -> Axes:
    """The pools' open connections (in use + idle, summed over processes) as a step line, the server's count as dots.

    ``server`` is a ``ServerSampler``, its samples or its ``server.csv``
    (see :func:`poolviz.data.processes.server_frame`); ``column`` the count
    drawn (``pgbouncer`` for the server connections pgbouncer holds).
    ``limit`` draws a dashed line (a role's or server's connection limit).
    """
    ax = new_axes(ax)
    samples = server_frame(server)
    if column not in samples.columns:
        raise ValueError(f"column must be one of {', '.join(samples.columns[1:])}, got {column!r}")
    occ = occupancy(frame)
    ax.step(occ["t"], occ["in_use"] + occ["idle"], where="post", color="tab:blue", label="pools: open (in use + idle)")
    ax.step(occ["t"], occ["in_use"], where="post", color="tab:blue", alpha=0.4, linestyle=":", label="pools: in use")
    label = "server: pgbouncer's connections" if column == "pgbouncer" else f"server: {column.replace('_', ' ')}"
    ax.plot(samples["t"], samples[column], "o-", color="tab:orange", markersize=3, linewidth=1, label=label)
    if limit is not None:
        ax.axhline(limit, linestyle="--", color="tab:red", label=f"limit = {limit}")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("connections")
    ax.set_title("What the pools hold, and what the server counts")
    ax.legend(**LEGEND_RIGHT)
    return ax
