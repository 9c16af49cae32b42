"""Matplotlib pictures of a pool trace, one module per kind of picture; the public ones are re-exported here.

``from poolviz import plots; plots.plot_timeline(frame)`` and
``from poolviz.plots import plot_timeline`` both work.
"""

from __future__ import annotations

from .charts import (
    CLOSE_MARKERS,
    MAX_LEGEND_THREADS,
    figure_to_png_bytes,
    plot_dashboard,
    plot_fairness,
    plot_occupancy,
    plot_sweep,
    plot_timeline,
    plot_waits,
    save_png,
)
from .processes import plot_processes, plot_server_vs_pools

__all__ = [
    "CLOSE_MARKERS",
    "MAX_LEGEND_THREADS",
    "figure_to_png_bytes",
    "plot_dashboard",
    "plot_fairness",
    "plot_occupancy",
    "plot_processes",
    "plot_server_vs_pools",
    "plot_sweep",
    "plot_timeline",
    "plot_waits",
    "save_png",
]
