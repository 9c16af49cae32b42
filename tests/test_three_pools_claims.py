"""Notebook 04's comparison row for SQLAlchemy's QueuePool, pinned on SQLite: it barges as peewee's pool does.

The race is notebook 04's (six workers, two connections, 5 ms holds, no pause)
on a SQLite file, stopped after a number of requests (the workload's progress
callback), never after a sleep. psycopg_pool's row (PostgreSQL only) is pinned
in ``test_three_pools_claims_servers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import race_until

from poolviz.data import analysis
from poolviz.pools import factory

WORKERS = 6
POOL = 2
REQUESTS = 300
NAMES = [f"worker-{i}" for i in range(WORKERS)]

# Races of hundreds of requests each: make test runs them, make check leaves them out.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def test_sqlalchemy_queuepool_on_sqlite_lets_two_workers_take_nearly_everything_with_no_think_time(
    tmp_path: Path, no_new_threads: None
) -> None:
    """Think 0 on SQLite: QueuePool's two busiest of six workers make at least 80% of the checkouts (fair: 33%)."""
    engine = factory.build("sqlalchemy", f"sqlite:///{tmp_path / 'race.db'}", pool_size=POOL, max_overflow=0)
    try:
        result = race_until(engine, WORKERS, REQUESTS, think=0.0, seed=2)
    finally:
        engine.dispose()
    assert not result.requests_failed, result.summary()["errors"]
    table = analysis.fairness(result.events, threads=NAMES)
    total = table["checkouts"].sum()
    assert table["checkouts"].nlargest(POOL).sum() >= 0.8 * total
    stats = analysis.fairness_stats(result.events, threads=NAMES)
    assert stats["checkouts_median"] <= 0.1 * total / WORKERS
