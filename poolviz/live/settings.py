"""What one dashboard run uses, checked: the pool's settings beside a :class:`~poolviz.workload.WorkloadSpec`.

The pool is one of three libraries (peewee, SQLAlchemy's ``QueuePool``,
psycopg_pool's ``ConnectionPool``), each with its own settings
(:data:`LIBRARY_SETTINGS`); :func:`build_pool` builds it and :func:`close_pool`
closes it. Also :func:`resize_pool`, how the dashboard changes a running peewee
pool's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import checks
from ..pools.factory import SETTINGS, library
from ..pools.peewee import is_instrumented
from ..workload import WORKLOAD_FIELDS, WorkloadSpec

_WORKLOAD = WorkloadSpec()


@dataclass(frozen=True)
class DashboardSettings:
    """A dashboard run: the backend, the pool's settings and the closed loop's (one run of ``duration`` seconds).

    ``library`` picks the pool: ``"peewee"`` (``max_connections``,
    ``stale_timeout``), ``"sqlalchemy"`` (``pool_size``, ``max_overflow``,
    ``use_lifo``, ``pre_ping``, ``recycle``) or ``"psycopg"`` (``min_size``,
    ``max_size``, ``max_waiting``, ``max_lifetime``); the other libraries'
    settings are ignored. ``timeout`` is seconds a request waits for a free
    connection; ``None`` fails at once when the pool is full, and ``0`` waits
    forever in peewee but fails at once in the other two. ``stale_timeout``
    and ``recycle`` ``None`` never retire a connection for its age. The
    workload fields and their defaults are :class:`~poolviz.workload.WorkloadSpec`'s;
    a dashboard run is bounded by ``duration`` rather than a request count.
    """

    backend: str = "sqlite"
    library: str = "peewee"
    max_connections: int = 4
    timeout: float | None = 10.0
    stale_timeout: float | None = None
    pool_size: int = SETTINGS["sqlalchemy"]["pool_size"]
    max_overflow: int = SETTINGS["sqlalchemy"]["max_overflow"]
    use_lifo: bool = False
    pre_ping: bool = False
    recycle: float | None = None
    min_size: int = SETTINGS["psycopg"]["min_size"]
    max_size: int = SETTINGS["psycopg"]["max_size"]
    max_waiting: int = SETTINGS["psycopg"]["max_waiting"]
    max_lifetime: float = SETTINGS["psycopg"]["max_lifetime"]
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

    def pool_settings(self) -> dict[str, Any]:
        """The chosen library's settings, as :func:`poolviz.pools.factory.build` (or peewee's connect) takes them."""
        if self.library == "peewee":
            return {
                "max_connections": self.max_connections,
                "timeout": self.timeout,
                "stale_timeout": self.stale_timeout,
            }
        # None (fail at once) is 0 in SQLAlchemy and psycopg_pool: neither waits at all then.
        timeout = 0.0 if self.timeout is None else self.timeout
        return {"timeout": timeout, **{name: getattr(self, name) for name in LIBRARY_SETTINGS[self.library]}}

    def limit(self) -> int:
        """The most connections the chosen pool may hold at once: the line the view draws."""
        return pool_limit(self.library, self)


SETTING_NAMES: tuple[str, ...] = tuple(DashboardSettings.__dataclass_fields__)

#: Each library's own settings on the dashboard (``timeout`` is shared by all three).
LIBRARY_SETTINGS: dict[str, tuple[str, ...]] = {
    "peewee": ("max_connections", "stale_timeout"),
    "sqlalchemy": ("pool_size", "max_overflow", "use_lifo", "pre_ping", "recycle"),
    "psycopg": ("min_size", "max_size", "max_waiting", "max_lifetime"),
}

#: How each library's pool is called on the dashboard.
LIBRARY_LABELS = {
    "peewee": "peewee PooledDatabase",
    "sqlalchemy": "SQLAlchemy QueuePool",
    "psycopg": "psycopg_pool ConnectionPool",
}


def pool_limit(name: str, values: Any) -> int:
    """The most connections library ``name``'s pool may hold with ``values`` (an object with the settings)."""
    if name == "sqlalchemy":
        return int(values.pool_size + values.max_overflow)
    if name == "psycopg":
        return int(values.max_size)
    return int(values.max_connections)


