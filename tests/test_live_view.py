"""The live view's kernel side: packing events into typed-array buffers and shipping them in batches."""

from __future__ import annotations

import base64
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import NODE_INGEST, NODE_LOAD, run_view_module

from poolviz.events import KINDS, Event, EventLog
from poolviz.live.packing import (
    CHECKOUT_COLUMN_NAMES,
    COLUMN_NAMES,
    UNIT_S,
    EventPacker,
    decode_columns,
    unpack,
    wire_format,
)
from poolviz.live.view import JS_DIR, JS_PARTS, MAX_BATCH_HZ, LiveView, Shipper, esm_source

pytest.importorskip("anywidget")

# numpy dtypes matching the JS typed arrays the view builds from each buffer (named in the header).
JS_TYPES = {"Uint8Array": "u1", "Uint16Array": "<u2", "Uint32Array": "<u4", "Float64Array": "<f8"}


def event(seq: int, t: float, kind: str, conn: int = 1, thread: str = "w-1", **kw: Any) -> Event:
    fields = {"wait_s": 0.0, "duration_s": 0.0, "reused": False, "reason": "", "message": ""}
    counts = {"in_use": 1, "idle": 0, "waiting": 0}
    fields.update({k: v for k, v in kw.items() if k in fields})
    counts.update({k: v for k, v in kw.items() if k in counts})
    return Event(seq, t, kind, conn, thread, **fields, **counts)


SAMPLE = [
    event(0, 0.0, "connect", duration_s=0.002),
    event(1, 0.0021, "checkout", wait_s=0.0, message="app/views.py:12 in index"),
    event(2, 0.0100, "wait", conn=0, thread="w-2", in_use=1, waiting=1),
    event(3, 0.0300, "checkin", duration_s=0.028, in_use=0, idle=1, waiting=1),
    event(4, 0.0301, "checkout", thread="w-2", wait_s=0.0201, message="app/jobs.py:40 in nightly"),
    event(5, 0.0500, "timeout", conn=0, thread="w-3", wait_s=0.05),
    event(6, 0.0700, "close", reason="stale", duration_s=0.07, in_use=0, idle=0),
    event(7, 0.0800, "leak", conn=2, thread="w-3", reason="held", duration_s=1.5),
]

# A two-hour run: an idle gap of 80 minutes (more microseconds than a uint32 holds), a leak held that
# long, a clock read that steps back 3 µs (a caller read the clock before it took the pool's lock),
# and counts and a connection serial past 16 bits.
LONG = [
    event(0, 12.345678, "checkout", conn=70_000, wait_s=0.5, in_use=300, idle=70_000, waiting=2),
    event(1, 12.345675, "checkin", conn=70_000, duration_s=1e-6),
    event(2, 12.345675 + 4800.0, "leak", conn=70_001, reason="held", duration_s=4800.25),
    event(3, 7200.000001, "checkout", conn=70_001, wait_s=4321.0, waiting=1),
]


def value_of(e: Event) -> float:
    return e.wait_s if e.kind in ("checkout", "timeout") else e.duration_s


def decode_like_js(header: dict[str, Any], buffers: list[bytes]) -> dict[str, np.ndarray]:
    """Each buffer read as the typed array the header names (numpy frombuffer, little-endian); zeros for no buffer."""
    pending = iter(buffers)
    return {
        name: np.zeros(header["n"], "u1") if js is None else np.frombuffer(next(pending), dtype=JS_TYPES[js])
        for name, js in header["columns"]
    }


def test_packed_columns_decode_to_the_same_events_as_typed_arrays() -> None:
    """Round trip: every column, read with numpy as the browser reads it, gives back each event's fields."""
    header, buffers = EventPacker().pack(SAMPLE)
    cols = decode_like_js(header, buffers)
    threads = dict(header["threads"])
    reasons = {0: "", **dict(header["reasons"])}
    assert header["n"] == len(SAMPLE) and header["first_seq"] == 0
    assert [name for name, _js in header["columns"]] == list(COLUMN_NAMES)
    times = header["t_base"] + np.cumsum(cols["dt"].astype(np.int64) + header["dt_min"]) * header["unit_s"]
    for i, e in enumerate(SAMPLE):
        assert times[i] == pytest.approx(e.t, abs=UNIT_S / 2)
        assert KINDS[cols["kind"][i]] == e.kind
        assert threads[cols["thread"][i]] == e.thread
        assert reasons[cols["reason"][i]] == e.reason
        assert cols["conn"][i] == e.conn
        assert cols["value"][i] * UNIT_S == pytest.approx(value_of(e), abs=UNIT_S / 2)
        assert (cols["in_use"][i], cols["idle"][i], cols["waiting"][i]) == (e.in_use, e.idle, e.waiting)


