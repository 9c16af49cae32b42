"""Events packed column-wise into little-endian binary buffers, for the browser's typed arrays.

One batch is a small JSON header plus one buffer per column that is not all
zero, in :data:`COLUMNS` order. Every column is an unsigned integer column of
the narrowest width that holds this batch's values (``Uint8Array``,
``Uint16Array``, ``Uint32Array``, or ``Float64Array`` holding whole numbers
exactly up to 2**53); the header names the array of each column (``None`` for
a column of zeros, which travels as no buffer at all).

Times and durations travel as whole microseconds (:data:`UNIT_S`). ``dt`` is
each event's time minus the previous event's, in microseconds from the header's
``t_base`` (a float64 in JSON: the first event's time), plus ``dt_min`` (the
smallest step, 0 unless the times step back: events are in ``seq`` order and a
caller reads the clock before it takes the pool's lock). The receiver sums the
steps in integers, so every time decodes to within half a microsecond however
long the run, and a busy batch's steps fit in 2 bytes. About 10 bytes an event
go on the wire (22 before: float32 times and values, fixed 16- and 32-bit
counts), where the full record is 13 fields.

Strings that repeat (thread names, close reasons, checkout sites) travel once:
the header carries only the names the browser has not been given yet.

A checkout's site (where the application took the connection, the event's
``message``: ``"app.py:12 in handler"``) travels as an id in the sites
dictionary in a sparse column, :data:`CHECKOUT_COLUMNS`: one entry per
checkout event of the batch, in order, after the per-event columns' buffers
(no buffer when no checkout has a site). The other events carry no site of
their own (a check-in's or a leak's is its checkout's), so sites cost well
under a byte an event: the ``i``-th checkout of a batch has the ``i``-th id.
A busy batch (a third of its events checkouts, twelve sites) packs in 9.33
bytes an event with its sites, 9.0 without. The kinds and the
column names the browser decodes come from here too (:func:`wire_format`,
sent to the view as a synced trait and with every reset), so the browser code holds
no copy of them. Only the standard library is used, so packing costs no
pandas import.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from ..events import KINDS, Event

#: Seconds per tick of every time and duration on the wire (one microsecond).
UNIT_S = 1e-6
TICKS_PER_S = 1_000_000

#: (column, what it holds). Each is sent as the narrowest unsigned array that holds the batch's values.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("dt", "microseconds since the previous event (the first: since t_base), minus the header's dt_min"),
    ("kind", "index into KINDS"),
    ("reason", "id in the reasons dictionary (0: none)"),
    ("thread", "id in the threads dictionary"),
    ("conn", "connection serial (0: none)"),
    ("value", "microseconds: wait_s for checkout and timeout, duration_s otherwise"),
    ("in_use", "connections in use after the event"),
    ("idle", "idle connections after the event"),
    ("waiting", "callers waiting after the event"),
)
COLUMN_NAMES = tuple(name for name, _about in COLUMNS)
#: (column, what it holds): sparse columns with one entry per checkout event of the batch, in order.
CHECKOUT_COLUMNS: tuple[tuple[str, str], ...] = (("site", "id in the sites dictionary (0: none)"),)
CHECKOUT_COLUMN_NAMES = tuple(name for name, _about in CHECKOUT_COLUMNS)

#: (array typecode, the JS typed array that reads it, the largest whole number it holds exactly), narrowest first.
ARRAYS: tuple[tuple[str, str, int], ...] = (
    ("B", "Uint8Array", 0xFF),
    ("H", "Uint16Array", 0xFFFF),
    ("I", "Uint32Array", 0xFFFFFFFF),
    ("d", "Float64Array", 2**53),
)
_CODE_OF = {js: code for code, js, _top in ARRAYS}
_KIND_INDEX = {kind: i for i, kind in enumerate(KINDS)}
_WAIT_KINDS = frozenset(("checkout", "timeout"))


def wire_format() -> dict[str, Any]:
    """What a browser view needs to decode batches: the kinds, the column names, the time unit."""
    return {
        "kinds": list(KINDS),
        "columns": list(COLUMN_NAMES),
        "checkout_columns": list(CHECKOUT_COLUMN_NAMES),
        "unit_s": UNIT_S,
    }


def narrowest(values: Sequence[int]) -> tuple[str, str] | None:
    """``(typecode, JS array)`` of the narrowest array holding ``values`` (all >= 0); None when all are 0."""
    top = max(values, default=0)
    if top == 0:
        return None
    for code, js, limit in ARRAYS:
        if top <= limit:
            return code, js
    raise ValueError(f"a packed column holds whole numbers up to 2**53, got {top}")


class EventPacker:
    """Packs batches of events for one browser view, remembering which names that view already has."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}
        self.reasons: dict[str, int] = {"": 0}
        self.sites: dict[str, int] = {"": 0}

    def reset(self) -> None:
        """Forget the dictionaries: the next batch sends every name again (a view that starts over)."""
        self.threads.clear()
        self.reasons = {"": 0}
        self.sites = {"": 0}

    def _id(self, table: dict[str, int], name: str, new: list[list[Any]]) -> int:
        ident = table.get(name)
        if ident is None:
            ident = table[name] = len(table)
            new.append([ident, name])
        return ident

    def pack(self, events: Sequence[Event]) -> tuple[dict[str, Any], list[bytes]]:
        """``(header, buffers)`` for ``events`` (in ``seq`` order); decode with :func:`unpack`."""
        new_threads: list[list[Any]] = []
        new_reasons: list[list[Any]] = []
        new_sites: list[list[Any]] = []
        t_base = events[0].t if events else 0.0
        ticks = [round((e.t - t_base) * TICKS_PER_S) for e in events]
        steps = [b - a for a, b in zip([0, *ticks], ticks, strict=False)]
        dt_min = min(0, min(steps, default=0))
        threads, reasons, sites = self.threads, self.reasons, self.sites
        thread_ids, reason_ids, site_ids = [], [], []
        for e in events:
            r = reasons.get(e.reason)
            reason_ids.append(r if r is not None else self._id(reasons, e.reason, new_reasons))
            th = threads.get(e.thread)
            thread_ids.append(th if th is not None else self._id(threads, e.thread, new_threads))
            if e.kind == "checkout":
                si = sites.get(e.message)
                site_ids.append(si if si is not None else self._id(sites, e.message, new_sites))
        values = {
            "dt": [s - dt_min for s in steps] if dt_min else steps,
            "kind": [_KIND_INDEX[e.kind] for e in events],
            "reason": reason_ids,
            "thread": thread_ids,
            "conn": [e.conn for e in events],
            # Waits and durations are >= 0 by construction; a negative one would be a clock bug, sent as 0.
            "value": [
                max(0, round((e.wait_s if e.kind in _WAIT_KINDS else e.duration_s) * TICKS_PER_S)) for e in events
            ],
            "in_use": [e.in_use for e in events],
            "idle": [e.idle for e in events],
            "waiting": [e.waiting for e in events],
        }
        buffers: list[bytes] = []
        columns = _pack_columns(COLUMN_NAMES, values, buffers)
        checkout_columns = _pack_columns(CHECKOUT_COLUMN_NAMES, {"site": site_ids}, buffers)
        header = {
            "n": len(events),
            "first_seq": events[0].seq if events else None,
            "t_base": t_base,
            "unit_s": UNIT_S,
            "dt_min": dt_min,
            "columns": columns,
            "checkouts": len(site_ids),
            "checkout_columns": checkout_columns,
            "threads": new_threads,
            "reasons": new_reasons,
            "sites": new_sites,
        }
        return header, buffers


