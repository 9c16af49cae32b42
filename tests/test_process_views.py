"""Merged multi-process traces in the data and view layers: saved with their process, summarised, drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection

from poolviz.data import processes as process_frames
from poolviz.data.traces import load_events, save_events
from poolviz.events.merge import PROCESS_COLUMNS, MergedEventLog
from poolviz.plots import processes as process_plots
from poolviz.servers.view import SAMPLE_COLUMNS
from poolviz.testing import raw

LIMIT_MESSAGE = "(1226, \"User 'poolviz_limited' has exceeded the 'max_user_connections' resource\")"


def merged() -> pd.DataFrame:
    """Process 0 opens one connection and holds it twice; process 1 holds one and is refused a second."""
    log = MergedEventLog([0, 1])
    zero = [
        raw(0, 0.01, "connect", 1, 0, 0),
        raw(1, 0.01, "checkout", 1, 1, 0),
        raw(2, 0.05, "checkin", 1, 0, 1),
        raw(3, 0.06, "checkout", 1, 1, 0, wait_s=0.02),
        raw(4, 0.09, "checkin", 1, 0, 1),
    ]
    one = [
        raw(0, 0.02, "connect", 1, 0, 0),
        raw(1, 0.02, "checkout", 1, 1, 0),
        raw(2, 0.03, "error", 0, 1, 0, message=LIMIT_MESSAGE),
        raw(3, 0.08, "checkin", 1, 0, 1),
    ]
    log.add(0, log.t0, zero, None)
    log.add(1, log.t0, one, None)
    log.end(0)
    log.end(1)
    return log.to_frame()


def test_a_merged_trace_keeps_its_process_columns_through_save_and_load(tmp_path: Path) -> None:
    """save_events/load_events round-trip process, process_seq, process_conn and the per-process counts."""
    frame = merged()
    loaded = load_events(save_events(frame, tmp_path / "events.csv"))
    for name in PROCESS_COLUMNS:
        assert loaded[name].tolist() == frame[name].tolist() and loaded[name].dtype == "int64"
    assert loaded["process"].tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 0]


def test_a_trace_without_process_columns_still_loads_without_them(tmp_path: Path) -> None:
    """A single-pool trace (the old format) writes and reads only the event columns."""
    frame = merged().drop(columns=list(PROCESS_COLUMNS))
    path = save_events(frame, tmp_path / "old.csv")
    assert "process" not in path.read_text().splitlines()[0]
    assert "process" not in load_events(path).columns


def test_by_process_summarises_each_pool_on_its_own() -> None:
    """One row per process: its requests, errors, connections opened, its own peak and mean hold."""
    table = process_frames.by_process(merged())
    assert table["process"].tolist() == [0, 1]
    assert table["requests"].tolist() == [2, 1] and table["errors"].tolist() == [0, 1]
    assert table["connections_opened"].tolist() == [1, 1] and table["peak_open"].tolist() == [1, 1]
    assert table["mean_hold_s"].round(3).tolist() == [0.035, 0.06]
    assert table["wait_p95_s"].round(3).tolist() == [0.019, 0.0]


def test_by_process_refuses_a_frame_without_processes() -> None:
    """A single-pool frame is refused with the columns it has named."""
    with pytest.raises(ValueError, match="needs a merged trace with a 'process' column"):
        process_frames.by_process(merged().drop(columns=["process"]))


def test_server_frame_reads_samples_and_server_csv_alike(tmp_path: Path) -> None:
    """Sample dicts and the CSV a sampler saves become the same numeric frame; missing counts are NaN."""
    samples = [dict.fromkeys(SAMPLE_COLUMNS, ""), dict.fromkeys(SAMPLE_COLUMNS, "")]
    samples[0].update(t=0.0, user_connections=0)
    samples[1].update(t=0.2, user_connections=3)
    from_list = process_frames.server_frame(samples)
    path = tmp_path / "server.csv"
    pd.DataFrame(samples).to_csv(path, index=False)
    pd.testing.assert_frame_equal(process_frames.server_frame(path), from_list)
    assert from_list["user_connections"].tolist() == [0, 3] and np.isnan(from_list["threads_connected"]).all()


def test_plot_processes_groups_lanes_by_process_and_marks_errors() -> None:
    """All holds are one collection; each process gets a labelled group of lanes; refusals are crosses."""
    ax = process_plots.plot_processes(merged())
    assert isinstance(ax, Axes)
    holds = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(holds) == 1 and len(holds[0].get_paths()) == 3
    assert [label.get_text() for label in ax.get_yticklabels()] == ["p0", "p1"]
    assert "error (refused)" in ax.get_legend_handles_labels()[1]


def test_plot_server_vs_pools_draws_both_counts_on_the_axes_given() -> None:
    """The pools' open count is a step line, the server's samples a dotted line, the limit dashed."""
    from matplotlib.figure import Figure

    given = Figure().subplots()
    samples = [{"t": 0.0, "user_connections": 0}, {"t": 0.1, "user_connections": 2}]
    ax = process_plots.plot_server_vs_pools(merged(), samples, ax=given, limit=4)
    assert ax is given
    labels = ax.get_legend_handles_labels()[1]
    assert labels[:2] == ["pools: open (in use + idle)", "pools: in use"]
    assert "server: user connections" in labels and "limit = 4" in labels


def test_a_sampler_started_before_a_run_can_be_put_on_the_runs_clock() -> None:
    """align(log) shifts the samples already taken by the difference of the two clocks' zeros."""
    from types import SimpleNamespace

    from poolviz.servers.view import ServerSampler

    sampler = ServerSampler("postgresql+pool://postgres@127.0.0.1:1/test")
    sampler.samples = [{"t": 1.0}, {"t": 2.0}]
    assert sampler.align(SimpleNamespace(t0=sampler.t0 + 0.5)) is sampler
    assert [s["t"] for s in sampler.samples] == [0.5, 1.5]