def test_each_column_travels_in_the_narrowest_array_and_a_column_of_zeros_not_at_all() -> None:
    """Small numbers go as Uint8Array, 20 ms steps as Uint16Array; a column of zeros goes as no buffer."""
    quiet = [event(i, 0.02 * i, "checkout" if i % 2 else "checkin", conn=1 + i % 3, in_use=i % 3) for i in range(50)]
    header, buffers = EventPacker().pack(quiet)
    arrays = dict(header["columns"])
    assert arrays["dt"] == "Uint16Array" and arrays["kind"] == arrays["conn"] == arrays["in_use"] == "Uint8Array"
    # One thread (id 0), no reasons, no waits or hold times, nothing idle or waiting: zeros, sent as no buffer.
    assert [name for name, js in arrays.items() if js is None] == ["reason", "thread", "value", "idle", "waiting"]
    assert len(buffers) == 4
    assert sum(len(b) for b in buffers) == 50 * (2 + 1 + 1 + 1)


def busy_batch(n: int = 2000) -> list[Event]:
    """A tenth of a second of a busy pool: 8 workers on 4 connections, holds of a few ms, some waits."""
    rng = random.Random(7)
    events, t = [], 100.0
    for i in range(n):
        t += rng.expovariate(1 / 50e-6)
        kind = ("checkout", "checkin", "wait")[i % 3]
        wait = rng.expovariate(1 / 2e-3) if kind == "checkout" else 0.0
        hold = rng.expovariate(1 / 5e-3) if kind == "checkin" else 0.0
        events.append(
            event(
                i,
                t,
                kind,
                conn=1 + i % 4,
                thread=f"w-{i % 8}",
                wait_s=wait,
                duration_s=hold,
                in_use=i % 5,
                waiting=i % 4,
            )
        )
    return events


SITES = [f"app/views.py:{10 * i} in handler_{i}" for i in range(12)]


def with_sites(events: list[Event], seed: int = 3) -> list[Event]:
    """The events with a site (one of SITES) on every checkout, as the pools record it in ``message``."""
    rng = random.Random(seed)
    return [e._replace(message=rng.choice(SITES)) if e.kind == "checkout" else e for e in events]


def test_a_busy_batch_costs_about_twelve_bytes_an_event_where_it_cost_22() -> None:
    """Microsecond steps and narrow columns: a busy tenth of a second packs in at most 12 bytes an event."""
    events = busy_batch()
    _header, buffers = EventPacker().pack(events)
    per_event = sum(len(b) for b in buffers) / len(events)
    assert per_event <= 12, per_event


def test_a_long_run_with_steps_back_decodes_exactly_to_the_microsecond() -> None:
    """An 80-minute gap and leak, a clock stepping back 3 µs, 17-bit counts: every time and value within 0.5 µs."""
    header, buffers = EventPacker().pack(LONG)
    arrays = dict(header["columns"])
    assert header["dt_min"] == -3 and arrays["dt"] == "Float64Array" and arrays["value"] == "Float64Array"
    assert arrays["conn"] == arrays["idle"] == "Uint32Array"
    got = unpack(header, buffers, {}, {})
    for g, e in zip(got, LONG, strict=True):
        assert abs(g["t"] - e.t) <= UNIT_S / 2 + 1e-9, (g["t"], e.t)
        assert abs(g["value"] - value_of(e)) <= UNIT_S / 2 + 1e-9
        assert (g["conn"], g["in_use"], g["idle"], g["waiting"]) == (e.conn, e.in_use, e.idle, e.waiting)
    assert [g["t"] for g in got][:2] == sorted([g["t"] for g in got][:2], reverse=True)  # the step back kept


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
    sites: dict[int, str] = {}
    got = []
    for part in (SAMPLE[:3], SAMPLE[3:], []):
        header, buffers = packer.pack(part)
        got += unpack(header, buffers, threads, reasons, sites)
    assert [(g["kind"], g["thread"], g["reason"], g["conn"]) for g in got] == [
        (e.kind, e.thread, e.reason, e.conn) for e in SAMPLE
    ]


