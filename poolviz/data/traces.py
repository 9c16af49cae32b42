"""Saving and loading event traces: a CSV of events plus a JSON sidecar with the trace's metadata.

A trace ``run.csv`` has one row per event and one column per field of
:class:`poolviz.events.Event` (see :mod:`poolviz.events` for what each kind
and field means), in that order. Floats are written with ``repr`` so they read
back bit for bit, booleans as ``True``/``False``, and text with the ``csv``
module's quoting, so a message with commas or newlines survives.

The ``site`` column of a frame (where each event's connection was checked
out) is not saved: it is worked out again from the events when loading.

A merged multi-process trace also keeps its process columns
(:data:`poolviz.merge.PROCESS_COLUMNS`: ``process`` and the event as its own
pool saw it) after the event columns; traces without them load as before.

The frame's ``attrs`` (``dropped``, ``capacity``, ``pool``, ``backend``,
``max_connections``, the masked ``url``…) go in a sidecar ``run.meta.json``
beside it rather than in a comment line, so the CSV stays plain for any tool
that reads CSV. The sidecar is optional when loading: without it the attrs are
empty. Attribute values must be JSON values (tuples come back as lists).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events.merge import PROCESS_COLUMNS
from ..events.vocabulary import FIELDS, KINDS, Event

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "poolviz-trace"
VERSION = 1
_INT_FIELDS = ("seq", "conn", "in_use", "idle", "waiting")
_FLOAT_FIELDS = ("t", "wait_s", "duration_s")
_BOOL_FIELDS = ("reused",)
_BOOLS = {"True": True, "False": False, "true": True, "false": False, "1": True, "0": False}


def meta_path(path: str | Path) -> Path:
    """The sidecar of a trace: ``run.csv`` → ``run.meta.json`` (other names just add ``.meta.json``)."""
    path = Path(path)
    stem = path.name[: -len(".csv")] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(stem + ".meta.json")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def save_events(source: Any, path: str | Path) -> Path:
    """Write a trace to ``path`` (CSV) and its metadata to the sidecar; returns ``path``.

    ``source`` is an events DataFrame (as from ``EventLog.to_frame()``), an
    :class:`~poolviz.events.EventLog`, an instrumented pool or a list of
    :class:`~poolviz.events.Event`. Only the event columns are written, and
    the process columns of a merged trace when it has them (not ``site``, which
    loading works out again).
    """
    frame = as_frame(source)
    missing = [name for name in FIELDS if name not in frame.columns]
    if missing:
        raise ValueError(f"cannot save: the frame lacks the event columns {', '.join(missing)}")
    attrs = dict(frame.attrs)
    try:
        meta_text = json.dumps({"format": FORMAT, "version": VERSION, "attrs": attrs}, indent=2, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"cannot save: frame.attrs must hold JSON values only ({exc})") from None
    path = Path(path)
    names = list(FIELDS) + [name for name in PROCESS_COLUMNS if name in frame.columns]
    columns = [frame[name].tolist() for name in names]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in zip(*columns, strict=True):
            writer.writerow([_cell(v) for v in row])
    meta_path(path).write_text(meta_text + "\n", encoding="utf-8")
    return path


def _convert(path: Path, name: str, values: list[str], parse: Callable[[str], Any], what: str) -> list[Any]:
    out = []
    for row, text in enumerate(values, start=2):
        try:
            out.append(parse(text))
        except (ValueError, KeyError):
            raise ValueError(f"{path}: column {name!r} on line {row} holds {text!r}, not {what}") from None
    return out


def load_events(path: str | Path) -> pd.DataFrame:
    """Read a trace written by :func:`save_events`: the same values, dtypes and ``attrs``."""
    import pandas as pd

    from .frames import DTYPES, add_site

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no trace file at {str(path)!r}")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{path} is empty, not a poolviz trace (expected the columns {', '.join(FIELDS)})")
    header, body = rows[0], rows[1:]
    missing = [name for name in FIELDS if name not in header]
    if missing:
        raise ValueError(
            f"{path} is not a poolviz trace: missing the columns {', '.join(missing)} (expected {', '.join(FIELDS)})"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)}")
    extra = [name for name in PROCESS_COLUMNS if name in header]
    raw = {name: [row[header.index(name)] for row in body] for name in (*FIELDS, *extra)}
    data: dict[str, list[Any]] = {}
    for name in FIELDS:
        values = raw[name]
        if name in _INT_FIELDS:
            data[name] = _convert(path, name, values, int, "an integer")
        elif name in _FLOAT_FIELDS:
            data[name] = _convert(path, name, values, float, "a number")
        elif name in _BOOL_FIELDS:
            data[name] = _convert(path, name, values, _BOOLS.__getitem__, "True or False")
        else:
            data[name] = values
    unknown = sorted(set(data["kind"]) - set(KINDS))
    if unknown:
        raise ValueError(f"{path}: unknown event kind(s) {', '.join(map(repr, unknown))}; known: {', '.join(KINDS)}")
    frame = pd.DataFrame(data, columns=list(FIELDS)).astype(DTYPES)
    for name in extra:
        frame[name] = pd.Series(_convert(path, name, raw[name], int, "an integer"), dtype="int64")
    add_site(frame)  # worked out from the events, as when the trace was recorded
    frame.attrs.update(_load_attrs(path))
    return frame


def _load_attrs(path: Path) -> dict[str, Any]:
    sidecar = meta_path(path)
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{sidecar} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("attrs"), dict):
        raise ValueError(f"{sidecar} is not a poolviz trace sidecar (expected format {FORMAT!r} with attrs)")
    return dict(meta["attrs"])


def as_frame(source: Any) -> pd.DataFrame:
    """The events of ``source`` as a DataFrame: every reader of events accepts the same inputs.

    ``source`` is an events DataFrame (as from ``EventLog.to_frame()``), an
    :class:`~poolviz.events.EventLog`, anything with an ``events`` attribute
    holding either (an instrumented pool, a ``WorkloadResult``), a list of
    :class:`~poolviz.events.Event`, or the path of a saved trace.
    """
    import pandas as pd

    from .frames import events_to_frame

    if isinstance(source, pd.DataFrame):
        return source
    if callable(getattr(source, "to_frame", None)):  # an EventLog or a MergedEventLog
        return source.to_frame()
    inner = getattr(source, "events", None)
    if isinstance(inner, pd.DataFrame) or callable(getattr(inner, "to_frame", None)):
        return as_frame(inner)
    if isinstance(source, (str, Path)):
        return load_events(source)
    if isinstance(source, Iterable) and not isinstance(source, bytes):
        events = list(source)
        if all(isinstance(e, Event) for e in events):
            return events_to_frame(events)
    raise TypeError(
        "events must be a DataFrame of events, an EventLog, an instrumented pool, a WorkloadResult, "
        f"a list of Events or a trace path, got {type(source).__name__}"
    )
