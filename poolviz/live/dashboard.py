"""The live dashboard: sliders set a pool and a closed-loop workload, the browser draws the run as it goes.

Data flows one way. Worker threads only record events in the pool's
:class:`~poolviz.events.EventLog`; one :class:`~poolviz.live.view.Shipper`
thread per run sends what is new to the :class:`~poolviz.live.view.LiveView`
ten times a second, and the browser draws. Nothing is drawn in the kernel
while a run is live: the numbers below the view are computed once, when the
run ends, and matplotlib only runs for "Save PNG".

Widget callbacks may run in a thread other than the main one (ipykernel 7
handles comm messages off the main thread), so shared state is guarded by a
lock, and a callback never lets an exception reach the cell: bad values
become a message in the widget instead.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import checks
from ..backends import backend_of_url
from ..workload import WorkloadResult
from .controls import build_controls, build_panel, show_library
from .runs import LiveRun, Resources, shutdown
from .settings import (
    LIBRARY_LABELS,
    LIBRARY_SETTINGS,
    DashboardSettings,
    build_pool,
    check_setting,
    close_pool,
    pool_limit,
    resize_pool,
)
from .shared import (
    JOIN_TIMEOUT_S,
    classed,
    closed_loop_workers,
    dashboard_figure,
    find_backends,
    frame_stats,
    message_html,
    option,
    save_png,
    set_within,
    stats_html,
)
from .view import LiveView, Shipper

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger("poolviz.live")


class PoolDashboard:
    """A live view of a connection pool under load, driven by sliders: ``display()`` it in JupyterLab.

    Pick a backend (SQLite in a temp dir always; MariaDB and PostgreSQL when
    :func:`poolviz.servers.reachable` says so, else listed as unavailable with
    the reason), set the pool and the workload, press Run. Each run gets a
    fresh pool and a closed-loop workload; the browser draws the timeline
    (a moving window of ``window_s`` seconds), occupancy with the limit, the
    wait distribution and the numbers, at most ``max_fps`` times a second.
    ``live=False`` sends the events only when the run ends (headless runs).

    The pool library is a choice too: peewee's pool, SQLAlchemy's
    ``QueuePool`` or psycopg_pool's ``ConnectionPool`` (PostgreSQL only), each
    with its own settings, shown only for the chosen library (see
    :class:`DashboardSettings`).

    **Changing peewee's max_connections during a run resizes the running pool**
    (see :func:`resize_pool`) and the view marks the moment. Every other
    setting applies from the next run, and the message line says so.

    ``url`` adds a backend for that ``+pool`` URL. ``defaults`` set the
    controls (names in :class:`DashboardSettings`); a bad one is reported in
    the message line and the control keeps its default. Nothing here raises
    into the cell.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        max_fps: float = 30.0,
        window_s: float = 10.0,
        live: bool = True,
        check_servers: bool = True,
        save_dir: str | Path = ".",
        **defaults: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._resources = Resources()
        self._finalizer = weakref.finalize(self, shutdown, self._resources)
        self._run: LiveRun | None = None
        self._starting = False
        self._closed = False
        self._seed = 0
        self._live = bool(live)
        self._save_dir = Path(save_dir)
        self.last_stats: dict[str, Any] = {}
        self.messages: list[tuple[str, str]] = []
        problems: list[str] = []
        max_fps = option(problems, lambda: checks.number("max_fps", max_fps, positive=True), 30.0)
        self._window_s = option(problems, lambda: checks.seconds("window_s", window_s, positive=True), 10.0)
        self._backends = find_backends(url, check_servers, problems)
        self.view = classed(LiveView(max_fps=max_fps, window_s=self._window_s), "poolviz-view")
        self._build_widgets()
        self._apply_defaults(defaults, problems)
        self.view.max_connections = self._limit_from_controls()
        self._wire()
        self.view.on_hello = self._guard(self._resend)
        self._backend_changed(self.controls["backend"].value, quiet=True)
        if problems:
            self._say("; ".join(problems), "error")
        else:
            self._say("Ready: set the pool and the workload, then press Run.")

    def _build_widgets(self) -> None:
        self.controls: dict[str, Any] = build_controls(self._backends)
        panel = build_panel(self.controls, self.view, self._backends)
        self.backend_note = panel.backend_note
        self.help = panel.help
        self.run_button = panel.run_button
        self.stop_button = panel.stop_button
        self.save_button = panel.save_button
        self.status = panel.status
        self.message = panel.message
        self.stats = panel.stats
        self.widget = panel.widget
        self._all_widgets = panel.all_widgets
        self._panel = panel

    def _apply_defaults(self, defaults: Mapping[str, Any], problems: list[str]) -> None:
        c = self.controls
        for name, value in defaults.items():
            try:
                checked = check_setting(name, value)
                if name == "backend" and checked not in self._backends:
                    raise ValueError(f"backend must be one of {', '.join(self._backends)}, got {value!r}")
            except ValueError as exc:
                problems.append(f"{exc}; keeping {self._control_value(name)!r}")
                continue
            if name == "seed":
                self._seed = checked
            elif name == "timeout":
                c["fail_at_once"].value = checked is None
                if checked is not None:
                    set_within(c["timeout"], checked)
            elif name in ("stale_timeout", "recycle"):
                set_within(c[name], 0.0 if checked is None else checked)
            elif name in ("backend", "distribution", "library", "use_lifo", "pre_ping"):
                c[name].value = checked
            else:
                set_within(c[name], checked)
        c["timeout"].disabled = c["fail_at_once"].value

    def _control_value(self, name: str) -> Any:
        if name == "seed":
            return self._seed
        control = self.controls.get(name)
        return control.value if control is not None else None

    def _wire(self) -> None:
        for name, control in self.controls.items():
            control.observe(self._guard(self._setting_changed, name), names="value")
        self.run_button.on_click(self._guard(lambda _button: self.run()))
        self.stop_button.on_click(self._guard(lambda _button: self.stop()))
        self.save_button.on_click(self._guard(lambda _button: self.save_png()))

    def _guard(self, fn: Callable[..., Any], *bound: Any) -> Callable[..., None]:
        # Widget callbacks: a problem becomes a message, never a traceback in the cell.
        def callback(*args: Any) -> None:
            try:
                fn(*bound, *args)
            except Exception as exc:
                logger.exception("poolviz dashboard callback failed")
                self._say(f"{type(exc).__name__}: {exc}", "error")

        return callback

    def _say(self, text: str, level: str = "info") -> None:
        with self._lock:
            self.messages.append((level, text))
            del self.messages[:-50]
            self.message.value = message_html(text, level)

    def _setting_changed(self, name: str, change: Mapping[str, Any]) -> None:
        new = change["new"]
        if name == "fail_at_once":
            self.controls["timeout"].disabled = bool(new)
        if name == "backend":
            self._backend_changed(new)
            return
        if name == "library":
            self._library_changed(new)
            return
        run = self._active_run()
        if name == "max_connections" and (run is None or run.settings.library == "peewee"):
            self._max_connections_changed(new)
            return
        if run is None and any(name in names for names in LIBRARY_SETTINGS.values()):
            self.view.max_connections = self._limit_from_controls()
        if run is not None:
            label = "timeout" if name == "fail_at_once" else name
            self._say(f"{label} applies from the next run; the running one keeps its settings.")

    def _backend_changed(self, key: str, quiet: bool = False) -> None:
        label, _url, reason = self._backends[key]
        self.run_button.disabled = reason is not None or self._active_run() is not None
        if reason:
            self._say(f"{label} is not available: {reason}", "error")
        elif not quiet:
            self._say(f"Next run uses {label}.")

    def _library_changed(self, name: str) -> None:
        show_library(self._panel, name)
        if self._active_run() is None:
            self.view.max_connections = self._limit_from_controls()
            _label, url, _reason = self._backends[self.controls["backend"].value]
            if name == "psycopg" and backend_of_url(url or "sqlite://") != "postgresql":
                self._say("psycopg_pool connects to PostgreSQL only: choose the PostgreSQL backend.", "error")
            else:
                self._say(f"Next run uses {LIBRARY_LABELS[name]}, with its own settings.")
        else:
            self._say("The pool library applies from the next run; the running one keeps its pool.")

    def _limit_from_controls(self) -> int | None:
        # The limit the controls describe now (None while a value is not allowed, e.g. max_connections 0).
        c = self.controls
        name = c["library"].value
        try:
            values = {key: check_setting(key, c[key].value) for key in LIBRARY_SETTINGS[name]}
        except ValueError:
            return None
        return pool_limit(name, DashboardSettings(**values))

    def _max_connections_changed(self, new: Any) -> None:
        try:
            limit = check_setting("max_connections", new)
        except ValueError as exc:
            self._say(str(exc), "error")
            return
        run = self._active_run()
        if run is None:
            if self.controls["library"].value == "peewee":
                self.view.max_connections = limit
            return
        old = run.db.max_connections
        if old == limit:
            return
        over = resize_pool(run.db, limit)
        t = run.log.now()
        with self._lock:
            run.resizes.append((t, old, limit))
        self.view.mark_resize(t, old, limit)
        if limit > old:
            detail = "waiting requests may take the new slots at once"
        elif over:
            detail = f"{over} connection(s) in use over the limit close as they are returned"
        else:
            detail = "idle connections over the limit were closed"
        self._say(f"max_connections {old} → {limit} on the running pool: {detail}.", "ok")

    def _active_run(self) -> LiveRun | None:
        with self._lock:
            run = self._run
        return run if run is not None and not run.finished.is_set() else None

    def settings(self) -> DashboardSettings:
        """The settings the controls now hold (a ValueError names any that is not allowed)."""
        c = self.controls
        values = {
            "backend": c["backend"].value,
            **{name: c[name].value for names in LIBRARY_SETTINGS.values() for name in names},
            "library": c["library"].value,
            "workers": c["workers"].value,
            "hold_ms": c["hold_ms"].value,
            "think_ms": c["think_ms"].value,
            "distribution": c["distribution"].value,
            "timeout": None if c["fail_at_once"].value else c["timeout"].value,
            "duration": c["duration"].value,
            "seed": self._seed,
        }
        return DashboardSettings(**{name: check_setting(name, value) for name, value in values.items()})

    @property
    def db(self) -> Any:
        """The pool of the current (or last) run, None before the first run."""
        with self._lock:
            return self._run.db if self._run is not None else None

    @property
    def result(self) -> WorkloadResult | None:
        """The last finished run's :class:`~poolviz.workload.WorkloadResult`."""
        with self._lock:
            return self._run.result if self._run is not None else None

    @property
    def running(self) -> bool:
        """True while a run's workload is going."""
        return self._active_run() is not None

    def run(self, wait: bool = False) -> bool:
        """Start a run with the controls' settings; True when one started (else the message line says why).

        ``wait=True`` returns only once the run has ended and its last events are sent.
        """
        if self._active_run() is not None:
            self._say("A run is going: press Stop first.", "error")
            return False
        try:
            settings = self.settings()
        except ValueError as exc:
            self._say(f"Not started: {exc}", "error")
            return False
        label, url, reason = self._backends[settings.backend]
        with self._lock:
            if self._closed:
                self._say("This dashboard is closed: make a new one.", "error")
                return False
            previous = self._run
            if self._starting or (previous is not None and not previous.finished.is_set()):
                self._say("A run is going: press Stop first.", "error")
                return False
            if reason:
                self._say(f"Not started: {label} is not available: {reason}", "error")
                return False
            self._starting = True
        try:
            if previous is not None:
                previous.join(JOIN_TIMEOUT_S)
            try:
                db = build_pool(settings, url or self._sqlite_url())
            except Exception as exc:
                self._say(f"Not started: {type(exc).__name__}: {exc}", "error")
                return False
            run = LiveRun(db=db, settings=settings, shipper=None)
            self.view.reset(settings.limit())
            self.view.workers = closed_loop_workers(settings.workers)
            shipper = run.shipper = Shipper(run.log, self.view.send_batch) if self._live else None
            run.threads.append(threading.Thread(target=self._work, args=(run,), name="poolviz-runner", daemon=True))
            with self._lock:
                self._run = run
                self._resources.runs[:] = [run]
            if previous is not None:
                close_pool(previous.db)
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self.status.value = "<code>running</code>"
            self._say(
                f"Running {LIBRARY_LABELS[settings.library]} on {label}: {settings.workers} workers, "
                f"at most {settings.limit()} connections, for {settings.duration:g} s."
            )
            if shipper is not None:
                shipper.start()
            for thread in run.threads:
                thread.start()
        finally:
            with self._lock:
                self._starting = False
        if wait:
            self.wait()
        return True

    def _sqlite_url(self) -> str:
        with self._lock:
            if self._resources.tempdir is None:
                self._resources.tempdir = tempfile.mkdtemp(prefix="poolviz-dashboard-")
            return f"sqlite+pool:///{Path(self._resources.tempdir) / 'dashboard.db'}"

    def _work(self, run: LiveRun) -> None:
        # The runner thread: the workload, then the last events and the numbers, once.
        try:
            run.began = time.perf_counter()
            run.result = run.settings.workload().run(run.db, stop=run.stop)
        except Exception as exc:  # a lost server, a full disk: shown, and the dashboard carries on
            logger.exception("poolviz dashboard run failed")
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self._wrap_up(run)
            finally:
                run.finished.set()
                self._finish(run)

    def _wrap_up(self, run: LiveRun) -> None:
        log = run.log
        if run.shipper is not None:
            run.shipper.stop()
        else:
            self.view.send_batch(log.since(0), now=log.now(), dropped=log.dropped)
        last = log.last
        self.view.end(last.t if last is not None else 0.0)
        frame = run.frame()
        stats = frame_stats(frame, workers=closed_loop_workers(run.settings.workers))
        stats["pool_max"] = run.limit()  # after a resize, the limit now
        stats["running"] = False
        stats["elapsed_s"] = run.result.elapsed_s if run.result else time.perf_counter() - run.began
        with self._lock:
            if self._run is not run:
                return
            self.last_stats = stats
            self.stats.value = stats_html(stats)
            status = "stopped" if run.stopped_by_user else "finished"
            self.status.value = (
                f"<code>{status}: {stats['elapsed_s']:.1f} s of {run.settings.duration:g} s, "
                f"{stats['requests']} pool checkouts</code>"
            )

    def _resend(self) -> None:
        # A browser view that has just started gets the current run's events again.
        with self._lock:
            run = self._run
            resizes = list(run.resizes) if run is not None else []
        if run is None:
            return

        def before() -> None:
            self.view.reset(run.settings.limit())
            for t, old, new in resizes:
                self.view.mark_resize(t, old, new)

        if run.shipper is not None and not run.finished.is_set():
            run.shipper.resend(before)
        elif run.finished.is_set():
            before()
            log = run.log
            self.view.send_batch(log.since(0), now=log.now(), dropped=log.dropped)
            last = log.last
            self.view.end(last.t if last is not None else 0.0)

    def _finish(self, run: LiveRun) -> None:
        self.stop_button.disabled = True
        self.run_button.disabled = self._backends[self.controls["backend"].value][2] is not None
        result = run.result
        if run.error:
            self._say(f"The run failed: {run.error}", "error")
        elif result is not None:
            how = "stopped" if run.stopped_by_user else "finished"
            self._say(
                f"Run {how}: {result.requests_ok} requests in {result.elapsed_s:.1f} s "
                f"({result.throughput_rps:.0f}/s), {result.requests_failed} failed.",
                "ok",
            )

    def numbers(self) -> dict[str, Any]:
        """The current (or last) run's numbers now, as the view's strip counts them; empty before the first run.

        Computed on demand from the pool's events with :func:`~poolviz.live.shared.frame_stats`
        (never per frame): waits still going count at their age at the pool's clock now, and
        per-worker service covers every worker of the run, those never served included.
        """
        with self._lock:
            run = self._run
        if run is None:
            return {}
        frame = run.frame()
        now = run.log.now() if not run.finished.is_set() else None
        stats = frame_stats(frame, now=now, workers=closed_loop_workers(run.settings.workers))
        stats["pool_max"] = run.limit()  # after a resize, the limit now
        stats["running"] = not run.finished.is_set()
        return stats

    def _window_picture(self) -> tuple[Any, Any, tuple[float, float], list[tuple[float, int, int]], list[str]] | None:
        # What Save PNG and snapshot() draw: the run's events, its limit, the window on screen, the resizes
        # and the workers.
        with self._lock:
            run = self._run
            resizes = list(run.resizes) if run is not None else []
        if run is None:
            return None
        frame = run.frame()
        end = run.log.now() if not run.finished.is_set() else float(frame["t"].max() if len(frame) else 0.0)
        window = (max(0.0, end - self._window_s), max(end, self._window_s))
        return frame, run.limit(), window, resizes, closed_loop_workers(run.settings.workers)

    def snapshot(self) -> Figure | None:
        """The window on screen drawn by matplotlib (what Save PNG writes), as a Figure; None before the first run.

        For a still picture of the live view: a static page, a report, a notebook built headless.
        """
        picture = self._window_picture()
        return dashboard_figure(*picture) if picture is not None else None

    def save_png(self, path: str | Path | None = None) -> Path | None:
        """Write the window on screen (the last ``window_s`` seconds of the run) as a PNG; returns its path."""
        picture = self._window_picture()
        if picture is None:
            self._say("Nothing to save yet: press Run first.", "error")
            return None
        target = Path(path) if path is not None else self._save_dir / time.strftime("poolviz-%Y%m%d-%H%M%S.png")
        written = save_png(picture[0], target, *picture[1:])
        self._say(f"Saved {written}.", "ok")
        return written

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current run to end and its last events to be sent; True when it has."""
        with self._lock:
            run = self._run
        if run is None:
            return True
        return run.join(JOIN_TIMEOUT_S * 100 if timeout is None else timeout)

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """End the current run: workers finish the request in hand, the last events are sent, every thread ends.

        Returns True when all the run's threads have ended within ``timeout`` seconds.
        """
        with self._lock:
            run = self._run
            if run is not None and not run.finished.is_set():
                run.stopped_by_user = True
        if run is None:
            return True
        run.stop.set()
        return run.join(timeout)

    def close(self) -> None:
        """Stop, close the pools, remove the temp dir and close the widgets."""
        with self._lock:
            self._closed = True
        self.stop()
        self._finalizer()
        for widget in self._all_widgets:
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
