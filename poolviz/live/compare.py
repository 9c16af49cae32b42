"""The same workload under two or more pool configurations, each drawn live in its own view, on one time axis.

The configurations may be of different pool libraries (peewee, SQLAlchemy,
psycopg_pool): :mod:`.compare_configs` checks them, places them on a database
and builds their pools.
"""

from __future__ import annotations

import html
import logging
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..workload import WorkloadResult, WorkloadSpec
from .compare_configs import (
    LIBRARY_TITLES,
    POOL_DEFAULTS,
    POOL_KEYS,
    build_pool,
    check_compare,
    close_pool,
    describe,
    events_of,
    place,
)
from .shared import JOIN_TIMEOUT_S, classed, closed_loop_workers, frame_stats, message_html, stats_html
from .view import LiveView, Shipper

logger = logging.getLogger("poolviz.live")

__all__ = ["POOL_DEFAULTS", "POOL_KEYS", "Compare", "check_compare"]


class Compare:
    """The same workload run under two or more pool configurations at the same time, shown side by side.

    ``configs`` are dicts of pool settings, each for one pool library:
    ``{"max_connections": 4}`` (peewee, the default),
    ``{"library": "sqlalchemy", "pool_size": 4, "max_overflow": 0}`` or
    ``{"library": "psycopg", "max_size": 4}``, with that library's settings
    (:mod:`.compare_configs`) and an optional ``label``; all are checked before
    anything connects. The workload is a :class:`~poolviz.workload.WorkloadSpec`:
    pass one as ``workload`` or its fields as keywords (``workers``,
    ``requests``, ``hold_ms``…), beside pool settings shared by every config
    whose library takes them. Each config gets a fresh pool on ``url``
    (default: a SQLite file of its own in a temp dir; SQLite too when the
    server does not answer, and psycopg_pool, PostgreSQL only, is then skipped
    with a note) and its own live view, titled with its library and settings.
    The configs run concurrently, each in its own thread, so they are watched
    side by side on one clock (on a server they share it, as the processes of
    one application would); once all have run, every view shows the same time
    axis. :attr:`table` holds one row per config.
    """

    def __init__(
        self,
        url: str | None = None,
        configs: Sequence[Mapping[str, Any]] = ({"max_connections": 2}, {"max_connections": 8}),
        workload: WorkloadSpec | None = None,
        *,
        max_fps: float = 30.0,
        window_s: float = 10.0,
        **settings: Any,
    ) -> None:
        self._lock = threading.Lock()
        self._tempdir: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.table = pd.DataFrame()
        self.results: list[WorkloadResult | None] = []
        self.message = classed(widgets.HTML(), "poolviz-message")
        self.run_button = classed(widgets.Button(description="Run", button_style="success", icon="play"), "poolviz-run")
        self.stop_button = classed(
            widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True), "poolviz-stop"
        )
        self.table_html = classed(widgets.HTML(), "poolviz-compare-table")
        self.problem = ""
        #: Where the configs run (None: a SQLite file each), why any is skipped, and a note saying so.
        self.url: str | None = None
        self.skipped: list[str] = []
        self.note = ""
        try:
            self.configs, self.workload = check_compare(url, configs, workload, settings)
            self.url, self.skipped, self.note = place(url, self.configs)
        except (ValueError, TypeError) as exc:
            self.problem = str(exc)
            self.configs, self.workload = [], WorkloadSpec()
        self.titles = [classed(widgets.HTML(_title_html(c)), "poolviz-compare-title") for c in self.configs]
        total = self.workload.workers * (self.workload.requests or 0)
        self.progress = [
            classed(widgets.IntProgress(value=0, min=0, max=max(1, total)), "poolviz-compare-progress")
            for _ in self.configs
        ]
        self.views = [
            classed(
                LiveView(
                    max_fps=max_fps,
                    window_s=window_s,
                    max_connections=c["limit"],
                    height=420,
                    workers=closed_loop_workers(self.workload.workers),
                    # Side by side the views are narrow, and each run's holders matter less than the contrast.
                    show_holders=False,
                ),
                "poolviz-view",
            )
            for c in self.configs
        ]
        self._logs: list[Any] = [None] * len(self.configs)
        for i, view in enumerate(self.views):
            view.on_hello = self._resender(i)
        self.stats = [classed(widgets.HTML(), "poolviz-stats") for _ in self.configs]
        self.widget = classed(widgets.VBox(self._layout()), "poolviz-compare")
        self.run_button.on_click(lambda _b: self._guarded(self.run))
        self.stop_button.on_click(lambda _b: self._guarded(self.stop))
        if self.problem:
            self.run_button.disabled = True
            self._say(self.problem, "error")
        elif self.note:
            self._say(self.note)

    def _layout(self) -> list[Any]:
        """The widget's rows: what runs, the buttons, the message, a column per config, the table."""
        width = f"{100 / max(1, len(self.configs)):.0f}%"
        columns = []
        for i in range(len(self.configs)):
            if self.skipped[i]:
                # A skipped config keeps its column, with the reason where its view would be.
                parts = [self.titles[i], widgets.HTML(message_html(self.skipped[i], "info"))]
            else:
                parts = [self.titles[i], self.progress[i], self.views[i], self.stats[i]]
            columns.append(widgets.VBox(parts, layout=widgets.Layout(width=width)))
        w = self.workload
        about = widgets.HTML(
            f"Same workload for each: {w.workers} workers × {w.requests} requests, "
            f"hold {w.hold_ms:g} ms, think {w.think_ms:g} ms ({html.escape(w.distribution)})."
        )
        return [
            about,
            widgets.HBox([self.run_button, self.stop_button]),
            self.message,
            widgets.HBox(columns),
            self.table_html,
        ]

    def _guarded(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            logger.exception("poolviz compare callback failed")
            self._say(f"{type(exc).__name__}: {exc}", "error")

    def _say(self, text: str, level: str = "info") -> None:
        self.message.value = message_html(text, level)

    def _resender(self, i: int) -> Callable[[], None]:
        def resend() -> None:
            log = self._logs[i]
            if log is not None and self.results and self.results[i] is not None:
                view = self.views[i]
                view.reset(self.configs[i]["limit"])
                view.send_events(log.since(0))
                view.end(log.last.t if log.last is not None else 0.0)

        return resend

    def run(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Run every config at once in the background; True when it started (``wait``: and finished)."""
        if self.problem:
            self._say(self.problem, "error")
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._say("Already running: press Stop first.", "error")
                return False
            self._stop.clear()
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._work, name="poolviz-compare-run", daemon=True)
            self._thread.start()
        if wait:
            return self.wait(timeout)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every config has run; True when done."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """End the comparison early (each run finishes its requests in hand); True when every thread ended."""
        self._stop.set()
        return self.wait(timeout)

    def _work(self) -> None:
        self.results = [None] * len(self.configs)
        ends: list[float] = [0.0] * len(self.configs)
        failures: list[BaseException | None] = [None] * len(self.configs)
        try:
            for view in self.views:
                view.span = []
            pools = self._build_pools()
            if pools is None:
                return
            runs = len(pools)
            self._say(f"Running {runs} configurations side by side…")
            threads = [
                threading.Thread(
                    target=self._run_one, args=(i, pool, ends, failures), name=f"poolviz-compare-{i}", daemon=True
                )
                for i, pool in pools.items()
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rows = [self._row(i) for i in range(len(self.configs)) if self.results[i] is not None or self.skipped[i]]
            if rows:
                self.table = pd.DataFrame(rows).set_index("config")
                self.table_html.value = self.table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="–")
            # One time axis for every view: from 0 to the longest run's end.
            axis = [0.0, max(ends, default=0.0) or 1.0]
            for view in self.views:
                view.span = axis
            self._report(runs, failures)
        except Exception as exc:
            logger.exception("poolviz compare failed")
            self._say(f"The comparison failed: {type(exc).__name__}: {exc}", "error")
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True

    def _build_pools(self) -> dict[int, Any] | None:
        """A fresh pool per config that runs, or None (with the reason shown) when one cannot be built.

        Every pool is made before any runs, so their clocks start together and
        the views' times line up; each config then runs in its own thread.
        """
        pools: dict[int, Any] = {}
        for i, config in enumerate(self.configs):
            if self.skipped[i]:
                continue
            try:
                pools[i] = build_pool(config, self.url or self._sqlite_url(i))
            except Exception as exc:
                logger.exception("poolviz compare: building %s failed", config["label"])
                for pool in pools.values():
                    close_pool(pool)
                self._say(f"Could not build the pool for {config['label']}: {type(exc).__name__}: {exc}", "error")
                return None
        return pools

    def _report(self, runs: int, failures: Sequence[BaseException | None]) -> None:
        failed = [(self.configs[i]["label"], exc) for i, exc in enumerate(failures) if exc is not None]
        if failed:
            label, exc = failed[0]
            self._say(f"The comparison failed for {label}: {type(exc).__name__}: {exc}", "error")
            return
        done = "Stopped" if self._stop.is_set() else "Done"
        ran = sum(result is not None for result in self.results)
        text = f"{done}: {ran} of {len(self.configs)} configurations ran side by side."
        skipped = [c["label"] for c, why in zip(self.configs, self.skipped, strict=True) if why]
        if skipped:
            text += f" Skipped: {', '.join(skipped)} ({self.note})"
        self._say(text, "ok")

    def _run_one(self, i: int, pool: Any, ends: list[float], failures: list[BaseException | None]) -> None:
        """One config's run, in its own thread: ship its events to its view, then fill in its numbers."""
        view = self.views[i]
        view.reset(self.configs[i]["limit"])
        log = self._logs[i] = events_of(pool)
        shipper = Shipper(log, view.send_batch).start()
        try:
            result = self.workload.run(pool, stop=self._stop, progress=self._progress(self.progress[i]))
        except Exception as exc:
            logger.exception("poolviz compare: %s failed", self.configs[i]["label"])
            failures[i] = exc
            return
        finally:
            shipper.stop()
            close_pool(pool)
        last = log.last
        ends[i] = last.t if last is not None else 0.0
        view.end(ends[i])
        self.results[i] = result
        self.stats[i].value = stats_html(frame_stats(result.events, workers=self._workers()))
        self.progress[i].value = result.requests

    def _workers(self) -> list[str]:
        return closed_loop_workers(self.workload.workers)

    def _row(self, i: int) -> dict[str, Any]:
        config = self.configs[i]
        row: dict[str, Any] = {
            "config": config["label"],
            "library": config["library"],
            "max_connections": config["limit"],
            "settings": describe(config),
        }
        result = self.results[i]
        if result is None:
            return {**row, "note": self.skipped[i]}
        stats = frame_stats(result.events, workers=self._workers())
        return {
            **row,
            "requests": result.requests,
            "failed": result.requests_failed,
            "elapsed_s": result.elapsed_s,
            "throughput_rps": result.throughput_rps,
            "wait_p50_s": stats["wait_p50_s"],
            "wait_p95_s": stats["wait_p95_s"],
            "wait_max_s": stats["wait_max_s"],
            "timeouts": stats["timeouts"],
            "connections_opened": stats["connections_opened"],
            "checkouts_min": stats["checkouts_min"],
            "checkouts_max": stats["checkouts_max"],
            "starved": stats["starved"],
            "longest_wait_s": stats["longest_wait_s"],
            "note": "",
        }

    def _progress(self, bar: Any) -> Callable[[int, int | None], None]:
        # One widget message per request would flood the frontend: at most ten a second.
        last = [0.0]

        def report(done: int, _total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                bar.value = done

        return report

    def _sqlite_url(self, i: int) -> str:
        # One file per config: side by side on one SQLite file, the runs would queue on its write lock.
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix="poolviz-compare-")
            weakref.finalize(self, shutil.rmtree, self._tempdir, ignore_errors=True)
        return f"sqlite+pool:///{Path(self._tempdir) / f'compare-{i}.db'}"

    def close(self) -> None:
        """Stop, remove the temp dir and close the widgets."""
        self.stop()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        for view in self.views:
            view.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _title_html(config: Mapping[str, Any]) -> str:
    """A view's title: the config's label, then its library's pool and the settings it chose."""
    about = f"{LIBRARY_TITLES[config['library']]} · {describe(config)}"
    return f'<b>{html.escape(config["label"])}</b><br><span style="font-size:12px">{html.escape(about)}</span>'
