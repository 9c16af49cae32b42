"""The live dashboard, replay and compare widgets, driven from Python with no browser (SQLite, tiny workloads).

With no browser the view's batches go nowhere, but the view counts what it sent
(``batches_sent``, ``events_sent``), which is what these tests check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

import poolviz
from poolviz.data import analysis
from poolviz.data.traces import save_events
from poolviz.testing import InstrumentedFakePooledDatabase, capture_events, check_invariants, wait_until
from poolviz.widgets import Compare, PoolDashboard, Replay, frame_stats, resize_pool
from poolviz.workload import run_closed_loop

PNG = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 60.0


def when(log: Any, predicate: Callable[[Any], bool]) -> threading.Event:
    """An Event set by the first later event of ``log`` that satisfies ``predicate``."""
    seen = threading.Event()

    def listener(event: Any) -> None:
        if predicate(event):
            seen.set()

    log.subscribe(listener)
    return seen


class NextBatch:
    """Waits for the view to send a batch after the one it has sent when this is made."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.seen = view.batches_sent

    def wait(self, timeout: float) -> bool:
        """True once another batch is sent; fails the test after ``timeout`` s."""
        return bool(wait_until(lambda: self.view.batches_sent > self.seen, timeout, 0.01, "another batch sent"))


def next_frame(dash: Any) -> NextBatch:
    """Something whose wait() returns once the dashboard's view has sent another batch of events."""
    return NextBatch(dash.view)


def last_message(dash: PoolDashboard) -> str:
    return dash.messages[-1][1]


def test_run_button_ships_every_event_and_stats_match_the_recorded_events(make_dashboard: Any) -> None:
    """Sliders set the run; Run ships every event to the view in batches, and the numbers are the events' analysis."""
    dash = make_dashboard()
    dash.controls["max_connections"].value = 2
    dash.controls["workers"].value = 4
    dash.controls["hold_ms"].value = 5
    dash.controls["think_ms"].value = 1
    dash.controls["duration"].value = 1.0
    dash.run_button.click()
    assert dash.wait(TIMEOUT)
    assert dash.view.events_sent == len(dash.db.events) > 0
    assert 2 <= dash.view.batches_sent <= 1.0 * 10 + 3  # ten a second at most, plus the final ones
    assert dash.view.max_connections == 2
    assert dash.db.max_connections == 2

    frame = dash.db.events.to_frame()
    waits = analysis.wait_stats(frame)
    stats = dash.last_stats
    assert stats["events"] == len(frame)
    assert stats["requests"] == waits["count"] > 0
    assert stats["throughput_rps"] == pytest.approx(analysis.throughput(frame))
    assert stats["wait_p50_s"] == pytest.approx(waits["p50_s"])
    assert stats["wait_p95_s"] == pytest.approx(waits["p95_s"])
    assert stats["timeouts"] == analysis.timeouts(frame)
    assert stats["connections_opened"] == (frame["kind"] == "connect").sum()
    assert stats["connections_closed"] == (frame["kind"] == "close").sum()
    last = frame.iloc[-1]
    assert (stats["in_use"], stats["pool_available"], stats["requests_waiting"]) == (
        last["in_use"],
        last["idle"],
        last["waiting"],
    )
    assert stats["pool_max"] == 2
    assert stats["events_dropped"] == 0
    assert not stats["running"]
    assert "max_connections" in dash.stats.value and ">2<" in dash.stats.value
    assert "finished" in last_message(dash)


def test_stop_ends_the_run_and_every_thread_it_started(make_dashboard: Any) -> None:
    """Stop during a long run: workers, runner and render thread are all gone, and the last frame stays."""
    before = set(threading.enumerate())
    dash = make_dashboard(duration=60, workers=4, max_connections=2, hold_ms=5)
    drawn = next_frame(dash)
    assert dash.run()
    assert drawn.wait(TIMEOUT)
    assert dash.running
    dash.stop_button.click()
    assert not dash.running
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []
    assert dash.result is not None and dash.result.stopped
    assert dash.result.elapsed_s < 30
    assert dash.view.events_sent == len(dash.db.events) and dash.last_stats["requests"] > 0
    assert "stopped" in last_message(dash)


