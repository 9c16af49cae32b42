"""Specifications for poolviz.plots: each helper draws on an Axes, with a fixed number of artists."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from poolviz import plots
from poolviz.data import analysis
from poolviz.data.frames import events_to_frame
from poolviz.events import Event

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def trace(holds: int, threads: int = 3) -> pd.DataFrame:
    """``holds`` holds alternating over two connections, every third after a wait, then a timeout
    and a stale close; thread names cycle over ``threads`` workers."""
    rows: list[tuple[float, str, int, str, float, str]] = [
        (0.0, "connect", 1, "w0", 0.0, ""),
        (0.0, "connect", 2, "w1", 0.0, ""),
    ]
    for i in range(holds):
        start = 0.5 * i
        wait = 0.2 if i % 3 == 2 else 0.0
        thread = f"w{i % threads}"
        if wait:
            rows.append((start - wait, "wait", 0, thread, 0.0, ""))
        rows.append((start, "checkout", i % 2 + 1, thread, wait, ""))
        rows.append((start + 0.8, "checkin", i % 2 + 1, thread, 0.0, ""))
    end = 0.5 * holds + 1.0
    rows += [
        (end - 0.3, "wait", 0, "late", 0.0, ""),
        (end, "timeout", 0, "late", 0.3, ""),
        (end + 0.1, "close", 1, "w0", 0.0, "stale"),
    ]
    rows.sort(key=lambda row: row[0])
    delta = {"checkout": 1, "checkin": -1}
    in_use = waiting = 0
    events = []
    for seq, (t, kind, conn, thread, wait_s, reason) in enumerate(rows):
        in_use += delta.get(kind, 0)
        waiting += 1 if kind == "wait" else -1 if wait_s else 0
        events.append(Event(seq, t, kind, conn, thread, wait_s, 0.0, False, reason, "", in_use, 0, waiting))
    return events_to_frame(events, {"max_connections": 2})


def new_axes() -> Axes:
    return Figure().add_subplot()


def hold_bars(ax: Axes) -> PolyCollection:
    (bars,) = [c for c in ax.collections if type(c) is PolyCollection]
    return bars


def test_each_helper_returns_the_axes_it_was_given() -> None:
    """plot_timeline, plot_occupancy and plot_waits draw on the given Axes and return it."""
    frame = trace(20)
    for helper in (plots.plot_timeline, plots.plot_occupancy, plots.plot_waits):
        ax = new_axes()
        assert helper(frame, ax) is ax


def test_each_helper_makes_a_headless_figure_when_given_no_axes() -> None:
    """Without an Axes, a helper draws on a new matplotlib Figure that no pyplot manager knows."""
    ax = plots.plot_timeline(trace(5))
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    assert plots.figure_to_png_bytes(ax.get_figure())[:8] == PNG_SIGNATURE  # type: ignore[arg-type]


def test_timeline_draws_all_holds_as_one_collection() -> None:
    """Every hold is a rectangle in a single PolyCollection, waits are one LineCollection."""
    ax = plots.plot_timeline(trace(30), new_axes())
    assert len(hold_bars(ax).get_paths()) == 30
    waits = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(waits) == 1 and len(waits[0].get_segments()) == 10 + 1  # 10 waits and the timeout


def test_timeline_artist_count_does_not_grow_with_holds() -> None:
    """Drawing 1,000 holds makes exactly as many artists as drawing 10."""
    small = plots.plot_timeline(trace(10), new_axes())
    large = plots.plot_timeline(trace(1000), new_axes())
    assert len(large.get_children()) == len(small.get_children())
    assert len(hold_bars(large).get_paths()) == 1000


def test_timeline_marks_closes_with_one_scatter_per_reason() -> None:
    """The stale close appears as a labelled marker on its connection's lane."""
    ax = plots.plot_timeline(trace(6), new_axes())
    labels = [c.get_label() for c in ax.collections]
    assert labels.count("close: stale") == 1
    (stale,) = [c for c in ax.collections if c.get_label() == "close: stale"]
    assert stale.get_offsets().tolist() == [[4.1, 1.0]]


def test_timeline_rings_leak_reports() -> None:
    """Leak events appear as one scatter on their connection's lane."""
    frame = trace(6)
    leak = frame.iloc[[3]].assign(seq=len(frame), kind="leak", t=0.7, reason="held")
    ax = plots.plot_timeline(pd.concat([frame, leak], ignore_index=True).astype(frame.dtypes), new_axes())
    (ring,) = [c for c in ax.collections if c.get_label() == "leak"]
    assert ring.get_offsets().tolist() == [[0.7, float(leak["conn"].iloc[0])]]


