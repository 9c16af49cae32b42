"""The server's own view: its connection counts, sampled a few times a second while a run goes.

A pool only knows its own connections; the server counts everybody's. A
:class:`ServerSampler` opens one plain (unpooled) connection of its own and,
every ``1 / hz`` seconds, asks the server how many sessions the run's user
holds on the run's database:

* PostgreSQL: ``pg_stat_activity`` by ``state`` (``active``, ``idle``,
  ``idle in transaction``), client backends only, its own session left out;
  the sessions pgbouncer opened (``application_name`` ``poolviz-pgbouncer``)
  are counted apart, in ``pgbouncer``;
* MariaDB/MySQL: the processlist of the run's user (``Command`` ``Sleep``
  counts as idle), plus the global ``Threads_connected``,
  ``Max_used_connections`` and ``Connection_errors_max_connections``.

Each sample is a dict with the keys of :data:`SAMPLE_COLUMNS` (missing ones
empty), ``t`` on the clock of the event log given as ``clock`` (so samples
line up with events), and :meth:`ServerSampler.save` writes them as CSV
beside a trace (``server.csv``).
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import checks
from ..backends import (
    MYSQL_PROCESSLIST_SQL,
    MYSQL_STATUS_SQL,
    PG_ACTIVITY_SQL,
    PLAIN_CLASSES,
    SERVER_BACKENDS,
    backend_of_url,
)
from ..credentials import mask_text, mask_url

logger = logging.getLogger("poolviz.servers")

SAMPLE_COLUMNS = (
    "t",
    "user_connections",
    "active",
    "idle",
    "idle_in_transaction",
    "threads_connected",
    "max_used_connections",
    "errors_max_connections",
    "pgbouncer",
)
#: The ``application_name`` of the server connections pgbouncer opens (servers/pgbouncer/pgbouncer.ini).
PGBOUNCER_APPLICATION = "poolviz-pgbouncer"
DEFAULT_HZ = 5.0


def _plain_database(url: str) -> Any:
    """A plain peewee database for ``url`` (its ``+pool`` part dropped): one connection, no pool."""
    from ..urls import url_params

    backend = backend_of_url(url)
    # read as poolviz.connect reads it, under peewee's plain scheme (it knows mysql://, not mariadb://)
    params = url_params(urlparse(url)._replace(scheme=backend))
    database = params.pop("database")
    # thread_safe=False: one connection shared by every thread (peewee's default is one per thread), so the
    # sampling thread uses the connection start() opened instead of opening, and leaving behind, a second.
    return PLAIN_CLASSES[backend](database, connect_timeout=5, thread_safe=False, **params)


class ServerSampler:
    """Samples the server's connection counts for ``user`` on ``database`` in a thread, ``hz`` times a second.

    ``url`` is how the sampler connects (a user allowed to see other
    sessions: PostgreSQL's ``pg_read_all_stats`` or the owner, MariaDB's
    ``PROCESS``); ``user`` and ``database`` name the sessions counted
    (default: those of ``url``). ``clock`` is the event log whose ``t`` the
    samples use. Use it as a context manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        url: str,
        user: str | None = None,
        database: str | None = None,
        hz: float = DEFAULT_HZ,
        clock: Any = None,
    ) -> None:
        hz = checks.number("hz", hz, positive=True)
        if hz > 50:
            raise ValueError(f"hz must be at most 50 (a sample is a query on the server), got {hz!r}")
        parsed = urlparse(url)
        self.backend = backend_of_url(url)
        if self.backend not in SERVER_BACKENDS:
            raise ValueError(f"the server view needs a MariaDB/MySQL or PostgreSQL URL, got {mask_url(url)!r}")
        self.url = url
        self.user = user or parsed.username or ""
        self.database = database or parsed.path.lstrip("/")
        self.period = 1.0 / hz
        self.t0 = clock.t0 if clock is not None else time.perf_counter()
        self.samples: list[dict[str, Any]] = []
        self.errors = 0
        self._db: Any = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="poolviz-server-sampler", daemon=True)

    def start(self) -> ServerSampler:
        """Connect (raising a clear error if the server refuses) and start sampling; returns self."""
        self._db = _plain_database(self.url)
        try:
            self._db.connect()
        except Exception as exc:
            text = mask_text(" ".join(str(exc).split()))
            raise ConnectionError(
                f"the server view cannot connect to {mask_url(self.url)!r}: {type(exc).__name__}: {text}"
            ) from None
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        """Take a last sample, stop the thread, close the connection; returns the samples."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._db is not None and not self._db.is_closed():
            try:
                self.sample()
            finally:
                self._db.close()
        return self.samples

    def align(self, clock: Any) -> ServerSampler:
        """Put the samples (taken and to come) on ``clock``'s time: an event log made after sampling started.

        Start the sampler before a run to see the run's first connections,
        then align it with the run's log; returns self.
        """
        with self._lock:
            shift = self.t0 - clock.t0
            for row in self.samples:
                row["t"] += shift
            self.t0 = clock.t0
        return self

    def __enter__(self) -> ServerSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.sample()
            except Exception as exc:  # a failed sample is counted and logged; sampling goes on
                self.errors += 1
                logger.warning("poolviz server view: a sample failed: %s", mask_text(str(exc)))

    def sample(self) -> dict[str, Any]:
        """Take one sample now, append it to :attr:`samples` and return it."""
        with self._lock:
            row: dict[str, Any] = dict.fromkeys(SAMPLE_COLUMNS, "")
            row["t"] = time.perf_counter() - self.t0
            if self.backend == "postgresql":
                self._count_postgres(row)
            else:
                self._count_mysql(row)
            self.samples.append(row)
            return row

    def _count_postgres(self, row: dict[str, Any]) -> None:
        params = (PGBOUNCER_APPLICATION, self.user, self.database)
        rows = self._db.execute_sql(PG_ACTIVITY_SQL, params).fetchall()
        row["pgbouncer"] = int(sum(n for _state, bouncer, n in rows if bouncer))
        states: dict[str, int] = {}
        for state, bouncer, n in rows:
            if not bouncer:
                states[state] = states.get(state, 0) + int(n)
        row["active"] = int(states.get("active", 0))
        row["idle"] = int(states.get("idle", 0))
        row["idle_in_transaction"] = int(states.get("idle in transaction", 0))
        row["user_connections"] = int(sum(states.values()))

    def _count_mysql(self, row: dict[str, Any]) -> None:
        commands = dict(self._db.execute_sql(MYSQL_PROCESSLIST_SQL, (self.user, self.database)).fetchall())
        row["idle"] = int(commands.get("Sleep", 0))
        row["user_connections"] = int(sum(commands.values()))
        row["active"] = row["user_connections"] - row["idle"]
        status = {k.lower(): int(v) for k, v in self._db.execute_sql(MYSQL_STATUS_SQL).fetchall()}
        row["threads_connected"] = status.get("threads_connected", "")
        row["max_used_connections"] = status.get("max_used_connections", "")
        row["errors_max_connections"] = status.get("connection_errors_max_connections", "")

    def save(self, path: str | Path) -> Path:
        """Write the samples as CSV (a header of :data:`SAMPLE_COLUMNS`, one row per sample); returns ``path``."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=SAMPLE_COLUMNS)
            writer.writeheader()
            for row in self.samples:
                writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        return path


def server_count(url: str, user: str | None = None, database: str | None = None) -> int:
    """One reading of how many sessions ``user`` holds on ``database`` (see :class:`ServerSampler`)."""
    sampler = ServerSampler(url, user, database)
    sampler._db = _plain_database(url)
    try:
        return int(sampler.sample()["user_connections"])
    finally:
        sampler._db.close()
