"""The same workload under two or more pool configurations, each drawn live in its own view, on one time axis."""

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

from .. import checks
from ..urls import connect
from ..workload import WORKLOAD_FIELDS, WorkloadResult, WorkloadSpec
from .shared import JOIN_TIMEOUT_S, classed, closed_loop_workers, frame_stats, message_html, stats_html, url_problem
from .view import LiveView, Shipper

logger = logging.getLogger("poolviz.live")

POOL_KEYS = ("max_connections", "timeout", "stale_timeout")
POOL_DEFAULTS: dict[str, Any] = {"max_connections": 4, "timeout": 10.0, "stale_timeout": None}


class Compare:
    """The same workload run under two or more pool configurations at the same time, shown side by side.

    ``configs`` are pool settings (``max_connections``, ``timeout``,
    ``stale_timeout``, and an optional ``label``). The workload is a
    :class:`~poolviz.workload.WorkloadSpec`: pass one as ``workload`` or its
    fields as keywords (``workers``, ``requests``, ``hold_ms``…), beside
    pool settings shared by every config. Each config gets a fresh pool on
    ``url`` (default: a SQLite file of its own in a temp dir) and its own live
    view, drawn in the browser while it runs. The configs run concurrently,
    each in its own thread, so they are watched side by side on one clock
    (on a server they share it, as the processes of one application would);
    once all have run, every view shows the same time axis. :attr:`table`
    holds one row per config.
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
        self._url = url
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
        try:
            self.configs, self.workload = check_compare(url, configs, workload, settings)
        except (ValueError, TypeError) as exc:
            self.problem = str(exc)
            self.configs, self.workload = [], WorkloadSpec()
        self.titles = [
            classed(widgets.HTML(f"<b>{html.escape(c['label'])}</b>"), "poolviz-compare-title") for c in self.configs
        ]
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
                    max_connections=c["max_connections"],
                    height=420,
                    workers=closed_loop_workers(self.workload.workers),
                ),
                "poolviz-view",
            )
            for c in self.configs
        ]
        self._logs: list[Any] = [None] * len(self.configs)
        for i, view in enumerate(self.views):
            view.on_hello = self._resender(i)
        self.stats = [classed(widgets.HTML(), "poolviz-stats") for _ in self.configs]
        width = f"{100 / max(1, len(self.configs)):.0f}%"
        columns = [
            widgets.VBox(list(parts), layout=widgets.Layout(width=width))
            for parts in zip(self.titles, self.progress, self.views, self.stats, strict=True)
        ]
        w = self.workload
        about = widgets.HTML(
            f"Same workload for each: {w.workers} workers × {w.requests} requests, "
            f"hold {w.hold_ms:g} ms, think {w.think_ms:g} ms ({html.escape(w.distribution)})."
        )
        self.widget = classed(
            widgets.VBox(
                [
                    about,
                    widgets.HBox([self.run_button, self.stop_button]),
                    self.message,
                    widgets.HBox(columns),
                    self.table_html,
                ]
            ),
            "poolviz-compare",
        )
        self.run_button.on_click(lambda _b: self._guarded(self.run))
        self.stop_button.on_click(lambda _b: self._guarded(self.stop))
        if self.problem:
            self.run_button.disabled = True
            self._say(self.problem, "error")

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
                view.reset(self.configs[i]["max_connections"])
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
            # Every pool is made before any runs, so their clocks start together and the
            # views' times line up; each config then runs in its own thread, side by side.
            pools = []
            for i, config in enumerate(self.configs):
                settings = {key: config[key] for key in POOL_KEYS}
                pools.append((connect(self._url or self._sqlite_url(i), **settings), settings))
            self._say(f"Running {len(self.configs)} configurations side by side…")
            threads = [
                threading.Thread(
                    target=self._run_one,
                    args=(i, db, settings, ends, failures),
                    name=f"poolviz-compare-{i}",
                    daemon=True,
                )
                for i, (db, settings) in enumerate(pools)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rows = [self._row(i, result) for i, result in enumerate(self.results) if result is not None]
            if rows:
                self.table = pd.DataFrame(rows).set_index("config")
                self.table_html.value = self.table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="–")
            # One time axis for every view: from 0 to the longest run's end.
            axis = [0.0, max(ends, default=0.0) or 1.0]
            for view in self.views:
                view.span = axis
            failed = [(self.configs[i]["label"], exc) for i, exc in enumerate(failures) if exc is not None]
            if failed:
                label, exc = failed[0]
                self._say(f"The comparison failed for {label}: {type(exc).__name__}: {exc}", "error")
            else:
                done = "Stopped" if self._stop.is_set() else "Done"
                self._say(f"{done}: {len(rows)} of {len(self.configs)} configurations ran side by side.", "ok")
        except Exception as exc:
            logger.exception("poolviz compare failed")
            self._say(f"The comparison failed: {type(exc).__name__}: {exc}", "error")
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True

    def _run_one(
        self,
        i: int,
        db: Any,
        settings: dict[str, Any],
        ends: list[float],
        failures: list[BaseException | None],
    ) -> None:
        """One config's run, in its own thread: ship its events to its view, then fill in its numbers."""
        view = self.views[i]
        view.reset(settings["max_connections"])
        self._logs[i] = db.events
        shipper = Shipper(db.events, view.send_batch).start()
        try:
            result = self.workload.run(db, stop=self._stop, progress=self._progress(self.progress[i]))
        except Exception as exc:
            logger.exception("poolviz compare: %s failed", self.configs[i]["label"])
            failures[i] = exc
            return
        finally:
            shipper.stop()
            db.close_all()
        last = db.events.last
        ends[i] = last.t if last is not None else 0.0
        view.end(ends[i])
        self.results[i] = result
        self.stats[i].value = stats_html(frame_stats(result.events))
        self.progress[i].value = result.requests

    def _row(self, i: int, result: WorkloadResult) -> dict[str, Any]:
        config = self.configs[i]
        stats = frame_stats(result.events)
        return {
            "config": config["label"],
            **{key: config[key] for key in POOL_KEYS},
            "requests": result.requests,
            "failed": result.requests_failed,
            "elapsed_s": result.elapsed_s,
            "throughput_rps": result.throughput_rps,
            "wait_p50_s": stats["wait_p50_s"],
            "wait_p95_s": stats["wait_p95_s"],
            "timeouts": stats["timeouts"],
            "connections_opened": stats["connections_opened"],
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


def check_compare(
    url: str | None, configs: Any, workload: WorkloadSpec | None, settings: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], WorkloadSpec]:
    """Compare's arguments checked: the configs with their pool settings filled in, and the workload."""
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise ValueError(f"url: {problem}")
    known = {*WORKLOAD_FIELDS, *POOL_KEYS}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    fields = {k: v for k, v in settings.items() if k in WORKLOAD_FIELDS}
    if workload is not None and not isinstance(workload, WorkloadSpec):
        raise TypeError(f"workload must be a WorkloadSpec, got {workload!r}")
    spec = (workload or WorkloadSpec()).replace(**fields)
    shared = {**POOL_DEFAULTS, **{k: v for k, v in settings.items() if k in POOL_KEYS}}
    if isinstance(configs, (str, Mapping)) or not isinstance(configs, Sequence) or len(configs) < 1:
        raise ValueError(f"configs must be a list of dicts of pool settings, got {configs!r}")
    checked = []
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise ValueError(f"configs[{i}] must be a dict like {{'max_connections': 4}}, got {config!r}")
        extra = sorted(set(config) - {*POOL_KEYS, "label"})
        if extra:
            raise ValueError(f"configs[{i}] has unknown key(s) {', '.join(extra)}; use {', '.join(POOL_KEYS)}, label")
        merged = {key: config.get(key, shared[key]) for key in POOL_KEYS}
        try:
            # Each view draws its pool's limit, so "no limit" (None) is not offered here.
            limit = checks.count("max_connections", merged["max_connections"])
            _limit, stale, timeout = checks.pool_args(limit, merged["stale_timeout"], merged["timeout"])
            merged = {"max_connections": limit, "timeout": timeout, "stale_timeout": stale}
        except ValueError as exc:
            raise ValueError(f"configs[{i}]: {exc}") from None
        label = (
            config.get("label") or ", ".join(f"{k}={config[k]}" for k in POOL_KEYS if k in config) or f"config {i + 1}"
        )
        checked.append({**merged, "label": str(label)})
    return checked, spec