def test_close_ends_threads_and_removes_the_temp_dir(make_dashboard: Any) -> None:
    """close() during a run stops it, ends its threads and deletes the SQLite temp dir."""
    before = set(threading.enumerate())
    dash = make_dashboard(duration=60, workers=2, hold_ms=5)
    drawn = next_frame(dash)
    assert dash.run()
    assert drawn.wait(TIMEOUT)
    tempdir = Path(dash._resources.tempdir)
    assert tempdir.is_dir()
    dash.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
    assert not tempdir.exists()
    assert not dash.run()
    assert "closed" in last_message(dash)


def test_headless_mode_sends_one_batch_without_a_shipper_thread(make_dashboard: Any) -> None:
    """live=False starts no shipper; the events go in one batch when the run ends."""
    dash = make_dashboard(live=False, duration=0.5, workers=2, hold_ms=2)
    assert dash.run()
    assert [t.name for t in dash._run.threads] == ["poolviz-runner"]
    assert dash._run.shipper is None
    assert dash.wait(TIMEOUT)
    assert dash.view.batches_sent == 1 and dash.view.events_sent == len(dash.db.events)
    assert dash.last_stats["events"] == len(dash.db.events)


def test_bad_defaults_give_messages_not_exceptions(make_dashboard: Any) -> None:
    """max_connections=0, workers=-1 and an unknown name are reported in the message line; controls keep defaults."""
    dash = make_dashboard(max_connections=0, workers=-1, hold_ms="a lot", colour="red", timeout=-2)
    text = dash.message.value
    assert "max_connections must be a positive integer, got 0" in text
    assert "workers must be a positive integer, got -1" in text
    assert "hold_ms must be a finite number &gt;= 0, got &#x27;a lot&#x27;" in text
    assert "unknown setting &#x27;colour&#x27;" in text
    assert "timeout must be None or a number of seconds" in text
    assert dash.controls["max_connections"].value == 4
    assert dash.controls["workers"].value == 8


def test_bad_widget_options_give_messages_not_exceptions(make_dashboard: Any) -> None:
    """A bad max_fps, window or URL is a message too, and the dashboard still works with SQLite."""
    dash = make_dashboard("mysql://root@127.0.0.1/x", max_fps=-1, window_s=0)
    text = dash.message.value
    assert "max_fps must be a positive number, got -1" in text
    assert "window_s must be a number of seconds &gt; 0, got 0" in text
    assert dash.view.max_fps == 30.0 and dash.view.window_s == 10.0
    assert "URL scheme must be one of" in text
    assert dash.controls["backend"].value == "sqlite"


def test_valid_defaults_set_the_controls(make_dashboard: Any) -> None:
    """Defaults land in the controls, widening a slider when a valid value lies beyond it."""
    dash = make_dashboard(max_connections=50, workers=3, timeout=None, stale_timeout=2.5, duration=3, seed=7)
    s = dash.settings()
    assert (s.max_connections, s.workers, s.timeout, s.stale_timeout, s.duration, s.seed) == (50, 3, None, 2.5, 3, 7)
    assert dash.controls["max_connections"].max == 50
    assert dash.controls["timeout"].disabled
    dash.controls["fail_at_once"].value = False
    dash.controls["timeout"].value = 0.0
    assert dash.settings().timeout == 0.0  # 0 waits forever, as in peewee


def test_zero_pool_size_from_the_slider_is_refused_and_the_recorded_run_stays(make_dashboard: Any) -> None:
    """A slider set to 0 after a run: Run refuses with the reason, and the last run's picture and numbers stay."""
    dash = make_dashboard(duration=0.5, workers=2, hold_ms=2)
    assert dash.run(wait=True)
    sent, stats, db = dash.view.events_sent, dict(dash.last_stats), dash.db
    dash.controls["max_connections"].value = 0
    assert "max_connections must be a positive integer, got 0" in last_message(dash)
    assert not dash.run()
    assert last_message(dash).startswith("Not started: max_connections must be a positive integer, got 0")
    assert dash.view.events_sent == sent and dash.last_stats == stats and dash.db is db


