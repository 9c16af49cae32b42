"""Notebook 08's claims about a pool-size sweep, pinned on SQLite (client-side holds, no server needed).

Claim 3 as notebook 08 now writes it: with workers that pause between
requests, throughput climbs almost in step with the pool size while the pool
is smaller than what the workers ask for, then levels off; the mean, p99 and
longest waits fall as the pool grows, to zero with a connection per worker.
And the reason the sweep reports the longest wait and checkouts per worker:
with no pause (peewee's barging, notebook 04) the p95 reads 0 while a worker
waits for most of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from poolviz.workload import sweep

# Races of hundreds of requests each: make test runs them, make check leaves them out.
pytestmark = pytest.mark.slow

WORKERS = 8
HOLD = "exp:0.02"
THINK = "exp:0.02"  # the same mean as the hold: the workers ask for about 4 connections on average


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, float]]:
    """Notebook 08's sweep, shorter: 8 workers pausing between requests, pools of 1, 2, 4 and 8, 1.5 s each."""
    url = f"sqlite+pool:///{tmp_path_factory.mktemp('paced') / 'sweep.db'}"
    table = sweep(url, [1, 2, 4, 8], WORKERS, None, HOLD, think=THINK, duration=1.5, timeout=60, seed=8)
    return table.set_index("max_connections").to_dict("index")


def test_throughput_climbs_almost_in_step_while_the_pool_is_below_demand(paced: dict[int, dict[str, float]]) -> None:
    """From 1 to 2 connections, below the workers' demand, throughput grows at least 1.6x (in step: 2x)."""
    assert paced[2]["throughput_rps"] >= 1.6 * paced[1]["throughput_rps"]


def test_throughput_levels_off_past_demand(paced: dict[int, dict[str, float]]) -> None:
    """From 4 to 8 connections, past the demand, throughput grows by less than half and utilisation falls."""
    assert paced[8]["throughput_rps"] < 1.5 * paced[4]["throughput_rps"]
    assert paced[8]["utilisation"] < paced[4]["utilisation"]
    assert paced[8]["utilisation"] < 0.8


def test_the_waits_fall_as_the_pool_grows(paced: dict[int, dict[str, float]]) -> None:
    """Mean, p99 and longest wait each shrink from 1 to 2 to 4 connections, and are 0 with a connection per worker."""
    for column in ("wait_mean_s", "wait_p99_s", "wait_max_s"):
        assert paced[1][column] > paced[2][column] > paced[4][column], column
        assert paced[8][column] == 0, column


def test_with_pauses_every_worker_is_served(paced: dict[int, dict[str, float]]) -> None:
    """Every worker made requests at every pool size: the fewest per worker is a fair fraction of the most."""
    for row in paced.values():
        assert row["checkouts_per_worker_min"] >= 0.3 * row["checkouts_per_worker_max"]


def test_with_no_pause_the_p95_hides_a_worker_that_waits_most_of_the_run(tmp_path: Path) -> None:
    """Think 0, pool of 4: p95 reads 0 while the longest wait is over half the run and a worker got at most 2."""
    run_s = 1.5
    table = sweep(
        f"sqlite+pool:///{tmp_path / 'eager.db'}", [4], WORKERS, None, HOLD, duration=run_s, timeout=60, seed=8
    )
    row = table.iloc[0]
    assert row["wait_p95_s"] == 0
    assert row["wait_max_s"] > 0.5 * run_s
    assert row["wait_mean_s"] < 0.2 * row["wait_max_s"]
    assert row["checkouts_per_worker_min"] <= 2
    assert row["checkouts_per_worker_max"] >= 10 * max(row["checkouts_per_worker_min"], 1)
