"""plot_timeline against one ``ax.barh`` per hold: seconds to a PNG, and the speed-up.

plot_timeline draws every hold into one PolyCollection; the naive way makes a
Rectangle artist (inside a BarContainer) per hold. Both render the same holds
of a synthetic trace to PNG bytes with Agg. The naive way is timed on 10,000
holds first; if that predicts under a minute for 100,000 it is run in full,
otherwise its 100,000 figure is that time scaled by 10. Scaling is fair
because its cost per bar is flat: it is also timed on 5,000 holds, and the
two per-bar costs are printed side by side. Run:
``.venv/bin/python benchmarks/timeline_render.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from synthetic import synthetic_events

from poolviz import plots
from poolviz.data import analysis
from poolviz.data.frames import events_to_frame

HOLDS = 100_000
SAMPLE = 10_000
FULL_RUN_LIMIT_S = 60.0


def trace_with_holds(holds: int) -> pd.DataFrame:
    """The shortest synthetic trace holding at least ``holds`` checkouts, cut just after the last one."""
    frame = events_to_frame(synthetic_events(int(holds * 2.4)))
    checkouts = np.flatnonzero(frame["kind"].to_numpy() == "checkout")
    assert len(checkouts) >= holds, "synthetic trace too short"
    return frame.iloc[: checkouts[holds - 1] + 1]


def fast(frame: pd.DataFrame) -> float:
    """Seconds for plot_timeline of the trace, rendered to PNG bytes."""
    start = time.perf_counter()
    fig = Figure(figsize=(12, 6))
    plots.plot_timeline(frame, fig.add_subplot())
    png = plots.figure_to_png_bytes(fig)
    elapsed = time.perf_counter() - start
    assert png.startswith(b"\x89PNG")
    return elapsed


def naive(frame: pd.DataFrame) -> float:
    """Seconds for the same holds drawn with one ``ax.barh`` call each, rendered to PNG bytes."""
    holds = analysis.hold_intervals(frame)
    end = holds["end"].fillna(frame["t"].max())
    threads = {name: f"C{i % 10}" for i, name in enumerate(pd.unique(holds["thread"]))}
    rows = zip(holds["conn"], holds["start"], end - holds["start"], holds["thread"], strict=True)
    start = time.perf_counter()
    fig = Figure(figsize=(12, 6))
    ax = fig.add_subplot()
    for conn, left, width, thread in rows:
        ax.barh(conn, width, left=left, height=0.8, color=threads[thread])
    png = plots.figure_to_png_bytes(fig)
    elapsed = time.perf_counter() - start
    assert png.startswith(b"\x89PNG")
    return elapsed


def main() -> None:
    full = trace_with_holds(HOLDS)
    sample = trace_with_holds(SAMPLE)
    fast_full = min(fast(full) for _ in range(3))
    fast_sample = min(fast(sample) for _ in range(3))
    naive_half = naive(trace_with_holds(SAMPLE // 2))
    naive_sample = naive(sample)
    predicted = naive_sample * HOLDS / SAMPLE
    if predicted < FULL_RUN_LIMIT_S:
        naive_full, how = naive(full), "measured"
    else:
        naive_full, how = predicted, f"scaled from {SAMPLE:,} holds x{HOLDS // SAMPLE}"

    print(f"{'holds':>9}  {'plot_timeline':>14}  {'barh per hold':>14}  {'speed-up':>9}")
    print(f"{SAMPLE:>9,}  {fast_sample:>13.3f}s  {naive_sample:>13.3f}s  {naive_sample / fast_sample:>8.1f}x")
    print(f"{HOLDS:>9,}  {fast_full:>13.3f}s  {naive_full:>13.3f}s  {naive_full / fast_full:>8.1f}x  ({how})")
    print(
        f"\nper hold: plot_timeline {fast_full / HOLDS * 1e6:.1f} us, "
        f"barh {naive_half / (SAMPLE // 2) * 1e6:.0f} us at {SAMPLE // 2:,} holds and "
        f"{naive_sample / SAMPLE * 1e6:.0f} us at {SAMPLE:,}; target speed-up >= 20x: "
        f"{'met' if naive_full / fast_full >= 20 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