def test_bad_value_during_a_run_leaves_the_run_going(make_dashboard: Any) -> None:
    """max_connections 0 mid-run is refused with a message; the pool keeps its limit and the run goes on."""
    dash = make_dashboard(duration=60, workers=3, max_connections=2, hold_ms=5)
    drawn = next_frame(dash)
    assert dash.run()
    assert drawn.wait(TIMEOUT)
    dash.controls["max_connections"].value = 0
    assert "got 0" in last_message(dash)
    assert dash.running and dash.db.max_connections == 2
    assert not dash.run()
    assert "A run is going" in last_message(dash)
    dash.controls["workers"].value = 5
    assert "applies from the next run" in last_message(dash)
    more = next_frame(dash)
    assert more.wait(TIMEOUT)
    assert dash.stop()


def test_growing_max_connections_mid_run_resizes_the_running_pool(make_dashboard: Any) -> None:
    """1 → 4 during a run: waiters are woken and more than one connection is in use from then on."""
    dash = make_dashboard(duration=60, workers=4, max_connections=1, hold_ms=10, think_ms=0)
    drawn = next_frame(dash)
    assert dash.run()
    assert drawn.wait(TIMEOUT)
    busier = when(dash.db.events, lambda e: e.kind == "checkout" and e.in_use > 1)
    resized_at = dash.db.events.now()
    dash.controls["max_connections"].value = 4
    assert "max_connections 1 → 4 on the running pool" in last_message(dash)
    assert busier.wait(TIMEOUT)
    assert dash.stop()
    frame = dash.db.events.to_frame()
    assert frame.loc[frame["t"] < resized_at, "in_use"].max() == 1
    assert 1 < frame.loc[frame["t"] > resized_at, "in_use"].max() <= 4
    assert dash.last_stats["pool_max"] == 4
    assert check_invariants(frame, 4) == []


def test_shrinking_max_connections_mid_run_settles_at_the_new_limit(make_dashboard: Any) -> None:
    """4 → 1 during a run: surplus connections close (reason idle) and in use never exceeds 1 once settled."""
    dash = make_dashboard(duration=60, workers=6, max_connections=4, hold_ms=10, think_ms=0)
    assert dash.run()
    full = when(dash.db.events, lambda e: e.in_use == 4)
    assert full.wait(TIMEOUT)
    settled = when(dash.db.events, lambda e: e.in_use + e.idle <= 1)
    resized_seq = dash.db.events.last.seq
    dash.controls["max_connections"].value = 1
    assert "max_connections 4 → 1 on the running pool" in last_message(dash)
    assert settled.wait(TIMEOUT)
    later = next_frame(dash)
    assert later.wait(TIMEOUT)
    assert dash.stop()
    frame = dash.db.events.to_frame()
    after = frame[frame["seq"] > resized_seq]
    first_settled = after.index[(after["in_use"] + after["idle"] <= 1).to_numpy()][0]
    assert after.loc[first_settled:, "in_use"].max() <= 1
    assert set(after.loc[after["kind"] == "close", "reason"]) == {"idle"}
    assert check_invariants(frame) == []


def test_resize_pool_closes_idle_surplus_at_once_and_in_use_surplus_at_checkin() -> None:
    """Shrinking 3 → 1 with one connection idle and two in use: idle closes now, one in use closes when returned."""
    db = InstrumentedFakePooledDatabase(max_connections=3)
    a, b, c = db._connect(), db._connect(), db._connect()
    db._close(c)
    with capture_events(db) as canary:
        assert resize_pool(db, 1) == 1
        assert canary.steps() == [("close", 3, "idle")]
        db._close(a)
        db._close(b)
    assert canary.steps() == [
        ("close", 3, "idle"),
        ("checkin", 1, ""),
        ("close", 1, "idle"),
        ("checkin", 2, ""),
    ]
    assert (db.events.last.in_use, db.events.last.idle) == (0, 1)
    assert db.max_connections == 1 and db.events.meta["max_connections"] == 1
    assert db.events._listeners == ()  # the check-in watch ends once the pool fits
    assert check_invariants(db.events) == []


def test_resize_pool_wakes_a_waiting_caller_when_it_grows() -> None:
    """A caller waiting on a full pool of 1 gets a new connection as soon as the limit becomes 2."""
    db = InstrumentedFakePooledDatabase(max_connections=1, timeout=30)
    db._connect()
    waiting = when(db.events, lambda e: e.kind == "wait")
    got: list[Any] = []
    caller = threading.Thread(target=lambda: got.append(db.connection()), name="waiter")
    caller.start()
    assert waiting.wait(TIMEOUT)
    resize_pool(db, 2)
    caller.join(TIMEOUT)
    assert not caller.is_alive()
    assert got and db.events.last.kind == "checkout" and db.events.last.in_use == 2
    assert db.events.last.wait_s < 5


