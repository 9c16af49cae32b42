"""The drawing helpers every picture shares: a headless Axes, thread colours, rectangles and segments in bulk, PNGs.

Every picture takes the frame from :meth:`poolviz.EventLog.to_frame`, draws on
the ``ax`` it is given (or on a new headless :class:`~matplotlib.figure.Figure`
when ``ax`` is None) and returns the Axes. Nothing here imports pyplot, shows a
window or touches rcParams, so the pictures work the same in a notebook, a
widget and a script on a server.

Large traces stay cheap to draw because each kind of mark is one artist:
:func:`boxes` and :func:`segments` build the arrays a
:class:`~matplotlib.collections.PolyCollection` or
:class:`~matplotlib.collections.LineCollection` takes whole, so a hundred
thousand holds cost one artist, not a hundred thousand.
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
from matplotlib.figure import Figure

MAX_LEGEND_THREADS = 10
"""With more worker threads than this, the timeline colours them from a colour map and lists none."""

#: The height of a hold's bar on its lane (lanes are 1 apart).
BAR_HEIGHT = 0.8
#: Where legends go: outside the Axes, to the right, top-aligned.
LEGEND_RIGHT: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": "small"}


def new_axes(ax: Axes | None) -> Axes:
    """``ax``, or the Axes of a new headless Figure (no pyplot, no GUI backend)."""
    if ax is not None:
        return ax
    return Figure(layout="constrained").add_subplot()


def labelled_axes(ax: Axes | None, xlabel: str, ylabel: str) -> Axes:
    """:func:`new_axes` with its axes labelled."""
    ax = new_axes(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def check_window(window: Any) -> tuple[float, float] | None:
    """``window`` as a pair of floats ``(t0, t1)`` with ``t0 < t1``, or None; anything else is refused."""
    if window is None:
        return None
    try:
        t0, t1 = (float(x) for x in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a pair (t0, t1) of seconds, got {window!r}") from None
    if not t0 < t1:
        raise ValueError(f"window must have t0 < t1, got {window!r}")
    return t0, t1


def kind_is(frame: pd.DataFrame, *kinds: str) -> np.ndarray:
    """A boolean mask of the rows whose ``kind`` is one of ``kinds``."""
    return np.asarray(frame["kind"].isin(kinds), dtype=bool)


def thread_colours(count: int) -> np.ndarray:
    """``count`` RGBA rows: the distinct tab10 colours when they suffice, else a colour map."""
    if count <= MAX_LEGEND_THREADS:
        rgba: np.ndarray = matplotlib.colormaps["tab10"](np.arange(count))
    else:
        rgba = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, count))
    return rgba


def category_colour(i: int) -> tuple[float, ...]:
    """The ``i``-th tab10 colour (cycling), as RGBA."""
    return tuple(matplotlib.colormaps["tab10"](i % 10))


def boxes(x0: np.ndarray, x1: np.ndarray, y: np.ndarray, height: float) -> Any:
    """An (N, 4, 2) array of rectangles, which PolyCollection takes without a Python loop.

    Typed ``Any`` because matplotlib's stubs ask for a sequence of polygons,
    while the array is what lets it skip converting them one by one.
    """
    low, high = y - height / 2, y + height / 2
    return np.stack([np.column_stack(corner) for corner in ((x0, low), (x0, high), (x1, high), (x1, low))], axis=1)


def segments(x0: np.ndarray, x1: np.ndarray, y: np.ndarray) -> Any:
    """An (N, 2, 2) array of horizontal segments for a LineCollection (see :func:`boxes`)."""
    return np.stack([np.column_stack((x0, y)), np.column_stack((x1, y))], axis=1)


def wait_unit(waits_s: Any) -> tuple[float, str]:
    """``(scale, unit)`` for an axis of waits: seconds once the longest passes 2 s (never "8000 ms")."""
    longest = float(np.nanmax(waits_s)) if len(waits_s) else 0.0
    return (1.0, "s") if longest >= 2.0 else (1000.0, "ms")


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