def test_decode_columns_refuses_a_buffer_the_header_does_not_name() -> None:
    """An extra buffer means header and buffers disagree: an error, not a silent shift of every column."""
    header, buffers = EventPacker().pack(SAMPLE)
    with pytest.raises(ValueError, match="more buffers"):
        decode_columns(header, [*buffers, b"\x00" * len(SAMPLE)])


NODE_DECODE = (
    NODE_INGEST
    + """
const c = s.cols, out = [];
let k = 0;  // the k-th checkout started the k-th hold, which keeps its site
for (let i = 0; i < s.n; i++) {
  const kind = input.wire.kinds[c.kind[i]];
  out.push({ t: c.t[i], kind, thread: s.threads[c.thread[i]],
    reason: s.reasons[c.reason[i]], conn: c.conn[i], value: c.value[i], in_use: c.in_use[i], idle: c.idle[i],
    waiting: c.waiting[i], site: kind === "checkout" ? s.sites[s.holds[k++].site] : "" });
}
process.stdout.write(JSON.stringify({ events: out, totals: s.totals, lanes: s.laneCount }));
"""
)


run_node = run_view_module


def test_the_browser_decodes_batches_exactly_as_unpack_does(tmp_path: Path) -> None:
    """The view's ingest (run in node) gives the same times, values, names and counts as unpack, to the bit."""
    packer = EventPacker()
    threads: dict[int, str] = {}
    reasons: dict[int, str] = {}
    sites: dict[int, str] = {}
    batches, expected = [], []
    for part in (SAMPLE[:3], SAMPLE[3:], [], with_sites(busy_batch(300)), LONG):
        header, buffers = packer.pack(part)
        header.update(type="events", now=part[-1].t if part else 0.0, lost=0, dropped=0)
        batches.append({"header": header, "buffers": [base64.b64encode(b).decode() for b in buffers]})
        expected += unpack(header, buffers, threads, reasons, sites)
    out = run_node(NODE_DECODE, {"wire": wire_format(), "batches": batches}, tmp_path)
    assert len(out["events"]) == len(expected)
    for got, want in zip(out["events"], expected, strict=True):
        assert got == want
    assert out["totals"]["checkouts"] == sum(e["kind"] == "checkout" for e in expected)


def js_sources() -> dict[str, str]:
    return {name: (JS_DIR / name).read_text() for name in JS_PARTS}


def test_the_view_uses_the_kinds_and_columns_python_sends_and_holds_no_copy() -> None:
    """Every kind the view names (K.<kind>) and column it reads (col.<name>) exists in Python; no kind list in JS."""
    source = esm_source()
    named_kinds = set(re.findall(r"\bK\.(\w+)", source))
    assert named_kinds and named_kinds <= set(KINDS), named_kinds - set(KINDS)
    read_columns = set(re.findall(r"\bcol\.(\w+)", source))
    assert read_columns == set(COLUMN_NAMES), read_columns ^ set(COLUMN_NAMES)
    checkout_columns = set(re.findall(r"\bper\.(\w+)", source))
    assert checkout_columns == set(CHECKOUT_COLUMN_NAMES), checkout_columns ^ set(CHECKOUT_COLUMN_NAMES)
    for kind in KINDS:
        assert f'"{kind}"' not in source, f"the view's JS spells the kind {kind!r}: it must come from the wire format"
    assert wire_format() == {
        "kinds": list(KINDS),
        "columns": list(COLUMN_NAMES),
        "checkout_columns": list(CHECKOUT_COLUMN_NAMES),
        "unit_s": UNIT_S,
    }


def test_the_wire_format_goes_to_the_browser_as_a_trait_and_with_every_reset() -> None:
    """LiveView.wire is the packing module's wire format, and reset() sends it again."""
    view = LiveView()
    sent: list[dict[str, Any]] = []
    view.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    assert view.wire == wire_format()
    assert "wire" in view.keys
    view.reset(4)
    assert sent == [{"type": "reset", "max_connections": 4, "wire": wire_format(), "by_process": False}]


