"""Events as pandas DataFrames: the one place that knows the column types, and each event's checkout site."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..events.vocabulary import FIELDS, KINDS, Event

DTYPES: dict[str, Any] = {
    "seq": "int64",
    "t": "float64",
    "kind": pd.CategoricalDtype(KINDS),
    "conn": "int64",
    "thread": "object",
    "wait_s": "float64",
    "duration_s": "float64",
    "reused": "bool",
    "reason": "object",
    "message": "object",
    "in_use": "int64",
    "idle": "int64",
    "waiting": "int64",
}
assert tuple(DTYPES) == FIELDS

#: The column worked out from the events (never saved): where the connection an event concerns was checked out.
SITE = "site"
#: The columns of an events frame: the event's fields, then :data:`SITE`.
COLUMNS: tuple[str, ...] = (*FIELDS, SITE)
# The kinds that concern a connection someone may hold, and whether they end the hold.
_ENDS = {"checkin": True, "close": True, "leak": False, "unleak": False}


def events_to_frame(
    events: Iterable[Event] | Iterable[tuple[Any, ...]], attrs: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """A DataFrame with one row per event, one typed column per field, and the :data:`SITE` column.

    Rows longer than the event's fields (a frame's own rows, ``site`` included) are cut to the fields.
    """
    rows = events if isinstance(events, list) else list(events)
    width = len(FIELDS)
    if rows and len(rows[0]) > width:
        rows = [row[:width] for row in rows]
    # Building from the row tuples and converting once is about twice as fast
    # as transposing them in Python first (1M events: ~1 s against ~2 s).
    frame = pd.DataFrame(rows, columns=list(FIELDS)) if rows else pd.DataFrame({name: [] for name in FIELDS})
    frame = frame.astype(DTYPES)
    add_site(frame)
    if attrs:
        frame.attrs.update(attrs)
    return frame


def add_site(frame: pd.DataFrame) -> pd.DataFrame:
    """Set ``frame``'s :data:`SITE` column (in place, right after the event columns) and return ``frame``.

    A checkout's site is its ``message`` (where the application asked, see
    :mod:`poolviz.pools.sites`); a checkin, leak, unleak or close of a
    connection still held has the site of that connection's latest checkout;
    every other event ``""``. In a merged multi-process frame a connection is
    keyed by ``(process, process_conn)``.
    """
    site = pd.Series(_sites(frame), index=frame.index, dtype="object")
    if SITE in frame.columns:
        frame[SITE] = site
    else:
        frame.insert(min(len(FIELDS), len(frame.columns)), SITE, site)
    return frame


def _sites(frame: pd.DataFrame) -> list[str]:
    site = [""] * len(frame)
    if not len(frame):
        return site
    kind = frame["kind"]
    checkouts = (kind == "checkout").to_numpy()
    messages = frame["message"].to_numpy(dtype=object)
    if not (messages[checkouts] != "").any():
        return site  # no checkout names a site (sites off, or an older trace): nothing to follow
    if "process" in frame.columns and "process_conn" in frame.columns:
        keys = (frame["process"].to_numpy(dtype="int64") << 32) + frame["process_conn"].to_numpy(dtype="int64")
    else:
        keys = frame["conn"].to_numpy(dtype="int64")
    concerned = np.flatnonzero(checkouts | kind.isin([*_ENDS, "dispose"]).to_numpy())
    kinds = kind.to_numpy(dtype=object)[concerned].tolist()
    latest: dict[int, str] = {}
    ends = _ENDS
    for index, what, key, message in zip(
        concerned.tolist(), kinds, keys[concerned].tolist(), messages[concerned].tolist(), strict=True
    ):
        if what == "checkout":
            latest[key] = site[index] = message
        elif what == "dispose":
            latest.clear()
        elif ends[what]:
            site[index] = latest.pop(key, "")
        else:
            site[index] = latest.get(key, "")
    return site
