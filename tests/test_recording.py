"""poolviz.record and poolviz.load_recording: an application's pool streamed to files, read back on one clock."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

import poolviz
from poolviz.data.processes import by_process
from poolviz.events.merge import PROCESS_COLUMNS
from poolviz.plots.processes import plot_processes
from poolviz.recording import RecordingReader, RecordingVersionError, RecordingWarning
from poolviz.recording import format as fmt
from poolviz.recording import writer as writer_module
from poolviz.recording.reader import STALL_S
from poolviz.testing import SOURCE_ROOT, wait_until


def cycles(app_pool: Any, count: int) -> None:
    """``count`` realistic cycles: checkout, ``SELECT 1``, checkin."""
    for _ in range(count):
        app_pool.connect()
        app_pool.execute_sql("SELECT 1").fetchone()
        app_pool.close()


def kinds_of(frame: Any, process: int | None = None) -> dict[str, int]:
    part = frame if process is None else frame[frame["process"] == process]
    return part["kind"].astype(str).value_counts().to_dict()


def test_record_then_load_gives_every_event_with_the_process_columns(app_pool: Any, tmp_path: Path) -> None:
    """Recorded events come back in one frame, process = pid, with the columns the merged traces use."""
    recorder = poolviz.record(app_pool, tmp_path / "rec", name="shop")
    cycles(app_pool, 25)
    recorder.stop()
    frame = poolviz.load_recording(tmp_path / "rec")
    assert set(PROCESS_COLUMNS) <= set(frame.columns)
    assert set(frame["process"]) == {os.getpid()}
    assert kinds_of(frame)["checkout"] == 25 and kinds_of(frame)["checkin"] == 25
    assert frame.attrs["processes"] == [os.getpid()]
    assert frame.attrs["name"] == "shop"
    assert frame.attrs["dropped_by_process"] == {os.getpid(): 0}
    assert frame.attrs["meta"]["max_connections"] == 4
    assert recorder.stats()["events_written"] == len(frame)


def test_the_stream_is_a_header_then_batches_then_an_end_marker(app_pool: Any, tmp_path: Path) -> None:
    """The files are JSON lines: a header (format, version, pid, t0), batches of 13-field events, an end marker."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    cycles(app_pool, 3)
    recorder.stop()
    (path,) = tmp_path.glob("shop.*.pvrec")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    head, *batches, end = lines
    assert (head["format"], head["version"], head["pid"]) == ("poolviz-recording", 1, os.getpid())
    assert head["t0"] == poolviz.events_of(app_pool).t0
    events = [e for line in batches for e in fmt.batch_events(line)]
    assert all(len(e) == len(poolviz.FIELDS) for e in events)
    assert [e[2] for e in events].count("checkout") == 3
    assert end == {"end": True, "watermark": end["watermark"], "dropped": 0}


def test_a_reader_sees_events_while_the_application_writes(app_pool: Any, tmp_path: Path) -> None:
    """Each poll reads only what is new, within about the flush period, while the stream goes on."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    reader = RecordingReader(tmp_path)
    cycles(app_pool, 5)
    wait_until(lambda: reader.poll() or reader.log.get_stats()["requests_num"] >= 5, what="the first 5 checkouts")
    wait_until(lambda: (reader.poll(), reader.log.get_stats()["requests_num"])[1] == 5, what="all 5 released")
    cycles(app_pool, 7)
    wait_until(lambda: (reader.poll(), reader.log.get_stats()["requests_num"])[1] == 12, what="7 more")
    stream = reader.processes[os.getpid()]
    assert stream.ended == "" and stream.kinds["checkout"] == 12
    recorder.stop()
    reader.poll()
    assert stream.ended == "stopped"


def test_load_recording_works_while_the_application_still_writes(app_pool: Any, tmp_path: Path) -> None:
    """load_recording reads what is written so far from a live stream, without waiting for it to end."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    cycles(app_pool, 4)
    recorder.flush()
    frame = poolviz.load_recording(tmp_path)
    assert kinds_of(frame)["checkout"] == 4
    recorder.stop()


