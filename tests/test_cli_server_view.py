"""The server's own view during a run: server.csv from poolviz run with or without --processes, no self-counting."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from poolviz.cli import main
from poolviz.servers import roles
from poolviz.servers.view import SAMPLE_COLUMNS, ServerSampler
from poolviz.testing import wait_until


@pytest.mark.timeout(60)
def test_run_on_a_server_without_processes_writes_server_csv(tmp_path: Path, pg_url: str) -> None:
    """A threaded run on PostgreSQL samples the server during the run: server.csv sees the pool's 2 sessions."""
    url = roles.ensure_role(pg_url, roles.APP_ROLE)
    out = tmp_path / "out"
    args = ["run", "--url", url, "--workers", "2", "--requests", "15", "--hold-ms", "30"]
    assert main([*args, "--max-connections", "2", "--out", str(out), "--quiet"]) == 0
    with (out / "server.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == SAMPLE_COLUMNS and len(rows) >= 3
    assert max(int(r["user_connections"]) for r in rows) == 2


def test_run_on_sqlite_writes_no_server_csv(tmp_path: Path) -> None:
    """SQLite has no server to ask: no server.csv."""
    out = tmp_path / "out"
    assert main(["run", "--workers", "1", "--requests", "2", "--hold-ms", "1", "--out", str(out), "--quiet"]) == 0
    assert (out / "events.csv").is_file() and not (out / "server.csv").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["mysql_url", "pg_url"])
def test_a_sampler_logged_in_as_the_counted_user_does_not_count_itself(
    server: str, request: pytest.FixtureRequest
) -> None:
    """Regression: the sampling thread reuses start()'s connection (it once opened a second one and counted it)."""
    url = roles.ensure_role(str(request.getfixturevalue(server)), roles.APP_ROLE)
    with ServerSampler(url, hz=20) as sampler:
        wait_until(lambda: len(sampler.samples) >= 4, what="four samples")
    assert {s["user_connections"] for s in sampler.samples} == {0}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.timeout(60)
def test_run_with_processes_samples_the_server_from_before_the_first_event(tmp_path: Path, pg_url: str) -> None:
    """Regression: with --processes the sampler starts before the workers, so server.csv begins at or before t=0."""
    url = roles.ensure_role(pg_url, roles.APP_ROLE)
    out = tmp_path / "out"
    args = ["run", "--url", url, "--processes", "2", "--workers", "2", "--requests", "3", "--hold-ms", "20"]
    assert main([*args, "--max-connections", "2", "--out", str(out), "--quiet"]) == 0
    samples, events = _rows(out / "server.csv"), _rows(out / "events.csv")
    assert float(samples[0]["t"]) <= 0.0 <= float(events[0]["t"])
    assert max(int(s["user_connections"]) for s in samples) == 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["mysql_url", "pg_url"])
def test_run_on_an_asyncpool_url_writes_server_csv(tmp_path: Path, server: str, request: pytest.FixtureRequest) -> None:
    """The asyncio route samples the server too: server.csv starts before the first event and sees the pool's 2."""
    url = roles.ensure_role(str(request.getfixturevalue(server)), roles.APP_ROLE).replace("+pool://", "+asyncpool://")
    out = tmp_path / "out"
    args = ["run", "--url", url, "--workers", "2", "--requests", "15", "--hold-ms", "30"]
    assert main([*args, "--max-connections", "2", "--out", str(out), "--quiet"]) == 0
    samples, events = _rows(out / "server.csv"), _rows(out / "events.csv")
    assert tuple(samples[0]) == SAMPLE_COLUMNS and len(samples) >= 3
    assert float(samples[0]["t"]) <= float(events[0]["t"])
    assert max(int(s["user_connections"]) for s in samples) == 2
