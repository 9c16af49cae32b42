"""One dashboard run's state (pool, threads, shipper) and what a dashboard releases when it goes away."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..workload import WorkloadResult
from .settings import DashboardSettings, close_pool
from .view import Shipper

logger = logging.getLogger("poolviz.live")


@dataclass
class LiveRun:
    """One run of the dashboard: its pool, its threads and what they share."""

    db: Any
    settings: DashboardSettings
    shipper: Shipper | None
    stop: threading.Event = field(default_factory=threading.Event)  # the workload's stop Event
    finished: threading.Event = field(default_factory=threading.Event)  # the runner has returned
    threads: list[threading.Thread] = field(default_factory=list)
    resizes: list[tuple[float, int, int]] = field(default_factory=list)
    result: WorkloadResult | None = None
    error: str = ""
    stopped_by_user: bool = False
    began: float = 0.0

    @property
    def log(self) -> Any:
        """The run's :class:`~poolviz.events.EventLog`, whatever the pool's library."""
        from ..pools import events_of

        return events_of(self.db)

    def frame(self) -> Any:
        """The run's events as a DataFrame (``log.to_frame()``)."""
        return self.log.to_frame()

    def limit(self) -> int:
        """The most connections the run's pool may hold now (a peewee pool may have been resized)."""
        if self.settings.library == "peewee":
            return int(self.db.max_connections)
        return self.settings.limit()

    def join(self, timeout: float) -> bool:
        """Wait for this run's threads; True when they have all ended."""
        until = time.monotonic() + timeout
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, until - time.monotonic()))
        return not any(t.is_alive() for t in self.threads if t is not threading.current_thread())


class Resources:
    """What a dashboard must release even if nobody calls close(): its runs and its temp dir."""

    def __init__(self) -> None:
        self.runs: list[LiveRun] = []
        self.tempdir: str | None = None


def shutdown(resources: Resources) -> None:
    # Run by close(), by the garbage collector or at interpreter exit (kernel shutdown).
    for run in resources.runs:
        run.stop.set()
    for run in resources.runs:
        run.join(5.0)
        try:
            close_pool(run.db)
        except Exception:
            logger.debug("poolviz dashboard: closing a pool failed", exc_info=True)
    resources.runs.clear()
    if resources.tempdir:
        shutil.rmtree(resources.tempdir, ignore_errors=True)
        resources.tempdir = None