def test_a_held_connection_is_listed_among_the_holders(app_pool: Any, tmp_path: Path) -> None:
    """The reader's holders are the connections checked out now, with their thread."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    app_pool.connect()
    recorder.flush()
    reader = RecordingReader(tmp_path)
    reader.poll()
    ((holder, held_s),) = reader.holders()
    assert (holder.process, holder.thread) == (os.getpid(), "MainThread") and held_s >= 0
    app_pool.close()
    recorder.stop()
    reader.poll()
    assert reader.holders() == []


def test_recording_a_pool_twice_returns_the_same_recorder(app_pool: Any, tmp_path: Path) -> None:
    """record() on a pool already recorded there returns its recorder; another pool needs another name."""
    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    assert poolviz.record(app_pool, tmp_path, name="shop") is recorder
    other = poolviz.connect(f"sqlite+pool:///{tmp_path / 'other.app_pool'}")
    with pytest.raises(ValueError, match="another pool of this process already records as 'shop'"):
        poolviz.record(other, tmp_path, name="shop")
    recorder.stop()
    poolviz.record(other, tmp_path / "again", name="shop").stop()


def test_record_instruments_a_plain_peewee_pool(tmp_path: Path) -> None:
    """A pool poolviz has not instrumented yet is instrumented by record()."""
    pool = poolviz.testing.plain_sqlite_pool(tmp_path / "plain.db", max_connections=2)
    recorder = poolviz.record(pool, tmp_path / "rec", name="plain")
    assert poolviz.is_instrumented(pool)
    cycles(pool, 2)
    recorder.stop()
    pool.close_all()
    assert kinds_of(poolviz.load_recording(tmp_path / "rec"))["checkout"] == 2


def test_record_passes_leak_threshold_through(tmp_path: Path) -> None:
    """record(pool, dir, leak_threshold=s) instruments the pool with that leak threshold."""
    pool = poolviz.testing.plain_sqlite_pool(tmp_path / "plain.db", max_connections=2)
    recorder = poolviz.record(pool, tmp_path / "rec", name="plain", leak_threshold=30)
    assert pool.leaks() == []  # raises when leak detection is off
    recorder.stop()
    pool.close_all()


def test_leak_threshold_for_a_pool_instrumented_already_is_refused(app_pool: Any, tmp_path: Path) -> None:
    """An instrumented pool has its leak threshold: record(..., leak_threshold=) on it says where to give it."""
    with pytest.raises(ValueError, match="is instrumented already: give leak_threshold where it was instrumented"):
        poolviz.record(app_pool, tmp_path, leak_threshold=5)
    assert not list(tmp_path.glob("*.pvrec"))


def test_record_a_sqlalchemy_engine(tmp_path: Path) -> None:
    """A SQLAlchemy Engine records through its pool."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'sa.db'}", pool_size=2, poolclass=sqlalchemy.QueuePool)
    recorder = poolviz.record(engine, tmp_path / "rec", name="sa")
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    recorder.stop()
    engine.dispose()
    frame = poolviz.load_recording(tmp_path / "rec")
    assert kinds_of(frame)["checkout"] == 3
    assert frame.attrs["meta"]["library"] == "sqlalchemy"


