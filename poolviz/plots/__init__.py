"""Matplotlib pictures of a pool trace, one module per picture; the public names are re-exported here.

``common`` (the shared drawing helpers: a headless Axes, colours, bulk
rectangles, PNG export), ``timeline``, ``occupancy``, ``waits`` (waits and
fairness), ``sweep``, ``dashboard`` (all of them on one figure) and
``processes`` (multi-process runs). ``from poolviz import plots;
plots.plot_timeline(frame)`` and ``from poolviz.plots import plot_timeline``
both work.
"""

from __future__ import annotations

from .common import MAX_LEGEND_THREADS, figure_to_png_bytes, save_png
from .dashboard import plot_dashboard
from .occupancy import plot_occupancy
from .processes import plot_processes, plot_server_vs_pools
from .sweep import plot_sweep
from .timeline import CLOSE_MARKERS, plot_timeline
from .waits import plot_fairness, plot_waits

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
