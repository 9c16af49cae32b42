"""The live view's kernel side: packing events into typed-array buffers and shipping them in batches."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poolviz.events import KINDS, Event, EventLog
from poolviz.live.packing import BYTES_PER_EVENT, COLUMNS, EventPacker, unpack
from poolviz.live.view import MAX_BATCH_HZ, Shipper

pytest.importorskip("anywidget")

# numpy dtypes matching the JS typed arrays view.js builds from each buffer.
JS_TYPES = {"f": "<f4", "B": "u1", "H": "<u2", "I": "<u4"}


def event(seq: int, t: float, kind: str, conn: int = 1, thread: str = "w-1", **kw: Any) -> Event:
    fields = {"wait_s": 0.0, "duration_s": 0.0, "reused": False, "reason": "", "message": ""}
    counts = {"in_use": 1, "idle": 0, "waiting": 0}
    fields.update({k: v for k, v in kw.items() if k in fields})
    counts.update({k: v for k, v in kw.items() if k in counts})
    return Event(seq, t, kind, conn, thread, **fields, **counts)


SAMPLE = [
    event(0, 0.0, "connect", duration_s=0.002),
    event(1, 0.0021, "checkout", wait_s=0.0),
    event(2, 0.0100, "wait", conn=0, thread="w-2", in_use=1, waiting=1),
    event(3, 0.0300, "checkin", duration_s=0.028, in_use=0, idle=1, waiting=1),
    event(4, 0.0301, "checkout", thread="w-2", wait_s=0.0201),
    event(5, 0.0500, "timeout", conn=0, thread="w-3", wait_s=0.05),
    event(6, 0.0700, "close", reason="stale", duration_s=0.07, in_use=0, idle=0),
    event(7, 0.0800, "leak", conn=2, thread="w-3", reason="held", duration_s=1.5),
]


def decode_like_js(header: dict[str, Any], buffers: list[bytes]) -> dict[str, np.ndarray]:
    """Each buffer read as the typed array view.js makes of it (numpy frombuffer, little-endian)."""
    return {
        name: np.frombuffer(raw, dtype=JS_TYPES[code])
        for (name, code, _about), raw in zip(COLUMNS, buffers, strict=True)
    }


def test_packed_columns_decode_to_the_same_events_as_typed_arrays() -> None:
    """Round trip: every column, read with numpy as the browser reads it, gives back each event's fields."""
    header, buffers = EventPacker().pack(SAMPLE)
    cols = decode_like_js(header, buffers)
    threads = dict(header["threads"])
    reasons = {0: "", **dict(header["reasons"])}
    assert header["n"] == len(SAMPLE) and header["first_seq"] == 0
    assert header["columns"] == [name for name, _code, _about in COLUMNS]
    for i, e in enumerate(SAMPLE):
        assert header["t_base"] + float(cols["dt"][i]) == pytest.approx(e.t, abs=1e-6)
        assert KINDS[cols["kind"][i]] == e.kind
        assert threads[cols["thread"][i]] == e.thread
        assert reasons[cols["reason"][i]] == e.reason
        assert cols["conn"][i] == e.conn
        wanted = e.wait_s if e.kind in ("checkout", "timeout") else e.duration_s
        assert float(cols["value"][i]) == pytest.approx(wanted, rel=1e-6)
        assert (cols["in_use"][i], cols["idle"][i], cols["waiting"][i]) == (e.in_use, e.idle, e.waiting)
    assert sum(len(b) for b in buffers) == BYTES_PER_EVENT * len(SAMPLE)


def test_names_travel_once_per_view() -> None:
    """A thread or reason name is in the first batch that uses it and never again, until reset()."""
    packer = EventPacker()
    first, _ = packer.pack(SAMPLE[:4])
    second, _ = packer.pack(SAMPLE[4:])
    assert [name for _id, name in first["threads"]] == ["w-1", "w-2"]
    assert [name for _id, name in second["threads"]] == ["w-3"]
    assert [name for _id, name in second["reasons"]] == ["stale", "held"]
    packer.reset()
    again, _ = packer.pack(SAMPLE[4:])
    assert [name for _id, name in again["threads"]] == ["w-2", "w-3", "w-1"]


def test_unpack_is_the_inverse_of_pack_across_batches() -> None:
    """unpack() with the receiver's dictionaries turns consecutive batches back into the events."""
    packer = EventPacker()
    threads: dict[int, str] = {}
    reasons: dict[int, str] = {}
    got = []
    for part in (SAMPLE[:3], SAMPLE[3:], []):
        header, buffers = packer.pack(part)
        got += unpack(header, buffers, threads, reasons)
    assert [(g["kind"], g["thread"], g["reason"], g["conn"]) for g in got] == [
        (e.kind, e.thread, e.reason, e.conn) for e in SAMPLE
    ]


def record(log: EventLog, n: int, kind: str = "checkout") -> None:
    with log.lock:
        for _ in range(n):
            log.record(kind, 1, threading.current_thread().name, 1, 0, 0)


