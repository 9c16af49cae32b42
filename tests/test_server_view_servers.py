"""The server's own view, per-user limits and pgbouncer, pinned on the real servers (notebook 11's claims)."""

from __future__ import annotations

import time
from typing import Any

import peewee
import psycopg2
import pytest

import poolviz
from poolviz import servers
from poolviz.backends import backend_of_url
from poolviz.servers import pgbouncer, roles
from poolviz.servers.view import PGBOUNCER_APPLICATION, ServerSampler, server_count
from poolviz.testing import wait_until
from poolviz.workload.processes import run_processes, start_processes


@pytest.fixture(scope="session")
def bouncer_url(pg_url: str) -> str:
    """pgbouncer's URL, or skip (fail when servers are required) with how to start it."""
    try:
        return pgbouncer.check()
    except ConnectionError as exc:
        if servers.servers_required():
            pytest.fail(f"{exc} (POOLVIZ_REQUIRE_SERVERS or CI is set: pgbouncer is required)")
        pytest.skip(str(exc))


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_server_count_equals_the_sum_of_the_pools_once_they_settle(server_url: str) -> None:
    """After a 2-process run, the server's sessions for the run's role equal the pools' open connections."""
    url = roles.ensure_role(server_url, roles.APP_ROLE)
    with ServerSampler(server_url, user=roles.APP_ROLE, hz=10) as sampler:
        run = start_processes(url, 2, 3, 3, 0.02, max_connections=3)
        result = run.wait(60, close=False)
        last = result.events.iloc[-1]
        held = last.in_use + last.idle
        assert held > 0
        wait_until(lambda: sampler.sample()["user_connections"] == held, what=f"the server counting {held} sessions")
        assert server_count(server_url, user=roles.APP_ROLE) == held
        run.close()
    wait_until(lambda: server_count(server_url, user=roles.APP_ROLE) == 0, what="the server counting no session")
    assert max(s["user_connections"] for s in sampler.samples) == held
    assert sampler.errors == 0


LIMIT_CODES = {"mysql": "1226", "postgresql": "53300"}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_breaking_the_sizing_rule_hits_the_per_user_limit_and_respecting_it_does_not(server_url: str) -> None:
    """2 processes x pool 3 on a role limited to 4 sessions: error events with the server's code; 2 x 2: none."""
    url = roles.ensure_role(server_url, roles.LIMITED_ROLE, connection_limit=4)
    broken = run_processes(url, 2, 3, 1, 0.3, max_connections=3, timeout=5, wait_timeout=60)
    errors = broken.events[broken.events["kind"] == "error"]
    assert len(errors) > 0 and broken.requests_failed > 0
    codes = {roles.limit_error(m).code for m in errors["message"]}  # type: ignore[union-attr]
    assert codes == {LIMIT_CODES[backend_of_url(server_url)]}
    assert "poolviz_limited:" not in " ".join(errors["message"])
    fits = run_processes(url, 2, 3, 1, 0.3, max_connections=2, timeout=5, wait_timeout=60)
    assert (fits.events["kind"] == "error").sum() == 0 and fits.requests_failed == 0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_pgbouncer_bounds_the_server_connections_the_clients_open(pg_url: str, bouncer_url: str) -> None:
    """3 processes x pool 5 through pgbouncer open 15 client connections but at most 10 on the server."""
    direct = roles.ensure_role(pg_url, roles.APP_ROLE)
    through = roles.role_url(bouncer_url, roles.APP_ROLE)
    with ServerSampler(pg_url, user=roles.APP_ROLE, hz=10) as sampler:
        run = start_processes(through, 3, 5, 2, 0.2, max_connections=5, timeout=20)
        result = run.wait(60, close=False)
        run.close()
    opened = int((result.events["kind"] == "connect").sum())
    peak = max(s["pgbouncer"] for s in sampler.samples)
    assert result.requests_failed == 0 and opened == 15
    assert 0 < peak <= 10 and max(s["user_connections"] for s in sampler.samples) == 0
    with ServerSampler(pg_url, user=roles.APP_ROLE, hz=10) as sampler:
        result = run_processes(direct, 3, 5, 2, 0.2, max_connections=5, timeout=20, wait_timeout=60)
    assert max(s["user_connections"] for s in sampler.samples) == 15


def _plain(url: str) -> Any:
    conn = psycopg2.connect(url.replace("postgresql+pool://", "postgresql://"))
    conn.autocommit = True
    return conn


