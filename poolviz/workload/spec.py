"""One closed-loop workload, checked once: what the command line, the dashboard and Compare all run.

A :class:`WorkloadSpec` holds the traffic (workers, requests per worker or a
run length, mean hold and think times and their distribution, seed) and which
pool library runs it, with that library's settings
(:data:`poolviz.pools.factory.SETTINGS`; only those given, the rest are the
library's defaults). Its defaults are the one set of defaults poolviz uses.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import checks
from .distributions import DISTRIBUTIONS, Distribution
from .loops import run_closed_loop
from .results import WorkloadResult
from .run import Progress

# A run bounded by its duration still gives run_closed_loop a request count.
_UNBOUNDED_REQUESTS = 10**9


def _check(name: str, value: Any) -> Any:
    if name in ("workers",):
        return checks.count(name, value)
    if name == "requests":
        return checks.count(name, value, none_means="run until duration or stop")
    if name in ("hold_ms", "think_ms"):
        return checks.number(name, value)
    if name == "distribution":
        return checks.choice(name, value, DISTRIBUTIONS)
    if name == "seed":
        return checks.integer(name, value)
    if name == "duration":
        return checks.seconds(name, value, positive=True, none_allowed=True)
    if name == "library":
        from ..pools.factory import library

        return library(value)
    if name == "pool_settings":
        if not isinstance(value, Mapping):
            raise ValueError(f"pool_settings must be a dict of the pool library's settings, got {value!r}")
        return dict(value)
    raise ValueError(f"unknown workload setting {name!r}; use {', '.join(WORKLOAD_FIELDS)}")


@dataclass(frozen=True)
class WorkloadSpec:
    """A closed loop: ``workers`` threads each making ``requests`` requests (or until ``duration`` seconds).

    ``hold_ms`` and ``think_ms`` are mean milliseconds of ``distribution``
    (``fixed``, ``exp`` or ``uniform``). Every field is checked with
    :mod:`poolviz.checks` when the spec is made; a bad one raises a
    ``ValueError`` naming it. With both ``requests`` and ``duration``, the
    first reached ends the run. ``library`` (``peewee``, ``sqlalchemy`` or
    ``psycopg``) and ``pool_settings`` (that library's settings, checked by
    :func:`poolviz.pools.factory.settings_for`) say which pool :meth:`build`
    makes; :meth:`run` runs on any instrumented pool it is given.
    """

    workers: int = 8
    requests: int | None = 25
    hold_ms: float = 20.0
    think_ms: float = 0.0
    distribution: str = "exp"
    seed: int = 0
    duration: float | None = None
    library: str = "peewee"
    pool_settings: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        from ..pools.factory import settings_for

        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name)))
        if self.requests is None and self.duration is None:
            raise ValueError("a workload needs requests or a duration, got neither")
        checked = settings_for(self.library, **self.pool_settings)
        object.__setattr__(self, "pool_settings", {k: checked[k] for k in self.pool_settings})

    def settings(self) -> dict[str, Any]:
        """The pool library's settings in full: its defaults with :attr:`pool_settings` over them."""
        from ..pools.factory import settings_for

        return settings_for(self.library, **self.pool_settings)

    def build(self, url: str) -> Any:
        """An instrumented pool of :attr:`library` on ``url`` with :attr:`pool_settings` (``factory.build``)."""
        from ..pools.factory import build

        return build(self.library, url, **self.pool_settings)

    @staticmethod
    def check(name: str, value: Any) -> Any:
        """``value`` for field ``name`` in canonical form, or a ValueError that says what is allowed."""
        return _check(name, value)

    def replace(self, **changes: Any) -> WorkloadSpec:
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)

    def hold(self) -> Distribution:
        """The hold-time distribution, in seconds."""
        return Distribution.with_mean(self.distribution, self.hold_ms / 1000.0)

    def think(self) -> Distribution:
        """The think-time distribution, in seconds."""
        return Distribution.with_mean(self.distribution, self.think_ms / 1000.0)

    def run(
        self,
        db: Any,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
        setup: bool = True,
    ) -> WorkloadResult:
        """Run this closed loop on the instrumented pool ``db`` (see :func:`~poolviz.workload.run_closed_loop`)."""
        stop = stop if stop is not None else threading.Event()
        report = progress
        if self.duration is not None:
            deadline = time.perf_counter() + self.duration
            timer = threading.Timer(self.duration, stop.set)
            timer.daemon = True

            def report(done: int, total: int | None) -> None:
                if time.perf_counter() >= deadline:
                    stop.set()
                if progress is not None:
                    progress(done, total)

            timer.start()
        try:
            return run_closed_loop(
                db,
                self.workers,
                self.requests if self.requests is not None else _UNBOUNDED_REQUESTS,
                self.hold(),
                self.think(),
                self.seed,
                stop,
                report,
                setup=setup,
            )
        finally:
            if self.duration is not None:
                timer.cancel()


WORKLOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(WorkloadSpec))