class Sink:
    """Collects what a Shipper sends, with the time of each batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[Event], dict[str, Any]]] = []

    def __call__(self, events: list[Event], **info: Any) -> None:
        self.batches.append((time.monotonic(), list(events), info))


def test_batches_come_at_most_ten_times_a_second_and_lose_or_repeat_nothing() -> None:
    """Events recorded for 1.5 s by two threads arrive in batches >= 0.1 s apart, each exactly once, in order."""
    log = EventLog()
    sink = Sink()
    shipper = Shipper(log, sink).start()
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            record(log, 5)
            time.sleep(0.0005)

    writers = [threading.Thread(target=writer) for _ in range(2)]
    for w in writers:
        w.start()
    time.sleep(1.5)
    stop.set()
    for w in writers:
        w.join(5)
        assert not w.is_alive()
    assert shipper.stop()
    seqs = [e.seq for _t, events, _info in sink.batches for e in events]
    assert seqs == list(range(len(log)))
    times = [t for t, events, _info in sink.batches[:-1]]  # the last one is stop()'s flush
    gaps = np.diff(times)
    assert len(times) <= 1.5 * MAX_BATCH_HZ + 2
    assert gaps.min() >= 0.9 / MAX_BATCH_HZ
    assert all(info["lost"] == 0 for _t, _e, info in sink.batches)


def test_events_the_log_dropped_between_batches_are_counted_in_the_batch() -> None:
    """With a log of 10 events and 25 recorded between two reads, the batch says 15 were lost and the rest arrive."""
    log = EventLog(capacity=10)
    sink = Sink()
    shipper = Shipper(log, sink)
    record(log, 3)
    shipper.ship()
    record(log, 25)
    shipper.ship()
    (_t1, first, info1), (_t2, second, info2) = sink.batches
    assert [e.seq for e in first] == [0, 1, 2] and info1["lost"] == 0
    assert [e.seq for e in second] == list(range(18, 28))
    assert info2["lost"] == 15 and info2["dropped"] == 18
    assert shipper.lost == 15


def test_a_quiet_log_sends_a_clock_batch_about_once_a_second() -> None:
    """With no events the shipper still sends the kernel clock now and then, so the browser's axis moves."""
    log = EventLog()
    sink = Sink()
    shipper = Shipper(log, sink).start()
    time.sleep(1.35)
    assert shipper.stop()
    clocks = [info["now"] for _t, events, info in sink.batches if not events]
    assert 1 <= len(clocks) <= 3
    assert clocks == sorted(clocks)


def test_shipper_refuses_a_rate_above_ten_hertz() -> None:
    """hz=50 would flood IOPub: refused with the limit in the message."""
    with pytest.raises(ValueError, match="hz must be at most 10"):
        Shipper(EventLog(), Sink(), hz=50)


def test_resend_gives_a_new_browser_view_everything_shipped_so_far_once() -> None:
    """After resend(), the events shipped so far arrive again after the reset; later batches carry on from there."""
    log = EventLog()
    sink = Sink()
    shipper = Shipper(log, sink)
    record(log, 4)
    shipper.ship()
    resets = []
    shipper.resend(lambda: resets.append(len(sink.batches)))
    record(log, 2)
    shipper.ship()
    assert resets == [1]
    assert [e.seq for e in sink.batches[1][1]] == [0, 1, 2, 3]
    assert [e.seq for e in sink.batches[2][1]] == [4, 5]


class PackingSink:
    """Packs what a Shipper sends as LiveView.send_batch does, keeping each batch's header and buffers."""

    def __init__(self) -> None:
        self.packer = EventPacker()
        self.batches: list[tuple[dict[str, Any], list[bytes]]] = []

    def __call__(self, events: list[Event], **info: Any) -> None:
        header, buffers = self.packer.pack(events)
        header.update(info)
        self.batches.append((header, buffers))


def test_an_asyncio_run_ships_every_event_once_with_task_names_in_the_thread_dictionary(tmp_path: Path) -> None:
    """A closed loop of asyncio tasks on SQLite, shipped while it runs, decodes to the log's events, each once."""
    pytest.importorskip("aiosqlite")
    from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
    from poolviz.workload.asyncio_loops import run_async_closed_loop

    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "app.db"), pool_size=2)
    sink = PackingSink()
    shipper = Shipper(db.events, sink).start()
    result = run_async_closed_loop(db, tasks=6, requests=4, hold=0.03, seed=1)
    assert shipper.stop()
    assert result.requests_ok == 24

    threads: dict[int, str] = {}
    reasons: dict[int, str] = {}
    got: list[dict[str, Any]] = []
    seqs: list[int] = []
    for header, buffers in sink.batches:
        assert header["lost"] == 0
        if header["n"]:
            seqs += range(header["first_seq"], header["first_seq"] + header["n"])
        got += unpack(header, buffers, threads, reasons)
    logged = db.events.snapshot()
    assert sum(1 for header, _buffers in sink.batches if header["n"]) >= 2
    assert seqs == [e.seq for e in logged] == list(range(len(logged)))
    assert [(g["kind"], g["thread"], g["conn"], g["reason"]) for g in got] == [
        (e.kind, e.thread, e.conn, e.reason) for e in logged
    ]
    assert [(g["in_use"], g["idle"], g["waiting"]) for g in got] == [(e.in_use, e.idle, e.waiting) for e in logged]
    tasks = {f"task-{w}" for w in range(6)}
    assert tasks <= set(threads.values())
    assert len(threads) == len(set(threads.values()))  # each name travelled once
    assert {g["thread"] for g in got if g["kind"] == "checkout"} >= tasks
    assert any(g["kind"] == "wait" for g in got)  # six tasks on two connections queued