def test_timeline_window_draws_only_what_overlaps_it() -> None:
    """window=(t0, t1) sets the x-range and keeps only the holds that overlap it."""
    frame = trace(100)
    ax = plots.plot_timeline(frame, new_axes(), window=(10.0, 12.0))
    assert ax.get_xlim() == (10.0, 12.0)
    # Holds start every 0.5 s and last 0.8 s: those starting in (9.2, 12.0] overlap.
    assert len(hold_bars(ax).get_paths()) == 6


def test_timeline_window_must_be_ordered() -> None:
    """A window whose end is not after its start is refused."""
    with pytest.raises(ValueError, match="window must have t0 < t1"):
        plots.plot_timeline(trace(5), new_axes(), window=(3.0, 1.0))


def test_timeline_legend_lists_threads_only_when_few() -> None:
    """Up to ten threads get a legend entry each; with more, colours come from a colour map unlisted."""
    few = plots.plot_timeline(trace(30, threads=4), new_axes())
    assert {"w0", "w1", "w2", "w3"} <= {t.get_text() for t in few.get_legend().get_texts()}
    many = plots.plot_timeline(trace(60, threads=25), new_axes())
    listed = {t.get_text() for t in many.get_legend().get_texts()}
    assert not listed & {f"w{i}" for i in range(25)}
    assert "wait" in listed
    assert "26 threads" in many.get_title()  # 25 workers and the one that timed out


def test_occupancy_draws_three_steps_and_the_limit() -> None:
    """In use, idle and waiting are three lines, and max_connections a dashed fourth."""
    ax = plots.plot_occupancy(trace(20), new_axes())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["in use", "idle", "waiting", "max_connections = 2"]
    assert ax.get_lines()[3].get_linestyle() == "--"


def test_occupancy_window_sets_the_x_range() -> None:
    """window=(t0, t1) shows only that stretch, starting from the state in force at t0."""
    ax = plots.plot_occupancy(trace(40), new_axes(), max_connections=4, window=(5.0, 6.0))
    assert ax.get_xlim() == (5.0, 6.0)
    assert ax.get_lines()[0].get_xdata()[0] <= 5.0


def test_waits_marks_three_percentiles() -> None:
    """The wait CDF has p50, p95 and p99 lines, labelled with their values in ms."""
    ax = plots.plot_waits(trace(30), new_axes())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "requests"
    assert [label[:3] for label in labels[1:]] == ["p50", "p95", "p99"]


def test_sweep_plots_measured_and_predicted_on_twin_axes() -> None:
    """Throughput sits on the Axes, measured and Erlang C p95 waits on its twin; infinities are skipped."""
    sweep = pd.DataFrame(
        {
            "max_connections": [4, 1, 2],
            "throughput_rps": [300.0, 90.0, 170.0],
            "wait_p95_s": [0.001, 0.4, 0.05],
            "predicted_wait_p95_s": [0.002, math.inf, 0.04],
        }
    )
    ax = plots.plot_sweep(sweep, new_axes())
    assert ax.get_lines()[0].get_xdata().tolist() == [1.0, 2.0, 4.0]
    (twin,) = [other for other in ax.figure.axes if other is not ax]
    assert [line.get_label() for line in twin.get_lines()] == ["p95 wait, measured", "p95 wait, Erlang C"]
    assert math.isnan(twin.get_lines()[1].get_ydata()[0])


def test_sweep_needs_its_columns() -> None:
    """A sweep without the measured columns is refused, naming what is missing."""
    with pytest.raises(ValueError, match="missing \\['wait_p95_s'\\]"):
        plots.plot_sweep(pd.DataFrame({"max_connections": [1], "throughput_rps": [1.0]}))


def test_dashboard_has_four_panels_and_redraws_in_place() -> None:
    """plot_dashboard fills a 2x2 figure; passing the figure back redraws it without adding axes."""
    fig = plots.plot_dashboard(trace(20))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    again = plots.plot_dashboard(trace(25), fig=fig, window=(1.0, 5.0))
    assert again is fig and len(fig.axes) == 4
    assert fig.axes[0].get_xlim() == (1.0, 5.0)


def test_empty_frames_do_not_crash() -> None:
    """Every helper draws an empty trace without error, and it still renders to PNG."""
    empty = events_to_frame([])
    for helper in (plots.plot_timeline, plots.plot_occupancy, plots.plot_waits):
        assert isinstance(helper(empty, new_axes()), Axes)
    fig = plots.plot_dashboard(empty)
    assert plots.figure_to_png_bytes(fig).startswith(PNG_SIGNATURE)
    empty_sweep = pd.DataFrame(columns=["max_connections", "throughput_rps", "wait_p95_s"])
    assert isinstance(plots.plot_sweep(empty_sweep), Axes)


