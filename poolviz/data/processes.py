"""Merged multi-process traces as tables: one summary row per process, and the server's samples as a frame.

A merged trace (:meth:`poolviz.merge.MergedEventLog.to_frame`, or a saved one
that kept its ``process`` column) has one row per event of every process; its
``conn`` numbers are unique across processes. :func:`by_process` splits it by
``process`` and summarises each pool the way :func:`poolviz.data.analysis.summarize`
summarises one. :func:`server_frame` reads the server's own counts
(:class:`poolviz.servers.view.ServerSampler` samples, or the ``server.csv`` it
saves) into a frame on the same clock as the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..servers.view import SAMPLE_COLUMNS
from .analysis import hold_intervals, wait_stats

BY_PROCESS_COLUMNS = (
    "process",
    "requests",
    "timeouts",
    "errors",
    "connections_opened",
    "peak_open",
    "peak_in_use",
    "mean_hold_s",
    "wait_p95_s",
)


def require_process(frame: pd.DataFrame) -> None:
    """Refuse a frame without a ``process`` column (a single process's trace), naming the columns it has."""
    if "process" not in frame.columns:
        raise ValueError(
            "this needs a merged trace with a 'process' column (from a multi-process run or MergedEventLog), "
            f"got the columns {', '.join(map(str, frame.columns))}"
        )


def by_process(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per process: its requests, timeouts, errors, connections opened, peak open and in use, waits.

    ``peak_open`` and ``peak_in_use`` are that process's own pool counts
    (``process_in_use`` + ``process_idle``) when the frame has them, else NaN;
    ``mean_hold_s`` is its mean checkout-to-checkin time and ``wait_p95_s``
    its requests' 95th-percentile wait. Sorted by process.
    """
    require_process(frame)
    rows = []
    for process, part in frame.groupby("process", sort=True):
        kinds = part["kind"].astype(str)
        holds = hold_intervals(part)
        own = "process_in_use" in part.columns and "process_idle" in part.columns and len(part)
        rows.append(
            {
                "process": int(process),  # type: ignore[call-overload]
                "requests": int((kinds == "checkout").sum() + (kinds == "timeout").sum()),
                "timeouts": int((kinds == "timeout").sum()),
                "errors": int((kinds == "error").sum()),
                "connections_opened": int((kinds == "connect").sum()),
                "peak_open": int((part["process_in_use"] + part["process_idle"]).max()) if own else np.nan,
                "peak_in_use": int(part["process_in_use"].max()) if own else np.nan,
                "mean_hold_s": float(holds["duration"].mean()) if len(holds) else np.nan,
                "wait_p95_s": wait_stats(part)["p95_s"],
            }
        )
    return pd.DataFrame(rows, columns=list(BY_PROCESS_COLUMNS))


def server_frame(source: Any) -> pd.DataFrame:
    """The server's samples as a frame with the columns of :data:`poolviz.servers.view.SAMPLE_COLUMNS`.

    ``source`` is a ``ServerSampler``, its list of sample dicts, or the path of
    the ``server.csv`` it saved. Counts are numbers; a count the server did not
    report (PostgreSQL has no ``threads_connected``) is NaN.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no server samples at {str(path)!r} (poolviz run writes server.csv)")
        frame = pd.read_csv(path)
        missing = [c for c in SAMPLE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path} is not a server.csv: missing the columns {', '.join(missing)}")
    else:
        samples = getattr(source, "samples", source)
        if not isinstance(samples, Iterable) or isinstance(samples, (str, bytes)):
            raise TypeError(f"server samples must be a ServerSampler, a list of dicts or a path, got {type(source)}")
        rows = list(samples)
        if not all(isinstance(r, Mapping) for r in rows):
            raise TypeError("server samples must be dicts with the keys of SAMPLE_COLUMNS")
        frame = pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
    frame = frame.loc[:, list(SAMPLE_COLUMNS)].replace("", np.nan)
    return frame.apply(pd.to_numeric, errors="coerce").astype("float64")