def test_record_a_sqlalchemy_engine_with_a_leak_threshold(tmp_path: Path) -> None:
    """record(engine, dir, leak_threshold=s) passes the threshold to SQLAlchemy's instrumentation."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'sa.db'}", pool_size=2, poolclass=sqlalchemy.QueuePool)
    try:
        poolviz.record(engine, tmp_path / "rec", name="sa", leak_threshold=5).stop()
    finally:
        engine.dispose()
    assert poolviz.load_recording(tmp_path / "rec").attrs["meta"]["leak_threshold"] == 5


def test_record_on_a_server(server_url: str, tmp_path: Path) -> None:
    """On MariaDB and PostgreSQL the realistic cycle is recorded whole, the URL masked in the header."""
    pool = poolviz.connect(server_url, max_connections=2)
    try:
        recorder = poolviz.record(pool, tmp_path, name="server")
        cycles(pool, 20)
        recorder.stop()
    finally:
        pool.close_all()
    frame = poolviz.load_recording(tmp_path)
    assert kinds_of(frame)["checkout"] == 20 and kinds_of(frame)["checkin"] == 20
    assert frame.attrs["meta"]["backend"] in ("mysql", "postgresql")
    text = "".join(p.read_text() for p in tmp_path.glob("*.pvrec"))
    assert "s3cret" not in text


def test_record_a_psycopg_pool(pg_url: str, tmp_path: Path) -> None:
    """A psycopg_pool ConnectionPool on PostgreSQL records its checkouts."""
    from psycopg_pool import ConnectionPool

    from poolviz.pools.psycopg.testing import libpq_url

    with ConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, open=True) as pool:
        recorder = poolviz.record(pool, tmp_path, name="pg")
        for _ in range(4):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        recorder.stop()
    assert kinds_of(poolviz.load_recording(tmp_path))["checkout"] == 4


def test_a_forked_child_records_itself_and_the_parent_stream_stays_the_parent_s(app_pool: Any, tmp_path: Path) -> None:
    """After os.fork the child writes its own stream from the fork on; the parent's holds only the parent's events."""
    recorder = poolviz.record(app_pool, tmp_path, name="forky")
    cycles(app_pool, 3)
    app_pool.close_all()  # the child opens its own connection
    recorder.flush()
    pid = os.fork()
    if pid == 0:  # the child: 5 cycles, then leave without atexit (as a killed worker would)
        code = 1
        try:
            cycles(app_pool, 5)
            poolviz.events_of(app_pool).flush()
            recorder.flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    cycles(app_pool, 7)
    recorder.stop()
    frame = poolviz.load_recording(tmp_path)
    assert frame.attrs["processes"] == sorted([os.getpid(), pid])
    assert kinds_of(frame, os.getpid())["checkout"] == 10
    assert kinds_of(frame, pid)["checkout"] == 5
    child = frame[frame["process"] == pid]
    assert child["process_seq"].min() > 0  # the child's stream starts at the fork, not with the parent's events
    reader = RecordingReader(tmp_path)
    reader.poll()
    assert reader.processes[pid].ended == "exited" and reader.processes[os.getpid()].ended == "stopped"


def _worker(app_pool: Any, count: int) -> None:
    cycles(app_pool, count)


def test_multiprocessing_workers_merge_on_one_clock(app_pool: Any, tmp_path: Path) -> None:
    """Forked multiprocessing workers each record a stream; merged, each process's count is its own and they sum."""
    recorder = poolviz.record(app_pool, tmp_path, name="workers")
    app_pool.close_all()
    context = multiprocessing.get_context("fork")
    counts = [4, 6, 8]
    workers = [context.Process(target=_worker, args=(app_pool, n)) for n in counts]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    recorder.stop()
    frame = poolviz.load_recording(tmp_path)
    per_process = {int(w.pid): kinds_of(frame, int(w.pid)).get("checkout", 0) for w in workers if w.pid}
    assert per_process == {w.pid: n for w, n in zip(workers, counts, strict=True)}
    assert kinds_of(frame)["checkout"] == sum(counts)
    assert frame["t"].is_monotonic_increasing
    table = by_process(frame).set_index("process")
    assert all(table.loc[w.pid, "requests"] == n for w, n in zip(workers, counts, strict=True))
    plot_processes(frame, ax=Figure().add_subplot())
    for _process, part in frame.groupby("process"):
        assert part["process_seq"].is_monotonic_increasing
    reader = RecordingReader(tmp_path)
    reader.poll()
    assert {reader.processes[w.pid].ended for w in workers if w.pid} == {"stopped"}  # ended by its finalizer


