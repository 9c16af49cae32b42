"""A pool-size sweep: throughput and waits against ``max_connections``, with the Erlang C prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .common import new_axes

# The sweep columns (analysis.SWEEP_COLUMNS) that plot_sweep cannot do without.
_SWEEP_NEEDS = ("max_connections", "throughput_rps", "wait_p95_s")


# Wait columns plot_sweep draws when the sweep has them: (column, label, marker and line).
_SWEEP_WAITS = (
    ("wait_mean_s", "mean wait", "d-"),
    ("wait_p95_s", "p95 wait", "s-"),
    ("wait_p99_s", "p99 wait", "v-"),
    ("wait_max_s", "longest wait", "x:"),
)


def plot_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Throughput and waits against pool size, the Erlang C prediction beside the measured p95.

    ``sweep`` has one row per pool size with at least the columns
    ``max_connections``, ``throughput_rps`` and ``wait_p95_s`` (see
    ``analysis.SWEEP_COLUMNS``); ``wait_mean_s``, ``wait_p99_s``,
    ``wait_max_s`` and ``predicted_wait_p95_s`` are drawn when present. A p95
    of 0 beside a long maximum is the sign of a few workers doing all the work
    (barging), so the maximum is worth its line. Throughput is on ``ax`` (left
    axis), waits in ms on a twin axis sharing x (``ax.twinx()``, on the right).
    Infinite predictions (an unstable pool) are left out.
    """
    missing = [c for c in _SWEEP_NEEDS if c not in sweep.columns]
    if missing:
        raise ValueError(f"sweep needs the columns {list(_SWEEP_NEEDS)}, missing {missing}")
    ax = new_axes(ax)
    rows = sweep.sort_values("max_connections")
    x = rows["max_connections"].to_numpy(dtype=float)
    ax.plot(x, rows["throughput_rps"].to_numpy(dtype=float), "o-", color="tab:blue", label="throughput")
    ax.set_xlabel("max_connections (pool size)")
    ax.set_ylabel("throughput (requests/s)", color="tab:blue")
    twin = ax.twinx()
    for column, label, style in _SWEEP_WAITS:
        if column in rows.columns:
            values = rows[column].to_numpy(dtype=float) * 1000.0
            twin.plot(
                x,
                values,
                style,
                color="tab:orange",
                alpha=1.0 if column == "wait_p95_s" else 0.6,
                label=f"{label}, measured",
            )
    if "predicted_wait_p95_s" in rows.columns:
        predicted = rows["predicted_wait_p95_s"].to_numpy(dtype=float) * 1000.0
        predicted = np.where(np.isfinite(predicted), predicted, np.nan)
        twin.plot(x, predicted, "^--", color="tab:purple", alpha=0.8, label="p95 wait, Erlang C")
    twin.set_ylabel("wait (ms)", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(
        handles + twin_handles, labels + twin_labels, loc="upper left", bbox_to_anchor=(1.15, 1.0), fontsize="small"
    )
    ax.set_title("Pool size sweep")
    return ax