@pytest.mark.timeout(60)
def test_session_state_leaks_between_clients_in_transaction_pooling(pg_url: str, bouncer_url: str) -> None:
    """Through pgbouncer (one server connection), a SET and a PREPARE by one client are seen by another; direct, not."""
    one = pgbouncer.with_database(bouncer_url, pgbouncer.ONE_CONNECTION_DB)
    a, b = _plain(one), _plain(one)
    try:
        with a.cursor() as cur:
            cur.execute("SET statement_timeout = '1234ms'")
            cur.execute("DEALLOCATE ALL")
            cur.execute("PREPARE poolviz_q AS SELECT 42")
        with b.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "1234ms"
            cur.execute("EXECUTE poolviz_q")
            assert cur.fetchone()[0] == 42
            cur.execute("RESET ALL")
            cur.execute("DEALLOCATE ALL")
    finally:
        a.close()
        b.close()
    a, b = _plain(pg_url), _plain(pg_url)
    try:
        with a.cursor() as cur:
            cur.execute("SET statement_timeout = '1234ms'")
        with b.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "0"
    finally:
        a.close()
        b.close()


def test_an_unreachable_pgbouncer_is_named_with_how_to_start_it() -> None:
    """pgbouncer.check on a closed port names the URL and the start script."""
    with pytest.raises(ConnectionError, match=r"pgbouncer at 'postgresql\+pool://postgres@127.0.0.1:1/test'.*start.sh"):
        pgbouncer.check("postgresql+pool://postgres@127.0.0.1:1/test")


@pytest.mark.timeout(30)
def test_a_connection_refused_by_a_per_user_limit_fails_at_once_without_waiting(server_url: str) -> None:
    """The server refuses a pool that is not full: the caller's error comes at once (not after timeout), logged."""
    url = roles.ensure_role(server_url, roles.LIMITED_ROLE, connection_limit=1)
    maintenance = poolviz.connect(url, max_connections=1)
    db = poolviz.connect(url, max_connections=2, timeout=10)
    try:
        maintenance.connect()  # the role's one session, taken
        started = time.perf_counter()
        with pytest.raises(peewee.OperationalError) as refused:
            db.connect()
        elapsed = time.perf_counter() - started
    finally:
        maintenance.close()
        maintenance.close_all()
        db.close_all()
    assert elapsed < 5.0, f"the refusal took {elapsed:.2f} s (the pool's timeout is 10 s)"
    code = LIMIT_CODES[backend_of_url(server_url)]
    assert getattr(roles.limit_error(str(refused.value)), "code", None) == code
    (error,) = [e for e in db.events if e.kind == "error"]
    assert getattr(roles.limit_error(error.message), "code", None) == code
    assert not [e for e in db.events if e.kind in ("wait", "timeout")]


@pytest.mark.timeout(30)
def test_pgbouncer_keeps_its_server_connections_open_after_the_clients_leave(pg_url: str, bouncer_url: str) -> None:
    """Two clients in transactions through pgbouncer, then gone: the 2 server sessions they used stay open, idle."""
    roles.ensure_role(pg_url, roles.APP_ROLE)
    through = roles.role_url(bouncer_url, roles.APP_ROLE)
    a, b = _plain(through), _plain(through)
    pids = set()
    for client in (a, b):
        client.autocommit = False  # each holds a transaction open, so each needs a server connection of its own
        with client.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.add(cur.fetchone()[0])
    for client in (a, b):
        client.commit()  # a client that leaves mid-transaction has its server connection closed, not kept
        client.close()
    assert len(pids) == 2

    def clients_gone() -> bool:
        (pool,) = [
            p for p in pgbouncer.show(bouncer_url, "POOLS") if (p["database"], p["user"]) == ("test", roles.APP_ROLE)
        ]
        return bool(pool["cl_active"] == pool["cl_waiting"] == pool["sv_active"] == 0)

    wait_until(clients_gone, what="pgbouncer seeing both clients gone")
    held = {s["remote_pid"]: s["state"] for s in pgbouncer.show(bouncer_url, "SERVERS")}
    assert {held.get(pid) for pid in pids} <= {"idle", "used"}  # "used": idle past server_check_delay
    admin = _plain(pg_url)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT pid, state, application_name FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),))
            assert sorted(cur.fetchall()) == sorted((pid, "idle", PGBOUNCER_APPLICATION) for pid in pids)
    finally:
        admin.close()


@pytest.mark.timeout(30)
def test_a_direct_session_cannot_run_another_sessions_prepared_statement(pg_url: str) -> None:
    """Direct to PostgreSQL, b cannot EXECUTE a's PREPARE (through pgbouncer's test_one it can: the test above)."""
    a, b = _plain(pg_url), _plain(pg_url)
    try:
        with a.cursor() as cur:
            cur.execute("PREPARE poolviz_q AS SELECT 42")
        with b.cursor() as cur, pytest.raises(psycopg2.errors.InvalidSqlStatementName, match='"poolviz_q" does not'):
            cur.execute("EXECUTE poolviz_q")
    finally:
        a.close()
        b.close()
