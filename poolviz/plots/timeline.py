"""The timeline: one lane per connection with a bar per hold, waits on a lane of their own, closes and leaks marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..data.analysis import hold_intervals, span, waits_in_progress
from .common import (
    BAR_HEIGHT,
    LEGEND_RIGHT,
    MAX_LEGEND_THREADS,
    boxes,
    check_window,
    kind_is,
    labelled_axes,
    segments,
    thread_colours,
)

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

_WAIT_ROWS = 8


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
    shown = check_window(window)
    ax = labelled_axes(ax, "time (s)", "connection")
    if frame.empty:
        ax.set_title("Connection holds (no events)")
        return ax
    marks = _Marks.of(frame, shown)
    colours = thread_colours(len(marks.threads))
    ax.add_collection(
        PolyCollection(
            boxes(marks.start, marks.end, marks.holds["conn"].to_numpy(dtype=float), BAR_HEIGHT),
            facecolors=colours[marks.hold_thread],
            edgecolors="none",
            linewidths=0,
        ),
        autolim=False,
    )
    # The lanes shown are those of the connections with marks in view (all of
    # them without a window: serials start at 1); waits get the lane below.
    conns = np.unique(np.concatenate([marks.holds["conn"].to_numpy(), marks.closes["conn"].to_numpy()]))
    wait_lane = int(conns.min()) - 1 if len(conns) else 0
    _draw_waits(ax, marks, colours, wait_lane)
    _draw_leaks_and_closes(ax, marks)
    _set_lanes(ax, conns, wait_lane)
    if shown is not None:
        ax.set_xlim(*shown)
    elif span(frame) > 0:
        ax.set_xlim(marks.t_end - span(frame), marks.t_end)
    _legend(ax, marks.threads, colours)
    return ax


@dataclass
class _Marks:
    """What the timeline draws, cut to the window: holds, timeouts, closes, leaks, waits still going."""

    t_end: float
    threads: pd.Index
    holds: pd.DataFrame
    start: np.ndarray
    end: np.ndarray
    waits: np.ndarray
    outs: pd.DataFrame
    closes: pd.DataFrame
    leaks: pd.DataFrame
    ongoing: pd.DataFrame

    @classmethod
    def of(cls, frame: pd.DataFrame, shown: tuple[float, float] | None) -> _Marks:
        t_end = float(frame["t"].to_numpy(dtype=float).max())
        requests = kind_is(frame, "checkout", "timeout")
        ongoing = waits_in_progress(frame)
        # Callers that never got a connection still get a colour: they are the ones still waiting.
        names = np.r_[frame["thread"].to_numpy(dtype=object)[requests], ongoing["thread"].to_numpy()]
        holds = hold_intervals(frame)
        marks = cls(
            t_end,
            pd.Index(pd.unique(names)),
            holds,
            holds["start"].to_numpy(dtype=float),
            holds["end"].fillna(t_end).to_numpy(dtype=float),
            holds["wait_s"].to_numpy(dtype=float),
            frame.loc[kind_is(frame, "timeout")],
            frame.loc[kind_is(frame, "close") & (frame["conn"].to_numpy() != 0)],
            frame.loc[kind_is(frame, "leak")],
            ongoing,
        )
        return marks if shown is None else marks.within(*shown)

    def within(self, t0: float, t1: float) -> _Marks:
        """Only the marks that overlap ``t0..t1`` (a wait counts from its start, a hold to its end)."""
        keep = (self.end >= t0) & (self.start - self.waits <= t1)
        out_t = self.outs["t"].to_numpy(dtype=float)
        keep_out = (out_t >= t0) & (out_t - self.outs["wait_s"].to_numpy(dtype=float) <= t1)
        return _Marks(
            self.t_end,
            self.threads,
            self.holds.loc[keep],
            self.start[keep],
            self.end[keep],
            self.waits[keep],
            self.outs.loc[keep_out],
            self.closes.loc[self.closes["t"].between(t0, t1)],
            self.leaks.loc[self.leaks["t"].between(t0, t1)],
            self.ongoing.loc[self.ongoing["since"] <= t1],
        )

    @property
    def hold_thread(self) -> np.ndarray:
        """Each hold's thread, as an index into :attr:`threads` (and so into the colours)."""
        return np.asarray(self.threads.get_indexer(self.holds["thread"]))