def test_the_view_source_stays_in_small_files_of_small_functions() -> None:
    """No JS file over 600 lines, no top-level JS function over 80; the module is the files joined in order."""
    sources = js_sources()
    for name, text in sources.items():
        lines = text.splitlines()
        assert len(lines) <= 600, (name, len(lines))
        starts = [i for i, line in enumerate(lines) if re.match(r"(export default )?\{|function \w+", line)]
        for i in starts:
            end = next(j for j in range(i, len(lines)) if lines[j].startswith("}"))
            assert end - i + 1 <= 80, (name, lines[i], end - i + 1)
    assert all(text in esm_source() for text in sources.values())
    assert [name for name, text in sources.items() if "export " in text] == [JS_PARTS[-1]]


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
            time.sleep(0.0005)  # pace the writers (events all along the window); it orders nothing

    writers = [threading.Thread(target=writer) for _ in range(2)]
    for w in writers:
        w.start()
    time.sleep(1.5)  # the window the batch rate is measured over must elapse; no thread waits on another
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
    time.sleep(1.35)  # a quiet window that must elapse: the clock batches are counted over it
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
    sites: dict[int, str] = {}
    got: list[dict[str, Any]] = []
    seqs: list[int] = []
    for header, buffers in sink.batches:
        assert header["lost"] == 0
        if header["n"]:
            seqs += range(header["first_seq"], header["first_seq"] + header["n"])
        got += unpack(header, buffers, threads, reasons, sites)
    logged = db.events.snapshot()
    assert sum(1 for header, _buffers in sink.batches if header["n"]) >= 2
    assert seqs == [e.seq for e in logged] == list(range(len(logged)))
    assert [(g["kind"], g["thread"], g["conn"], g["reason"]) for g in got] == [
        (e.kind, e.thread, e.conn, e.reason) for e in logged
    ]
    assert [g["site"] for g in got if g["kind"] == "checkout"] == [e.message for e in logged if e.kind == "checkout"]
    assert [(g["in_use"], g["idle"], g["waiting"]) for g in got] == [(e.in_use, e.idle, e.waiting) for e in logged]
    tasks = {f"task-{w}" for w in range(6)}
    assert tasks <= set(threads.values())
    assert len(threads) == len(set(threads.values()))  # each name travelled once
    assert {g["thread"] for g in got if g["kind"] == "checkout"} >= tasks
    assert any(g["kind"] == "wait" for g in got)  # six tasks on two connections queued


NODE_COLOURS = (
    NODE_LOAD
    + """
const out = {};
for (const dark of [false, true]) {
  out[dark ? "dark" : "light"] = [...Array(16).keys()].map((i) => view.threadColour({ dark }, i));
}
process.stdout.write(JSON.stringify(out));
"""
)


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_thread_colours_stand_out_from_light_and_dark_backgrounds(tmp_path: Path) -> None:
    """The first 16 threads' colours contrast at least 2.25:1 with white in Light and with #111 in Dark."""
    import colorsys

    out = run_node(NODE_COLOURS, {}, tmp_path)
    for theme, background in (("light", 1.0), ("dark", relative_luminance((0x11 / 255,) * 3))):
        for css in out[theme]:
            hue, sat, light, _alpha = (float(x.rstrip("%")) for x in css[css.index("(") + 1 : -1].split(","))
            rgb = colorsys.hls_to_rgb(hue / 360, light / 100, sat / 100)
            lum = relative_luminance(rgb)
            ratio = (max(lum, background) + 0.05) / (min(lum, background) + 0.05)
            assert ratio >= 2.25, (theme, css, ratio)