def _pack_columns(names: Sequence[str], values: dict[str, list[int]], buffers: list[bytes]) -> list[list[Any]]:
    # Each column in its narrowest array, appended to buffers; [name, JS array or None] for the header.
    columns: list[list[Any]] = []
    for name in names:
        width = narrowest(values[name])
        columns.append([name, width and width[1]])
        if width is not None:
            column = array(width[0], values[name])
            if sys.byteorder == "big":
                column.byteswap()
            buffers.append(column.tobytes())
    return columns


def _read_column(js: str, raw: bytes) -> list[int]:
    column = array(_CODE_OF[js])
    column.frombytes(bytes(raw))
    if sys.byteorder == "big":
        column.byteswap()
    return [int(v) for v in column]


def decode_columns(header: dict[str, Any], buffers: Sequence[bytes]) -> dict[str, list[int]]:
    """Each column of one batch as whole numbers (zeros for a column sent as no buffer).

    The sparse :data:`CHECKOUT_COLUMNS` come back with one entry per checkout
    event (``header["checkouts"]`` of them).
    """
    pending = iter(buffers)
    cols: dict[str, list[int]] = {}
    sparse = header.get("checkout_columns", [])
    for (name, js), n in [(c, header["n"]) for c in header["columns"]] + [
        (c, header.get("checkouts", 0)) for c in sparse
    ]:
        cols[name] = [0] * n if js is None else _read_column(js, next(pending))
    if next(pending, None) is not None:
        raise ValueError("more buffers than the header's non-zero columns")
    return cols


def unpack(
    header: dict[str, Any],
    buffers: Sequence[bytes],
    threads: dict[int, str],
    reasons: dict[int, str],
    sites: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """The events of one batch as dicts, decoded the way the browser (``live/js/store.js``) does (for tests and tools).

    ``threads``, ``reasons`` and ``sites`` are the receiver's dictionaries,
    updated in place. A checkout's ``site`` is its own; every other event's is
    ``""`` (its checkout's site is the receiver's to look up).
    """
    sites = {} if sites is None else sites
    threads.update(dict(header["threads"]))
    reasons.update({0: ""} | dict(header["reasons"]))
    sites.update({0: ""} | dict(header.get("sites", [])))
    cols = decode_columns(header, buffers)
    unit, dt_min, ticks, checkout = header["unit_s"], header["dt_min"], 0, 0
    site_ids = cols.get("site", [])
    out = []
    for i in range(header["n"]):
        ticks += cols["dt"][i] + dt_min
        kind = KINDS[cols["kind"][i]]
        site = ""
        if kind == "checkout":
            site = sites[site_ids[checkout]]
            checkout += 1
        out.append(
            {
                "t": header["t_base"] + ticks * unit,
                "kind": kind,
                "reason": reasons[cols["reason"][i]],
                "thread": threads[cols["thread"][i]],
                "conn": cols["conn"][i],
                "value": cols["value"][i] * unit,
                "in_use": cols["in_use"][i],
                "idle": cols["idle"][i],
                "waiting": cols["waiting"][i],
                "site": site,
            }
        )
    return out