def _draw_waits(ax: Axes, marks: _Marks, colours: np.ndarray, wait_lane: int) -> None:
    # Waits share one lane; spreading them over a few rows by thread keeps
    # concurrent waits from hiding each other.
    def rows(thread_index: np.ndarray) -> np.ndarray:
        return wait_lane + BAR_HEIGHT * ((thread_index % _WAIT_ROWS + 0.5) / _WAIT_ROWS - 0.5)

    hold_thread = marks.hold_thread
    waited = marks.waits > 0
    out_t = marks.outs["t"].to_numpy(dtype=float)
    y_out = rows(marks.threads.get_indexer(marks.outs["thread"]))
    lines: Any = np.concatenate(
        [
            segments(marks.start[waited] - marks.waits[waited], marks.start[waited], rows(hold_thread[waited])),
            segments(out_t - marks.outs["wait_s"].to_numpy(dtype=float), out_t, y_out),
        ]
    )
    line_colours = np.concatenate([colours[hold_thread[waited]], np.tile(to_rgba("tab:red"), (len(out_t), 1))])
    if len(lines):
        ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=1.5, label="wait"), autolim=False)
    if len(out_t):
        ax.scatter(out_t, y_out, marker="x", color="tab:red", s=25, label="timeout", zorder=3)
    if len(marks.ongoing):
        thread = marks.threads.get_indexer(marks.ongoing["thread"])
        y, since = rows(thread), marks.ongoing["since"].to_numpy(dtype=float)
        now = np.full(len(since), marks.t_end)
        still = LineCollection(
            segments(since, now, y), colors=colours[thread], linewidths=1.5, linestyles=":", label="still waiting"
        )
        ax.add_collection(still, autolim=False)
        ax.scatter(now, y, marker=">", color=colours[thread], s=20, zorder=3)


def _draw_leaks_and_closes(ax: Axes, marks: _Marks) -> None:
    if len(marks.leaks):
        # A black ring on a white halo reads on any thread colour (an orange ring vanished on an orange bar).
        for edge, width, label in (("white", 3.5, None), ("black", 1.5, "leak")):
            ax.scatter(
                marks.leaks["t"],
                marks.leaks["conn"],
                marker="o",
                facecolors="none",
                edgecolors=edge,
                s=130,
                linewidths=width,
                label=label,
                zorder=4,
            )
    for reason, group in marks.closes.groupby("reason", sort=True):
        marker, colour = CLOSE_MARKERS.get(str(reason), ("o", "tab:olive"))
        ax.scatter(group["t"], group["conn"], marker=marker, color=colour, s=40, label=f"close: {reason}", zorder=3)


def _set_lanes(ax: Axes, conns: np.ndarray, wait_lane: int) -> None:
    top = int(conns.max()) if len(conns) else 1
    ax.set_ylim(wait_lane - 0.6, top + 0.6)
    if len(conns) <= 20:
        ticked = conns.tolist()
    else:
        ticks = MaxNLocator(nbins=8, integer=True).tick_values(wait_lane + 1, top)
        ticked = [int(y) for y in ticks if wait_lane < y <= top]
    ax.set_yticks([wait_lane, *ticked], ["waits", *(str(c) for c in ticked)])


def _legend(ax: Axes, threads: pd.Index, colours: np.ndarray) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if len(threads) <= MAX_LEGEND_THREADS:
        handles = [Patch(color=colours[i], label=str(name)) for i, name in enumerate(threads)] + handles
        ax.set_title("Connection holds (colour: thread)")
    else:
        ax.set_title(f"Connection holds (colour: thread, {len(threads)} threads)")
    if handles:
        ax.legend(handles=handles, **LEGEND_RIGHT)