def test_sites_travel_once_each_with_an_id_per_checkout_in_a_sparse_column() -> None:
    """A site string is in the first batch that uses it; each checkout carries its id, other events none."""
    packer = EventPacker()
    first, first_buffers = packer.pack(SAMPLE[:4])
    second, second_buffers = packer.pack([*SAMPLE[4:], event(8, 0.09, "checkout", message=SITES[0])])
    third, _ = packer.pack([event(9, 0.1, "checkout", message="app/views.py:12 in index")])
    assert first["sites"] == [[1, "app/views.py:12 in index"]] and first["checkouts"] == 1
    assert second["sites"] == [[2, "app/jobs.py:40 in nightly"], [3, SITES[0]]] and second["checkouts"] == 2
    assert third["sites"] == [] and dict(first["checkout_columns"]) == {"site": "Uint8Array"}
    threads: dict[int, str] = {}
    reasons: dict[int, str] = {}
    sites: dict[int, str] = {}
    got = unpack(first, first_buffers, threads, reasons, sites) + unpack(
        second, second_buffers, threads, reasons, sites
    )
    assert [g["site"] for g in got if g["kind"] == "checkout"] == [
        "app/views.py:12 in index",
        "app/jobs.py:40 in nightly",
        SITES[0],
    ]
    assert {g["site"] for g in got if g["kind"] != "checkout"} == {""}
    quiet, buffers = EventPacker().pack([event(0, 0.0, "checkout"), event(1, 0.1, "checkin")])
    assert dict(quiet["checkout_columns"]) == {"site": None} and quiet["sites"] == []
    assert len(buffers) == sum(js is not None for _name, js in quiet["columns"])
    packer.reset()
    again, _ = packer.pack(SAMPLE[4:5])
    assert again["sites"] == [[1, "app/jobs.py:40 in nightly"]]


def test_sites_add_a_third_of_a_byte_an_event_to_a_busy_batch() -> None:
    """With a site on every checkout (a third of the events), the busy batch grows by at most 0.4 bytes an event."""
    events = busy_batch()
    plain = sum(map(len, EventPacker().pack(events)[1])) / len(events)
    header, buffers = EventPacker().pack(with_sites(events))
    sited = sum(map(len, buffers)) / len(events)
    print(f"\nbusy batch: {plain:.2f} B/event without sites, {sited:.2f} with ({len(header['sites'])} sites)")
    assert sited - plain <= 0.4 and sited <= 10, (plain, sited)


def batches_for(parts: list[list[Event]]) -> list[dict[str, Any]]:
    """Packed batches as the node runner takes them (header plus base64 buffers)."""
    packer, out = EventPacker(), []
    for part in parts:
        header, buffers = packer.pack(part)
        header.update(type="events", now=part[-1].t if part else 0.0, lost=0, dropped=0)
        out.append({"header": header, "buffers": [base64.b64encode(b).decode() for b in buffers]})
    return out


# NODE_INGEST with the store grouping lanes by process when input.byProcess (a view for a merged log).
NODE_INGEST_GROUPED = NODE_INGEST.replace(
    "view.newStore(input.wire)", "view.newStore(input.wire, Boolean(input.byProcess))"
)
assert NODE_INGEST_GROUPED != NODE_INGEST

NODE_HOLDERS = (
    NODE_INGEST_GROUPED
    + """
const at = (t, live) => view.holdersAt(s, t, live)
  .map((r) => [r.process, r.conn, r.thread, r.site, +r.held.toFixed(6), r.leaked]);
const { starts } = view.groupStarts(s);
for (const [process, t] of input.gone || []) view.gone(s, process, t);
const inView = (input.gone || []).length ? view.groupStarts(s, input.now) : null;
const tips = s.holds.map((h) => view.holdText(s, h, input.now));
process.stdout.write(JSON.stringify({
  live: at(input.now, true), earlier: at(input.earlier, false), groups: s.groups.map((x) => [x.key, x.slots]),
  starts, inView, tips,
}));
"""
)

HOLDING = [
    event(0, 0.0, "connect", conn=1),
    event(1, 0.0, "checkout", conn=1, thread="web-1", message="app/views.py:12 in index"),
    event(2, 0.1, "connect", conn=2),
    event(3, 0.1, "checkout", conn=2, thread="task-7", message="app/jobs.py:40 in nightly"),
    event(4, 0.2, "checkin", conn=1, thread="web-1", duration_s=0.2),
    event(5, 0.3, "checkout", conn=1, thread="web-2", message="app/views.py:30 in report"),
    event(6, 0.9, "leak", conn=2, thread="task-7", reason="held", duration_s=0.8),
]