def test_png_bytes_and_file(tmp_path: Path) -> None:
    """figure_to_png_bytes and save_png produce PNG data with Agg."""
    fig = plots.plot_dashboard(trace(10))
    assert plots.figure_to_png_bytes(fig).startswith(PNG_SIGNATURE)
    path = tmp_path / "dashboard.png"
    plots.save_png(fig, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_importing_plots_leaves_pyplot_unloaded() -> None:
    """Importing poolviz.plots and drawing a dashboard never imports pyplot, so no GUI backend is touched."""
    code = (
        "import sys; from poolviz import plots; from poolviz.data.frames import events_to_frame; "
        "plots.figure_to_png_bytes(plots.plot_dashboard(events_to_frame([]))); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def starving(extra_waiters: int = 6) -> pd.DataFrame:
    """``trace(20)`` then ``extra_waiters`` callers that start waiting 1 s before the end and are never served."""
    frame = trace(20)
    end = float(frame["t"].max())
    last = frame.iloc[-1]
    rows = [
        Event(
            len(frame) + i,
            end + 0.01 * i,
            "wait",
            0,
            f"starved-{i}",
            0.0,
            0.0,
            False,
            "",
            "",
            int(last["in_use"]),
            0,
            int(last["waiting"]) + i + 1,
        )
        for i in range(extra_waiters)
    ]
    rows.append(rows[-1]._replace(seq=len(frame) + extra_waiters, t=end + 1.5, kind="checkin", conn=2, thread="w0"))
    return events_to_frame([*frame.itertuples(index=False, name=None), *rows], {"max_connections": 2})


def test_occupancy_axis_reaches_the_number_waiting_and_the_limit_is_on_top() -> None:
    """Six callers waiting on a pool of 2 fit on the axis, and the dashed limit is drawn above the lines."""
    ax = plots.plot_occupancy(starving(6), new_axes())
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 6
    limit = ax.get_lines()[3]
    assert limit.get_zorder() > max(line.get_zorder() for line in ax.get_lines()[:3])


def test_a_long_run_is_drawn_as_time_weighted_means() -> None:
    """Past max_steps changes, each count becomes its time-weighted mean per slice, and the legend says so."""
    frame = trace(600)
    ax = plots.plot_occupancy(frame, new_axes(), max_steps=200)
    assert ax.get_lines()[0].get_label() == "in use (time-weighted mean)"
    assert len(ax.get_lines()[0].get_xdata()) == 50
    mean_in_use = analysis.utilisation(frame, 1)  # the time-weighted mean of in_use over the trace
    assert sum(ax.get_lines()[0].get_ydata()) / 50 == pytest.approx(mean_in_use, rel=0.02)


def test_waits_still_going_are_in_the_cdf_and_its_percentiles() -> None:
    """Six callers waiting 1.5 s at the end are six points of the CDF, marked, and the title counts them."""
    ax = plots.plot_waits(starving(6), new_axes())
    assert "6 still waiting" in ax.get_title()
    (marks,) = [c for c in ax.collections if c.get_label().startswith("still waiting (oldest 1.5 s)")]
    assert len(marks.get_offsets()) == 6
    p99 = next(line for line in ax.get_lines() if line.get_label().startswith("p99"))
    assert p99.get_xdata()[0] > 1000 and ax.get_xlabel() == "wait (ms)"  # a starving caller's wait is in the p99


def test_timeline_draws_waits_still_going_to_the_end() -> None:
    """A wait still going at the end of the trace is a dotted segment in the wait lane."""
    ax = plots.plot_timeline(starving(3), new_axes())
    (ongoing,) = [c for c in ax.collections if c.get_label() == "still waiting"]
    assert len(ongoing.get_segments()) == 3


def test_labels_use_human_units() -> None:
    """Percentile labels read "1.5 s" or "200 ms", never "1.5e+03 ms"."""
    labels = [line.get_label() for line in plots.plot_waits(starving(6), new_axes()).get_lines()]
    assert not any("e+" in label for label in labels)
    assert any(label.endswith(" s") or label.endswith(" ms") for label in labels[1:])


def test_fairness_plot_shows_checkouts_per_worker_busiest_first() -> None:
    """One bar per worker, tallest first, a named worker with no checkout as an empty bar; Jain's index in the title."""
    frame = trace(20)
    ax = plots.plot_fairness(frame, new_axes(), threads=["w0", "w1", "w2", "idle-worker"])
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == sorted(heights, reverse=True) and heights[-1] == 0 and len(heights) == 4
    assert "Jain's index" in ax.get_title()
