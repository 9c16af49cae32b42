"""What peewee 4's liveness check costs on every checkout, on MariaDB, PostgreSQL (psycopg2) and psycopg 3.

peewee 4 checks each idle connection before handing it out (``_is_closed``):
``ping(False)`` on MySQL/MariaDB, a ``SELECT 1`` round trip on PostgreSQL.
This times the acquire+release cycle (``db.connect(); db.close()``) of an
instrumented pool against the same pool class with ``_is_closed`` overridden
to ``return False``, side by side in one process, in interleaved rounds; the
figure for each is the median over rounds. The difference is the check's
cost. A third pool also skips the check-in test (``_can_reuse``), which on
MySQL with PyMySQL sends a ``ROLLBACK`` at every check-in, to show that cost
too.

    .venv/bin/python benchmarks/liveness_check.py [--cycles 2000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from poolviz import InstrumentedPooledMySQLDatabase, InstrumentedPooledPostgresqlDatabase, servers
from poolviz.urls import url_params


def without_liveness_check(cls: type) -> type:
    """``cls`` with peewee's checkout check switched off: every idle connection is trusted."""

    def _is_closed(self: Any, conn: Any) -> bool:
        return False

    return type(f"{cls.__name__}NoCheck", (cls,), {"_is_closed": _is_closed})


def without_any_check(cls: type) -> type:
    """``cls`` with both the checkout check and the check-in test (rollback if dirty) switched off."""

    def _can_reuse(self: Any, conn: Any) -> bool:
        return True

    return type(f"{cls.__name__}NoChecks", (without_liveness_check(cls),), {"_can_reuse": _can_reuse})


def pools(url: str, cls: type, **extra: Any) -> dict[str, Any]:
    """The three variants of ``cls`` for ``url``, each with one connection, warmed up."""
    params = url_params(urlparse(url))  # as poolviz.connect reads a URL
    database = params.pop("database")
    variants = {
        "peewee 4 default (checked)": cls,
        "no liveness check": without_liveness_check(cls),
        "no check, no check-in test": without_any_check(cls),
    }
    built = {name: klass(database, max_connections=1, **params, **extra) for name, klass in variants.items()}
    for db in built.values():
        with db.connection_context():
            db.execute_sql("SELECT 1")
    return built


def cycle_us(db: Any, cycles: int) -> float:
    """Microseconds per ``db.connect(); db.close()``, single-threaded."""
    connect, close = db.connect, db.close
    start = time.perf_counter()
    for _ in range(cycles):
        connect()
        close()
    return (time.perf_counter() - start) / cycles * 1e6


def round_trip_us(db: Any, cycles: int) -> float:
    """Microseconds per ``SELECT 1`` on a held connection: one round trip to the server, for reference."""
    with db.connection_context():
        cursor = db.connection().cursor()
        start = time.perf_counter()
        for _ in range(cycles):
            cursor.execute("SELECT 1")
            cursor.fetchall()
        return (time.perf_counter() - start) / cycles * 1e6


def measure(name: str, build: Callable[[], dict[str, Any]], cycles: int, rounds: int) -> None:
    try:
        variants = build()
    except Exception as exc:  # a missing server or driver: say so and go on to the next
        print(f"\n{name}: skipped ({type(exc).__name__}: {servers.db_error_text(exc)})")
        return
    samples: dict[str, list[float]] = {label: [] for label in variants}
    trips: list[float] = []
    try:
        for _ in range(rounds):
            for label, db in variants.items():
                samples[label].append(cycle_us(db, cycles))
            trips.append(round_trip_us(variants["no liveness check"], cycles))
    finally:
        for db in variants.values():
            db.close_all()
    medians = {label: statistics.median(values) for label, values in samples.items()}
    checked, unchecked = medians["peewee 4 default (checked)"], medians["no liveness check"]
    print(f"\n{name}: {cycles} cycles x {rounds} interleaved rounds, medians")
    for label, median in medians.items():
        print(f"  {label:28s} {median:8.1f} us/cycle  {median / unchecked:5.2f}x unchecked")
    print(f"  liveness check costs        {checked - unchecked:8.1f} us per checkout ({checked / unchecked:.2f}x)")
    print(f"  (one SELECT 1 round trip    {statistics.median(trips):8.1f} us on a held connection)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=2000, help="acquire+release cycles per round (default: 2000)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds; the median is reported (default: 9)")
    args = parser.parse_args()
    mysql, postgres = servers.mysql_url(), servers.postgres_url()
    measure(
        "MariaDB (PyMySQL, ping(False))",
        lambda: pools(mysql, InstrumentedPooledMySQLDatabase),
        args.cycles,
        args.rounds,
    )
    measure(
        "PostgreSQL (psycopg2, SELECT 1)",
        lambda: pools(postgres, InstrumentedPooledPostgresqlDatabase),
        args.cycles,
        args.rounds,
    )
    measure(
        "PostgreSQL (psycopg 3, SELECT 1)",
        lambda: pools(postgres, InstrumentedPooledPostgresqlDatabase, prefer_psycopg3=True),
        args.cycles,
        args.rounds,
    )


if __name__ == "__main__":
    main()