def test_resize_pool_refuses_a_bad_limit() -> None:
    """resize_pool(db, 0) says what is allowed and leaves the pool alone."""
    db = InstrumentedFakePooledDatabase(max_connections=2)
    with pytest.raises(ValueError, match="max_connections must be a positive integer, got 0"):
        resize_pool(db, 0)
    assert db.max_connections == 2


@pytest.fixture
def recorded(tmp_path: Path) -> Any:
    """A small real trace: 3 workers through a pool of 2 on SQLite."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'replay.db'}", max_connections=2, timeout=10)
    run_closed_loop(db, workers=3, requests=8, hold=0.003)
    db.close_all()
    return db


def test_replay_in_the_middle_shows_fewer_events_than_at_the_end(recorded: Any) -> None:
    """Seeking to the middle of a trace draws only the events up to then; the end shows them all."""
    replay = Replay(recorded.events, steps=10)
    try:
        assert replay.wait(TIMEOUT)
        assert replay.shown_t == pytest.approx(replay.t_end)
        assert replay.last_stats["events"] == len(recorded.events)
        middle = (replay.t_start + replay.t_end) / 2
        assert replay.seek(middle)
        frame = recorded.events.to_frame()
        assert replay.last_stats["events"] == (frame["t"] <= replay.shown_t).sum() < len(frame)
        assert replay.play.value == 5
        assert replay.view.cursor_t == pytest.approx(replay.shown_t)
        assert replay.view.events_sent == len(frame)
        replay.play.value = 10  # the Play widget drives the time slider
        assert replay.wait(TIMEOUT)
        assert replay.slider.value == pytest.approx(replay.t_end)
        assert replay.last_stats["events"] == len(frame)
    finally:
        replay.close()


def test_replay_reads_a_saved_trace_and_a_frame(recorded: Any, tmp_path: Path) -> None:
    """A trace path and a DataFrame replay the same events as the log they came from."""
    path = save_events(recorded.events, tmp_path / "run.csv")
    for source in (path, str(path), recorded.events.to_frame()):
        replay = Replay(source)
        try:
            assert replay.wait(TIMEOUT)
            assert replay.last_stats == frame_stats(recorded.events.to_frame())
        finally:
            replay.close()
    with pytest.raises(TypeError, match="a list of Events or a trace path, got int"):
        Replay(42)


def test_compare_runs_each_config_and_shows_two_pictures_and_a_table() -> None:
    """A pool of 2 against a pool of 8, same workload, at once: a live view per config, one time axis, a row each."""
    before = set(threading.enumerate())
    compare = Compare(configs=[{"max_connections": 2}, {"max_connections": 8}], workers=8, requests=4, hold_ms=4)
    try:
        assert compare.run(wait=True, timeout=TIMEOUT)
        assert len(compare.views) == 2 and all(view.events_sent > 0 for view in compare.views)
        assert compare.views[0].span == compare.views[1].span and compare.views[0].span[1] > 0
        assert [view.max_connections for view in compare.views] == [2, 8]
        table = compare.table
        assert list(table.index) == ["max_connections=2", "max_connections=8"]
        assert list(table["max_connections"]) == [2, 8]
        assert list(table["requests"]) == [32, 32]
        errors = [result.summary()["errors"] for result in compare.results]
        assert (table["throughput_rps"] > 0).all(), f"requests failed: {errors}"
        assert table.loc["max_connections=2", "connections_opened"] <= 2
        assert "<table" in compare.table_html.value
        # Side by side: on the one perf_counter clock, the two runs' events overlap in time.
        spans = [(log.t0 + log.snapshot()[0].t, log.t0 + log.snapshot()[-1].t) for log in compare._logs]
        assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    finally:
        compare.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_compare_reports_bad_configs_instead_of_raising() -> None:
    """A config with max_connections 0 or an unknown key is a message, and Run does nothing."""
    compare = Compare(configs=[{"max_connections": 0}])
    assert "configs[0]: max_connections must be a positive integer, got 0" in compare.message.value
    assert not compare.run()
    compare = Compare(configs=[{"pool": 3}], workers=-1)
    assert "workers must be a positive integer, got -1" in compare.message.value


def test_display_goes_through_the_root_widget(make_dashboard: Any) -> None:
    """The dashboard displays as its root VBox widget, which carries a stable CSS class."""
    dash = make_dashboard()
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id
    assert "poolviz-dashboard" in dash.widget._dom_classes
    for css in (
        "poolviz-max-connections",
        "poolviz-run",
        "poolviz-stop",
        "poolviz-view",
        "poolviz-save",
        "poolviz-stats",
    ):
        assert any(css in w._dom_classes for w in dash._all_widgets), css


def test_unreachable_server_is_listed_with_its_reason(make_dashboard: Any) -> None:
    """A server that does not answer shows as unavailable with why, and Run refuses it."""
    dash = make_dashboard("postgresql+pool://nobody@127.0.0.1:9/x", check_servers=True)
    assert "(unavailable)" in dict((v, k) for k, v in dash.controls["backend"].options)["url"]
    assert "no server at 127.0.0.1:9" in dash.backend_note.value
    dash.controls["backend"].value = "url"
    assert dash.run_button.disabled
    assert not dash.run()
    assert "not available: no server at 127.0.0.1:9" in last_message(dash)


def _execute(client: Any, code: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run ``code`` in the kernel; returns its stdout and how many event batches arrived while it ran."""
    msg_id = client.execute(code)
    seen: dict[str, Any] = {"stdout": "", "batches": 0, "errors": []}
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "comm_msg" and msg.get("buffers"):
            seen["batches"] += 1  # packed events travel as binary buffers
        elif kind == "stream":
            seen["stdout"] += msg["content"]["text"]
        elif kind == "error":
            seen["errors"].append(msg["content"]["evalue"])
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return seen


