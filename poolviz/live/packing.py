"""Events packed column-wise into little-endian binary buffers, for the browser's typed arrays.

One batch is a small JSON header plus one buffer per column, in :data:`COLUMNS`
order. Times are sent as float32 offsets from the header's ``t_base`` (a
float64 in JSON), so a batch covering a tenth of a second keeps microsecond
precision in 4 bytes. Strings that repeat (thread names, close reasons) travel
once: the header carries only the names the browser has not been given yet.
Only the standard library is used, so packing costs no pandas import.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from ..events import KINDS, Event

#: (column, array typecode, what it holds). Every typecode has a JS typed array of the same width.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("dt", "f", "float32 seconds since the header's t_base"),
    ("kind", "B", "uint8 index into KINDS"),
    ("reason", "B", "uint8 id in the reasons dictionary (0: none)"),
    ("thread", "H", "uint16 id in the threads dictionary"),
    ("conn", "I", "uint32 connection serial (0: none)"),
    ("value", "f", "float32 seconds: wait_s for checkout and timeout, duration_s otherwise"),
    ("in_use", "H", "uint16 connections in use after the event"),
    ("idle", "H", "uint16 idle connections after the event"),
    ("waiting", "H", "uint16 callers waiting after the event"),
)
BYTES_PER_EVENT = sum(array(code).itemsize for _name, code, _about in COLUMNS)
_KIND_INDEX = {kind: i for i, kind in enumerate(KINDS)}
_WAIT_KINDS = frozenset(("checkout", "timeout"))
_U16 = 0xFFFF


class EventPacker:
    """Packs batches of events for one browser view, remembering which names that view already has."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}
        self.reasons: dict[str, int] = {"": 0}

    def reset(self) -> None:
        """Forget the dictionaries: the next batch sends every name again (a view that starts over)."""
        self.threads.clear()
        self.reasons = {"": 0}

    def _id(self, table: dict[str, int], name: str, new: list[list[Any]]) -> int:
        ident = table.get(name)
        if ident is None:
            ident = table[name] = len(table)
            new.append([ident, name])
        return ident

    def pack(self, events: Sequence[Event]) -> tuple[dict[str, Any], list[bytes]]:
        """``(header, buffers)`` for ``events`` (oldest first); decode with :func:`unpack`."""
        new_threads: list[list[Any]] = []
        new_reasons: list[list[Any]] = []
        t_base = events[0].t if events else 0.0
        cols: dict[str, array[Any]] = {name: array(code) for name, code, _about in COLUMNS}
        dt, kind, reason, thread, conn, value = (
            cols["dt"].append,
            cols["kind"].append,
            cols["reason"].append,
            cols["thread"].append,
            cols["conn"].append,
            cols["value"].append,
        )
        in_use, idle, waiting = cols["in_use"].append, cols["idle"].append, cols["waiting"].append
        threads, reasons = self.threads, self.reasons
        for e in events:
            dt(e.t - t_base)
            kind(_KIND_INDEX[e.kind])
            r = reasons.get(e.reason)
            reason(r if r is not None else self._id(reasons, e.reason, new_reasons))
            th = threads.get(e.thread)
            thread(th if th is not None else self._id(threads, e.thread, new_threads))
            conn(e.conn)
            value(e.wait_s if e.kind in _WAIT_KINDS else e.duration_s)
            in_use(min(e.in_use, _U16))
            idle(min(e.idle, _U16))
            waiting(min(e.waiting, _U16))
        if sys.byteorder == "big":
            for column in cols.values():
                column.byteswap()
        header = {
            "n": len(events),
            "first_seq": events[0].seq if events else None,
            "t_base": t_base,
            "columns": [name for name, _code, _about in COLUMNS],
            "threads": new_threads,
            "reasons": new_reasons,
        }
        return header, [cols[name].tobytes() for name, _code, _about in COLUMNS]


def unpack(
    header: dict[str, Any], buffers: Sequence[bytes], threads: dict[int, str], reasons: dict[int, str]
) -> list[dict[str, Any]]:
    """The events of one batch as dicts, decoded the way ``view.js`` does (for tests and tools).

    ``threads`` and ``reasons`` are the receiver's dictionaries, updated in place.
    """
    threads.update(dict(header["threads"]))
    reasons.update({0: ""} | dict(header["reasons"]))
    cols = {}
    for (name, code, _about), raw in zip(COLUMNS, buffers, strict=True):
        column = array(code)
        column.frombytes(bytes(raw))
        if sys.byteorder == "big":
            column.byteswap()
        cols[name] = column
    return [
        {
            "t": header["t_base"] + cols["dt"][i],
            "kind": KINDS[cols["kind"][i]],
            "reason": reasons[cols["reason"][i]],
            "thread": threads[cols["thread"][i]],
            "conn": cols["conn"][i],
            "value": cols["value"][i],
            "in_use": cols["in_use"][i],
            "idle": cols["idle"][i],
            "waiting": cols["waiting"][i],
        }
        for i in range(header["n"])
    ]