def test_rotation_keeps_the_limit_and_counts_the_deleted_events(app_pool: Any, tmp_path: Path) -> None:
    """Past max_segments the oldest segment is deleted and its events are counted as dropped, in later lines too."""
    recorder = poolviz.record(app_pool, tmp_path, name="small", max_bytes=3000, max_segments=2)
    for _ in range(12):
        cycles(app_pool, 10)
        recorder.flush()
    recorder.stop()
    stats = recorder.stats()
    assert len(list(tmp_path.glob("small.*.pvrec"))) <= 2
    assert stats["dropped_rotation"] > 0 and stats["dropped"] == stats["dropped_rotation"]
    frame = poolviz.load_recording(tmp_path)
    assert frame.attrs["dropped_by_process"] == {os.getpid(): stats["dropped"]}
    assert len(frame) == stats["events_written"] - stats["dropped_rotation"]


def test_events_the_log_no_longer_holds_are_counted_as_dropped(tmp_path: Path) -> None:
    """Events the log's capacity dropped before the flusher read them are counted, and the rest written."""
    pool = poolviz.connect(f"sqlite+pool:///{tmp_path / 'cap.db'}", event_capacity=100)
    recorder = writer_module.Recorder(poolviz.events_of(pool), tmp_path / "rec", "cap", period_s=3600)
    cycles(pool, 3000)
    recorder.stop()
    pool.close_all()
    stats = recorder.stats()
    assert stats["dropped_capacity"] > 0
    assert stats["dropped_capacity"] + stats["events_written"] == 6001  # a connect, then checkouts and checkins
    frame = poolviz.load_recording(tmp_path / "rec")
    assert len(frame) == stats["events_written"] and frame.attrs["dropped"] == stats["dropped_capacity"]