def build_pool(settings: DashboardSettings, url: str) -> Any:
    """A fresh instrumented pool of ``settings.library`` on ``url`` (a ``+pool`` URL) with its settings."""
    if settings.library == "peewee":
        from ..urls import connect

        return connect(url, **settings.pool_settings())
    from ..pools.factory import build

    return build(settings.library, url, **settings.pool_settings())


def close_pool(pool: Any) -> None:
    """Close a pool of any library with its connections (see :func:`poolviz.pools.factory.close`)."""
    from ..pools.factory import close

    close(pool)


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
    if name == "library":
        return library(value)
    if name in ("use_lifo", "pre_ping"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value
    if name in ("pool_size", "max_size"):
        return checks.count(name, value)
    if name in ("max_overflow", "min_size", "max_waiting"):
        if not isinstance(value, bool) and value in (0, "0"):
            return 0
        try:
            return checks.count(name, value)
        except ValueError:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}") from None
    if name == "recycle":
        seconds = checks.seconds(name, value, none_allowed=True)
        return None if seconds == 0 else seconds  # 0: never, as SQLAlchemy's -1
    if name == "max_lifetime":
        return checks.seconds(name, value, positive=True)
    if name == "duration":
        return checks.seconds(name, value, positive=True)
    if name in WORKLOAD_FIELDS and name != "requests":
        return WorkloadSpec.check(name, value)
    raise ValueError(f"unknown setting {name!r}; the dashboard knows {', '.join(SETTING_NAMES)}")


BACKEND_LABELS = {"sqlite": "SQLite (temp file)", "mysql": "MariaDB", "postgresql": "PostgreSQL"}

HELP = (
    "<details><summary>What the controls mean</summary><ul>"
    "<li><b>pool library</b>: peewee's pool, SQLAlchemy's QueuePool or psycopg_pool's ConnectionPool "
    "(PostgreSQL only); only the chosen library's own settings are shown.</li>"
    "<li><b>max_connections</b> (peewee): the most connections the pool keeps open. Changing it during a run "
    "resizes the running pool. 0 is refused: peewee would read it as no limit at all.</li>"
    "<li><b>pool_size / max_overflow</b> (SQLAlchemy): connections kept, and how many more may be opened "
    "for a burst (closed again on return). <b>use_lifo</b> hands out the connection returned last; "
    "<b>pre_ping</b> tests each one at checkout; <b>recycle</b> replaces connections older than that "
    "(0 = never).</li>"
    "<li><b>min_size / max_size</b> (psycopg_pool): connections opened in the background and kept, and the "
    "most there may be. <b>max_waiting</b>: callers allowed to queue (0 = no limit); "
    "<b>max_lifetime</b>: seconds before a connection is replaced.</li>"
    "<li><b>workers</b>: threads that each make requests back to back.</li>"
    "<li><b>hold / think</b>: mean milliseconds a request keeps its connection, and a worker pauses "
    "between requests (drawn from the distribution).</li>"
    "<li><b>timeout</b>: seconds a request waits for a free connection before it fails; with peewee "
    "<b>0 = wait forever</b>, with SQLAlchemy and psycopg_pool 0 fails at once. Tick <b>fail at once</b> "
    "for peewee's <code>timeout=None</code>: a full pool raises at once.</li>"
    "<li><b>stale_timeout</b> (peewee): seconds after which a connection is closed when next checked out "
    "or in; 0 = never.</li>"
    "<li><b>run length</b>: seconds the workload runs (Stop ends it sooner).</li>"
    "</ul>Settings other than peewee's max_connections apply from the next run. Hover a bar for its "
    "connection, thread, hold and wait; pause freezes the picture, not the run.</details>"
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
