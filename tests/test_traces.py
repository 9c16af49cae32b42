"""Saving and loading traces: exact round trips of values, dtypes and attrs, and clear errors for bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import poolviz
from poolviz.data.frames import DTYPES, events_to_frame
from poolviz.data.traces import load_events, meta_path, save_events
from poolviz.events import FIELDS, Event
from poolviz.testing import InstrumentedFakePooledDatabase


def _event(seq: int, kind: str, **fields: Any) -> Event:
    base: dict[str, Any] = {
        "seq": seq,
        "t": seq / 10,
        "kind": kind,
        "conn": 1,
        "thread": "MainThread",
        "wait_s": 0.0,
        "duration_s": 0.0,
        "reused": False,
        "reason": "",
        "message": "",
        "in_use": 0,
        "idle": 0,
        "waiting": 0,
    }
    base.update(fields)
    return Event(**base)


def _awkward_frame() -> pd.DataFrame:
    events = [
        _event(0, "connect", t=0.1 + 0.2, duration_s=1e-300),
        _event(1, "checkout", t=1 / 3, wait_s=math.nan, reused=True, in_use=1),
        _event(2, "error", conn=0, reason="OperationalError", message='no, "quoted"\nnewline, ünïcode'),
        _event(3, "close", reason="stale", duration_s=123456789.123456789, thread="worker, 1"),
        _event(4, "timeout", conn=0, wait_s=2.5e-7, waiting=3),
    ]
    attrs = {
        "dropped": 2,
        "capacity": 5,
        "pool": "InstrumentedFakePooledDatabase",
        "max_connections": 4,
        "stale_timeout": None,
        "timeout": math.inf,
        "url": "mysql+pool://root:***@127.0.0.1:3306/test",
    }
    return events_to_frame(events, attrs)


def _assert_same(loaded: pd.DataFrame, frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
    assert dict(loaded.dtypes) == dict(frame.dtypes)
    assert loaded.attrs == frame.attrs


def test_round_trip_is_exact_for_awkward_values(tmp_path: Path) -> None:
    """Floats, NaN, text with commas, quotes, newlines and Unicode, dtypes and attrs all come back as saved."""
    frame = _awkward_frame()
    path = save_events(frame, tmp_path / "trace.csv")
    loaded = load_events(path)
    _assert_same(loaded, frame)
    assert list(loaded.columns) == [*FIELDS, "site"]
    assert {name: loaded[name].dtype for name in FIELDS} == {
        name: pd.Series(dtype=d).dtype for name, d in DTYPES.items()
    }


def test_round_trip_of_a_real_run(tmp_path: Path) -> None:
    """A trace recorded from a real SQLite workload reloads identical, metadata included."""
    from poolviz.workload import run_closed_loop

    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'run.db'}", max_connections=2, timeout=10)
    try:
        frame = run_closed_loop(db, workers=3, requests=10, hold="exp:0.001", seed=4).events
    finally:
        db.close_all()
    save_events(frame, tmp_path / "events.csv")
    loaded = load_events(tmp_path / "events.csv")
    _assert_same(loaded, frame)
    assert loaded.attrs["max_connections"] == 2
    assert loaded.attrs["backend"] == "sqlite"


def test_an_event_log_a_pool_and_a_list_of_events_save_alike(tmp_path: Path) -> None:
    """save_events takes a pool, its EventLog or a list of Events as well as a frame."""
    db = InstrumentedFakePooledDatabase(max_connections=2)
    conn = db._connect()
    db._close(conn)
    expected = db.events.to_frame()
    for name, source in (("pool", db), ("log", db.events)):
        _assert_same(load_events(save_events(source, tmp_path / f"{name}.csv")), expected)
    from_list = load_events(save_events(db.events.snapshot(), tmp_path / "list.csv"))
    pd.testing.assert_frame_equal(from_list, events_to_frame(db.events.snapshot()), check_exact=True)
    assert from_list.attrs == {}


def test_an_empty_trace_round_trips(tmp_path: Path) -> None:
    """A trace with no events saves a header only and loads as an empty frame with the right dtypes."""
    frame = events_to_frame([], {"dropped": 0})
    loaded = load_events(save_events(frame, tmp_path / "empty.csv"))
    _assert_same(loaded, frame)
    assert len(loaded) == 0


def test_metadata_sits_in_a_json_sidecar(tmp_path: Path) -> None:
    """events.csv gets events.meta.json holding the attrs; other names just add .meta.json."""
    assert meta_path(tmp_path / "events.csv") == tmp_path / "events.meta.json"
    assert meta_path(tmp_path / "trace.txt") == tmp_path / "trace.txt.meta.json"
    save_events(_awkward_frame(), tmp_path / "events.csv")
    meta = json.loads((tmp_path / "events.meta.json").read_text())
    assert meta["format"] == "poolviz-trace"
    assert meta["attrs"]["max_connections"] == 4


def test_a_trace_without_its_sidecar_loads_with_empty_attrs(tmp_path: Path) -> None:
    """The sidecar is optional: without it the events load and attrs are empty."""
    path = save_events(_awkward_frame(), tmp_path / "events.csv")
    meta_path(path).unlink()
    loaded = load_events(path)
    assert loaded.attrs == {}
    assert len(loaded) == 5


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """Loading a path that does not exist raises FileNotFoundError naming it."""
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_events(missing)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    """A CSV without the event columns is refused, naming each missing column."""
    path = tmp_path / "other.csv"
    path.write_text("seq,t,kind,conn\n0,0.0,connect,1\n")
    with pytest.raises(ValueError) as info:
        load_events(path)
    message = str(info.value)
    assert "not a poolviz trace" in message
    for name in ("thread", "wait_s", "duration_s", "reused", "waiting"):
        assert name in message.split("(expected")[0]


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("seq", "1.5", ["'seq'", "'1.5'", "integer", "line 2"]),
        ("t", "soon", ["'t'", "'soon'", "number"]),
        ("reused", "maybe", ["'reused'", "'maybe'", "True or False"]),
        ("kind", "borrow", ["'borrow'", "connect, checkout"]),
    ],
)
def test_bad_values_are_named_with_their_column_and_line(
    tmp_path: Path, column: str, value: str, words: list[str]
) -> None:
    """A value of the wrong type is refused with its column, its text and its line."""
    path = save_events(_awkward_frame(), tmp_path / "events.csv")
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index(column)] = value
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_events(path)
    for word in words:
        assert word in str(info.value)


def test_an_empty_file_and_a_ragged_row_are_refused(tmp_path: Path) -> None:
    """An empty file and a row with the wrong number of fields each get a clear error."""
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_events(empty)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(",".join(FIELDS) + "\n0,0.0,connect\n")
    with pytest.raises(ValueError, match="line 2 has 3 fields"):
        load_events(ragged)


def test_a_broken_sidecar_is_named(tmp_path: Path) -> None:
    """A sidecar that is not JSON, or not a poolviz sidecar, is refused naming the file."""
    path = save_events(_awkward_frame(), tmp_path / "events.csv")
    meta_path(path).write_text("{not json")
    with pytest.raises(ValueError, match=r"events\.meta\.json is not valid JSON"):
        load_events(path)
    meta_path(path).write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="not a poolviz trace sidecar"):
        load_events(path)


def test_saving_refuses_attrs_that_are_not_json(tmp_path: Path) -> None:
    """Attrs must be JSON values; anything else is refused before a file is written."""
    frame = _awkward_frame()
    frame.attrs["when"] = object()
    with pytest.raises(ValueError, match="JSON"):
        save_events(frame, tmp_path / "events.csv")
    assert not (tmp_path / "events.csv").exists()


def test_saving_refuses_what_is_not_a_trace(tmp_path: Path) -> None:
    """A frame without the event columns, or an unrelated object, cannot be saved as a trace."""
    with pytest.raises(ValueError, match="wait_s"):
        save_events(pd.DataFrame({"seq": [1], "t": [0.0], "kind": ["connect"]}), tmp_path / "x.csv")
    with pytest.raises(TypeError, match="int"):
        save_events(42, tmp_path / "y.csv")


DATA = Path(__file__).resolve().parent.parent / "data"
RECORDED = sorted(DATA.glob("*.csv"))


def test_the_recorded_traces_are_there() -> None:
    """data/ ships traces from MariaDB, PostgreSQL and SQLite."""
    backends = {load_events(path).attrs["backend"] for path in RECORDED}
    assert backends == {"mysql", "postgresql", "sqlite"}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_each_recorded_trace_is_small_complete_and_starts_from_an_empty_pool(path: Path) -> None:
    """Each trace in data/ is under 300 KB, has its sidecar, and every request ended in a checkout or timeout."""
    assert path.stat().st_size < 300_000
    frame = load_events(path)
    assert meta_path(path).is_file()
    assert frame["seq"].tolist() == list(range(len(frame)))
    first = frame.iloc[0]
    # An asyncio pool's counts come from its driver, which already holds its first connection idle.
    idle_after_connect = 1 if frame.attrs.get("driver") else 0
    assert (first["kind"], first["in_use"], first["idle"]) == ("connect", 0, idle_after_connect)
    checkouts = int((frame["kind"] == "checkout").sum())
    checkins = int((frame["kind"] == "checkin").sum())
    assert checkouts == checkins
    assert frame["in_use"].max() <= frame.attrs["max_connections"]
    assert frame.attrs["url"] == poolviz.mask_url(frame.attrs["url"])