def test_holders_now_lists_every_connection_held_longest_first_with_its_site(tmp_path: Path) -> None:
    """Live: the open holds, longest first, with holder, site and held-for; at an earlier time, who held then."""
    out = run_node(
        NODE_HOLDERS, {"wire": wire_format(), "batches": batches_for([HOLDING]), "now": 1.0, "earlier": 0.15}, tmp_path
    )
    assert out["live"] == [
        ["", 2, "task-7", "app/jobs.py:40 in nightly", 0.9, True],
        ["", 1, "web-2", "app/views.py:30 in report", 0.7, False],
    ]
    assert out["earlier"] == [
        ["", 1, "web-1", "app/views.py:12 in index", 0.15, False],
        ["", 2, "task-7", "app/jobs.py:40 in nightly", 0.05, False],
    ]
    assert out["groups"] == [["", 2]]
    assert "site app/views.py:12 in index" in out["tips"][0] and "held 200 ms" in out["tips"][0]
    assert "site app/jobs.py:40 in nightly" in out["tips"][1] and "still held" in out["tips"][1]
    assert "leaked" in out["tips"][1]


def test_a_merged_log_groups_lanes_by_process_and_a_dispose_ends_only_its_own_holds(tmp_path: Path) -> None:
    """Threads p<pid>:<name>: one lane group per process, the process in each holder row; p10's dispose spares p20."""
    merged = [
        event(0, 0.0, "checkout", conn=1, thread="p10:MainThread", message="app.py:5 in a"),
        event(1, 0.1, "checkout", conn=2, thread="p20:MainThread", message="app.py:9 in b"),
        event(2, 0.2, "checkout", conn=3, thread="p10:worker", message="app.py:7 in c"),
        event(3, 0.3, "checkout", conn=4, thread="p20:worker", message="app.py:9 in b"),
        event(4, 0.4, "checkin", conn=4, thread="p20:worker", duration_s=0.1),
        event(5, 0.5, "dispose", conn=0, thread="p10:MainThread"),
    ]
    out = run_node(
        NODE_HOLDERS,
        {"wire": wire_format(), "batches": batches_for([merged]), "now": 1.0, "earlier": 0.35, "byProcess": True},
        tmp_path,
    )
    assert out["groups"] == [["p10", 2], ["p20", 2]] and out["starts"] == [0, 2]
    assert out["live"] == [["20", 2, "MainThread", "app.py:9 in b", 0.9, False]]
    assert [row[:3] for row in out["earlier"]] == [
        ["10", 1, "MainThread"],
        ["20", 2, "MainThread"],
        ["10", 3, "worker"],
        ["20", 4, "worker"],
    ]
    assert out["tips"][1].startswith("connection #2 in process 20\nthread MainThread\nsite app.py:9 in b")


def test_a_process_gone_holds_nothing_and_gives_up_its_lanes_once_out_of_view(tmp_path: Path) -> None:
    """gone("p10", t): p10's holds end at t; its lanes stay while t is in view, then p20's lanes move up."""
    merged = [
        event(0, 0.0, "checkout", conn=1, thread="p10:MainThread", message="app.py:5 in a"),
        event(1, 0.1, "checkout", conn=2, thread="p20:MainThread", message="app.py:9 in b"),
    ]
    out = run_node(
        NODE_HOLDERS,
        {
            "wire": wire_format(),
            "batches": batches_for([merged]),
            "now": 1.0,
            "earlier": 0.5,
            "byProcess": True,
            "gone": [["p10", 0.6]],
        },
        tmp_path,
    )
    assert out["live"] == [["20", 2, "MainThread", "app.py:9 in b", 0.9, False]]
    assert [row[:2] for row in out["earlier"]] == [["10", 1], ["20", 2]]
    assert out["starts"] == [0, 1]
    assert out["inView"] == {"starts": [-1, 0], "rows": 1}
    assert "held 600 ms\n" in out["tips"][0] and "still held" in out["tips"][1]


def test_a_view_for_a_merged_log_says_so_with_every_reset() -> None:
    """by_process is a synced trait and travels with reset(), so a new browser view groups lanes from the start."""
    view = LiveView(by_process=True)
    sent: list[dict[str, Any]] = []
    view.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    assert "by_process" in view.keys
    view.reset()
    assert sent[0]["by_process"] is True