@pytest.mark.slow
def test_frames_reach_the_frontend_while_a_cell_is_busy_and_kernel_shutdown_cleans_up() -> None:
    """In a real kernel, event batches are sent while the cell that pressed Run still sleeps; shutdown ends it all."""
    manager_module = pytest.importorskip("jupyter_client.manager")
    manager, client = manager_module.start_new_kernel(kernel_name="python3", startup_timeout=TIMEOUT)
    try:
        seen = _execute(
            client,
            "import time\n"
            "from poolviz.widgets import PoolDashboard\n"
            "dash = PoolDashboard(check_servers=False, duration=60, workers=2, hold_ms=5)\n"
            "dash.run()\n"
            "time.sleep(3)\n"
            "print(dash._resources.tempdir)\n",
        )
        assert seen["errors"] == []
        assert 2 <= seen["batches"] <= 3 * 10 + 2  # at most ten a second
        tempdir = Path(seen["stdout"].strip())
        assert tempdir.is_dir()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)  # a shutdown request: the kernel exits through atexit
    assert not manager.is_alive()
    assert not tempdir.exists()


def test_save_png_exports_the_window_through_plots(make_dashboard: Any, tmp_path: Path) -> None:
    """Save PNG after a run writes a PNG of the last window with matplotlib; before a run it says there is nothing."""
    dash = make_dashboard(duration=0.5, workers=2, hold_ms=2, save_dir=tmp_path)
    assert dash.save_png() is None
    assert "Nothing to save" in last_message(dash)
    assert dash.run(wait=True)
    dash.save_button.click()
    [written] = tmp_path.glob("poolviz-*.png")
    assert written.read_bytes().startswith(PNG)
    assert f"Saved {written}" in last_message(dash)


def test_the_mariadb_backend_is_keyed_mysql(make_dashboard: Any) -> None:
    """The backend key is "mysql", as backend_of() says, while its label still says MariaDB."""
    dash = make_dashboard()
    labels = {key: label for label, key in dash.controls["backend"].options}
    assert "mysql" in labels and "mariadb" not in labels
    assert labels["mysql"].startswith("MariaDB")


def test_a_late_browser_view_gets_the_run_again(make_dashboard: Any) -> None:
    """A view that says hello after a run gets a reset and every event of that run once more."""
    dash = make_dashboard(duration=0.3, workers=2, hold_ms=2)
    assert dash.run(wait=True)
    sent = dash.view.events_sent
    dash.view._front_end_message(dash.view, {"type": "hello"}, [])
    assert dash.view.events_sent == 2 * sent
