"""Events as pandas DataFrames: the one place that knows the column types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def events_to_frame(
    events: Iterable[Event] | Iterable[tuple[Any, ...]], attrs: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """A DataFrame with one row per event and one typed column per field."""
    rows = events if isinstance(events, list) else list(events)
    # Building from the row tuples and converting once is about twice as fast
    # as transposing them in Python first (1M events: ~1 s against ~2 s).
    frame = pd.DataFrame(rows, columns=list(FIELDS)) if rows else pd.DataFrame({name: [] for name in FIELDS})
    frame = frame.astype(DTYPES)
    if attrs:
        frame.attrs.update(attrs)
    return frame