def test_an_unwritable_directory_warns_once_and_the_application_goes_on(app_pool: Any, tmp_path: Path) -> None:
    """A directory that cannot be created: one RecordingWarning, the pool works, every event counted as dropped."""
    (tmp_path / "file").write_text("not a directory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recorder = poolviz.record(app_pool, tmp_path / "file" / "rec", name="shop")
        for _ in range(3):
            cycles(app_pool, 2)
            recorder.flush()
        recorder.stop()
    ours = [w for w in caught if issubclass(w.category, RecordingWarning)]
    assert len(ours) == 1 and "cannot open a file in" in str(ours[0].message)
    stats = recorder.stats()
    assert stats["events_written"] == 0 and stats["dropped_write"] == len(poolviz.events_of(app_pool).snapshot())


def test_a_full_disk_drops_what_it_cannot_write_and_recovers(
    app_pool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes failing with ENOSPC: one warning, drops counted; once writes work again, later lines carry the count."""
    recorder = poolviz.record(app_pool, tmp_path, name="full")
    cycles(app_pool, 2)
    recorder.flush()
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setattr(writer_module.os, "write", full)
        cycles(app_pool, 3)
        recorder.flush()
        cycles(app_pool, 1)
        recorder.flush()
        monkeypatch.setattr(writer_module.os, "write", real_write)
    assert len([w for w in caught if issubclass(w.category, RecordingWarning)]) == 1
    cycles(app_pool, 4)
    recorder.stop()
    frame = poolviz.load_recording(tmp_path)
    assert kinds_of(frame)["checkout"] == 6
    assert frame.attrs["dropped_by_process"] == {os.getpid(): 8}  # 4 cycles of checkout + checkin


def write_stream(directory: Path, *lines: bytes, pid: int = 0, name: str = "hand", version: int = 1) -> Path:
    """A stream written by hand, by default as if by this (live) process."""
    pid = pid or os.getpid()
    head = fmt.header(name, pid, 0.0, 100.0, 0, {"max_connections": 2})
    head["version"] = version
    path = directory / fmt.file_name(name, pid, 0)
    path.write_bytes(fmt.encode(head) + b"".join(lines))
    return path


def event(seq: int, t: float, kind: str, conn: int = 1) -> list[Any]:
    in_use = 1 if kind == "checkout" else 0
    return [seq, t, kind, conn, "worker", 0.0, 0.0, False, "", "", in_use, 1 - in_use, 0]


def test_a_half_written_last_line_waits_for_the_next_poll(tmp_path: Path) -> None:
    """A last line without its newline is left for the next poll, then read once it is whole."""
    whole = fmt.batch([event(0, 0.1, "checkout")], 100.2, 0)
    second = fmt.batch([event(1, 0.3, "checkin")], 100.4, 0)
    path = write_stream(tmp_path, whole, second[:25])
    reader = RecordingReader(tmp_path)
    reader.poll()
    stream = reader.processes[os.getpid()]
    assert stream.kinds == {"checkout": 1} and stream.bad_lines == 0
    with path.open("ab") as f:
        f.write(second[25:])
    reader.poll()
    assert stream.kinds == {"checkout": 1, "checkin": 1}
    assert reader.end_all() >= 0 and [e.kind for e in reader.log] == ["checkout", "checkin"]


def test_load_recording_reads_what_is_whole_of_a_half_written_file(tmp_path: Path) -> None:
    """load_recording on a file whose last line is cut short returns the whole lines, no error."""
    write_stream(tmp_path, fmt.batch([event(0, 0.1, "checkout")], 100.2, 0), b'{"events":[[1,0.3,"chec')
    frame = poolviz.load_recording(tmp_path)
    assert list(frame["kind"]) == ["checkout"]


def test_a_silent_live_stream_stops_holding_the_others_back(tmp_path: Path) -> None:
    """A live process's stream that writes nothing (not even its idle lines) holds the merge back only STALL_S."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_stream(tmp_path, fmt.batch([event(0, 0.1, "checkout")], 100.2, 0))
        write_stream(tmp_path, pid=sleeper.pid)
        reader = RecordingReader(tmp_path)
        reader.poll()
        assert len(reader.log) == 0  # the silent stream may still send an earlier event
        reader.processes[sleeper.pid].heard -= STALL_S + 1  # as if STALL_S had passed without a line
        reader.poll()
        assert [e.kind for e in reader.log] == ["checkout"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_batch_in_plain_json_is_read_too(tmp_path: Path) -> None:
    """A batch written as plain JSON lists of the 13 fields (by hand, by another tool) reads as poolviz's own."""
    plain = fmt.encode({"events": [event(0, 0.1, "checkout"), event(1, 0.2, "checkin")], "watermark": 100.3})
    write_stream(tmp_path, plain)
    assert list(poolviz.load_recording(tmp_path)["kind"]) == ["checkout", "checkin"]


class _Boom:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned > pwned.txt",))


def test_a_batch_that_would_run_code_is_skipped_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pickled batch naming any global (here os.system) is refused: skipped and counted, nothing runs."""
    import base64
    import pickle

    monkeypatch.chdir(tmp_path)
    evil = fmt.encode({"rows": base64.b64encode(pickle.dumps([_Boom()])).decode(), "watermark": 100.2})
    write_stream(tmp_path, evil, fmt.batch([tuple(event(0, 0.3, "checkout"))], 100.4, 0))
    reader = RecordingReader(tmp_path)
    reader.poll()
    assert reader.processes[os.getpid()].bad_lines == 1
    assert reader.processes[os.getpid()].kinds == {"checkout": 1}
    assert not (tmp_path / "pwned.txt").exists()


def test_another_format_version_names_both_versions(tmp_path: Path) -> None:
    """A recording in format version 2 is refused with the version found and the one this poolviz reads."""
    write_stream(tmp_path, version=2)
    with pytest.raises(RecordingVersionError, match="format version 2; this poolviz reads version 1"):
        poolviz.load_recording(tmp_path)


def test_two_applications_in_one_directory_must_be_told_apart(tmp_path: Path) -> None:
    """A second application warns when it starts; load_recording asks for name= and lists both."""
    first = poolviz.connect(f"sqlite+pool:///{tmp_path / 'a.db'}")
    second = poolviz.connect(f"sqlite+pool:///{tmp_path / 'b.db'}")
    shop = poolviz.record(first, tmp_path / "rec", name="shop")
    with pytest.warns(RecordingWarning, match="also holds the recording of 'shop'"):
        blog = poolviz.record(second, tmp_path / "rec", name="blog")
    cycles(first, 2)
    cycles(second, 3)
    shop.stop()
    blog.stop()
    with pytest.raises(ValueError, match="several applications: blog, shop; pass name="):
        poolviz.load_recording(tmp_path / "rec")
    assert kinds_of(poolviz.load_recording(tmp_path / "rec", name="blog"))["checkout"] == 3
    with pytest.raises(ValueError, match="no recording named 'cart'.*it holds: blog, shop"):
        poolviz.load_recording(tmp_path / "rec", name="cart")


def test_empty_and_missing_directories_are_clear_errors(tmp_path: Path) -> None:
    """load_recording on a missing directory or one without .pvrec files says so and how to make one."""
    with pytest.raises(FileNotFoundError, match="no such directory"):
        poolviz.load_recording(tmp_path / "missing")
    with pytest.raises(ValueError, match="it holds no .pvrec files"):
        poolviz.load_recording(tmp_path)


def test_a_process_that_exits_normally_flushes_and_ends_its_stream(tmp_path: Path) -> None:
    """A script that records and exits without stop(): atexit writes the rest and the end marker."""
    script = textwrap.dedent(
        f"""
        import poolviz
        db = poolviz.connect("sqlite+pool:///{tmp_path / "exit.db"}")
        poolviz.record(db, {str(tmp_path / "rec")!r})
        for _ in range(9):
            db.connect(); db.execute_sql("SELECT 1"); db.close()
        """
    )
    (tmp_path / "shop.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    subprocess.run([sys.executable, str(tmp_path / "shop.py")], check=True, timeout=60, env=env)
    frame = poolviz.load_recording(tmp_path / "rec")
    assert frame.attrs["name"] == "shop"  # the script's name
    assert kinds_of(frame)["checkout"] == 9
    assert json.loads(next(tmp_path.glob("rec/*.pvrec")).read_text().splitlines()[-1])["end"] is True


def test_replay_and_the_plots_take_a_recording(app_pool: Any, tmp_path: Path) -> None:
    """A finished recording plays in Replay and draws on the timeline and occupancy plots."""
    from poolviz import plots
    from poolviz.live.replay import Replay

    recorder = poolviz.record(app_pool, tmp_path, name="shop")
    cycles(app_pool, 5)
    recorder.stop()
    frame = poolviz.load_recording(tmp_path)
    replay = Replay(frame)
    try:
        assert replay.t_end == pytest.approx(frame["t"].max())
        assert replay.seek(replay.t_end)
        assert replay.last_stats["requests"] == 5
    finally:
        replay.close()
    plots.plot_timeline(frame, ax=Figure().add_subplot())
    plots.plot_occupancy(frame, ax=Figure().add_subplot())


@pytest.mark.parametrize(
    ("argv0", "name"),
    [
        ("/srv/venv/bin/gunicorn", "gunicorn"),
        ("/srv/venv/lib/python3.11/site-packages/gunicorn/__main__.py", "gunicorn"),
        ("shop.py", "shop"),
        ("my shop.py", "my_shop"),
        ("-c", "app"),
        ("", "app"),
        ("/venv/lib/ipykernel_launcher.py", "app"),
    ],
)
def test_the_default_name_is_the_script_s(argv0: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without name=, a recording is named after the script (a package run with -m: the package), else 'app'."""
    monkeypatch.setattr(sys, "argv", [argv0])
    assert poolviz.recording.default_name() == name
