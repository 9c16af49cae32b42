"""What one dashboard run uses, checked: the pool's settings beside a :class:`~poolviz.workload.WorkloadSpec`.

Also :func:`resize_pool`, how the dashboard changes a running pool's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import checks
from ..pools.peewee import is_instrumented
from ..workload import WORKLOAD_FIELDS, WorkloadSpec

_WORKLOAD = WorkloadSpec()


@dataclass(frozen=True)
class DashboardSettings:
    """A dashboard run: the backend, the pool's settings and the closed loop's (one run of ``duration`` seconds).

    ``timeout`` is peewee's: seconds a request waits for a free connection,
    ``0`` waits forever, ``None`` fails at once when the pool is full.
    ``stale_timeout`` ``None`` never retires a connection for its age. The
    workload fields and their defaults are :class:`~poolviz.workload.WorkloadSpec`'s;
    a dashboard run is bounded by ``duration`` rather than a request count.
    """

    backend: str = "sqlite"
    max_connections: int = 4
    timeout: float | None = 10.0
    stale_timeout: float | None = None
    workers: int = _WORKLOAD.workers
    hold_ms: float = _WORKLOAD.hold_ms
    think_ms: float = _WORKLOAD.think_ms
    distribution: str = _WORKLOAD.distribution
    duration: float = 10.0
    seed: int = _WORKLOAD.seed

    def workload(self) -> WorkloadSpec:
        """The closed loop this run drives: no request count, ``duration`` seconds."""
        return WorkloadSpec(
            workers=self.workers,
            requests=None,
            hold_ms=self.hold_ms,
            think_ms=self.think_ms,
            distribution=self.distribution,
            seed=self.seed,
            duration=self.duration,
        )


SETTING_NAMES: tuple[str, ...] = tuple(DashboardSettings.__dataclass_fields__)


def check_setting(name: str, value: Any) -> Any:
    """``value`` for setting ``name`` in its canonical form, or a ValueError that says what is allowed."""
    if name == "max_connections":
        try:
            return checks.count(name, value)
        except ValueError as exc:
            raise ValueError(f"{exc} (peewee would read 0 as no limit)") from None
    if name in ("timeout", "stale_timeout"):
        seconds = checks.seconds(name, value, none_allowed=True)
        # A stale_timeout of 0 is peewee's "never": say so with None.
        return None if name == "stale_timeout" and seconds == 0 else seconds
    if name == "backend":
        if not isinstance(value, str):
            raise ValueError(f"backend must be a string, got {value!r}")
        return value
    if name == "duration":
        return checks.seconds(name, value, positive=True)
    if name in WORKLOAD_FIELDS and name != "requests":
        return WorkloadSpec.check(name, value)
    raise ValueError(f"unknown setting {name!r}; the dashboard knows {', '.join(SETTING_NAMES)}")


BACKEND_LABELS = {"sqlite": "SQLite (temp file)", "mysql": "MariaDB", "postgresql": "PostgreSQL"}

HELP = (
    "<details><summary>What the controls mean</summary><ul>"
    "<li><b>max_connections</b>: the most connections the pool keeps open. Changing it during a run "
    "resizes the running pool. 0 is refused: peewee would read it as no limit at all.</li>"
    "<li><b>workers</b>: threads that each make requests back to back.</li>"
    "<li><b>hold / think</b>: mean milliseconds a request keeps its connection, and a worker pauses "
    "between requests (drawn from the distribution).</li>"
    "<li><b>timeout</b>: seconds a request waits for a free connection before "
    "<code>MaxConnectionsExceeded</code>; <b>0 = wait forever</b>. Tick <b>fail at once</b> for "
    "<code>timeout=None</code>: a full pool raises at once.</li>"
    "<li><b>stale_timeout</b>: seconds after which a connection is closed when next checked out or in; "
    "0 = never.</li>"
    "<li><b>run length</b>: seconds the workload runs (Stop ends it sooner).</li>"
    "</ul>Settings other than max_connections apply from the next run. Hover a bar for its connection, "
    "thread, hold and wait; pause freezes the picture, not the run.</details>"
)


# Live resizing. peewee's limit only decides whether the pool may open another
# connection: idle ones are handed out whatever the limit. Shrinking therefore
# also closes the connections over the new limit, idle ones at once and the
# ones in use as they come back, until in use + idle fits.
def resize_pool(db: Any, max_connections: int) -> int:
    """Change a running instrumented pool's ``max_connections`` (see the pools' ``resize()``).

    Returns how many connections in use are over the new limit; they close as
    they are checked in, so the pool settles within one hold time.
    """
    if not is_instrumented(db):
        raise TypeError(f"resize_pool needs an instrumented pool, got {type(db).__qualname__}")
    return int(db.resize(check_setting("max_connections", max_connections)))
