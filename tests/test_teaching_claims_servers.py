"""What notebooks 05 and 07 say about pools on a server, pinned on the real MariaDB and PostgreSQL.

Pinned elsewhere, not repeated here: a child's close_all() ending the parent's session and dispose()
in the child (tests/test_fork_servers.py), the ping at checkout replacing a connection the server
dropped and a held connection failing with "gone away" (tests/test_peewee_claims.py), asyncio
waiters served in arrival order (tests/test_aio_claims_servers.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import poolviz
from poolviz.servers.forking import child_session, session_id
from poolviz.testing import FakeClock


@pytest.mark.timeout(60)
def test_closing_the_pool_before_fork_gives_the_child_its_own_session_and_breaks_nothing(server_pool: Any) -> None:
    """close_all() in the parent before fork: the child opens a new session; the parent finds nothing dead."""
    with server_pool.connection_context():
        before = session_id(server_pool)
    server_pool.close_all()
    in_child = child_session(server_pool, close_all=True)
    with server_pool.connection_context():
        after = session_id(server_pool)
    assert in_child != before and after not in (before, in_child)
    reasons = server_pool.events.to_frame().query("kind == 'close'")["reason"].tolist()
    assert reasons == ["all"]


def session_values(db: Any, n: int) -> list[tuple[int, int]]:
    """Make the pool open n connections at once; each reports (server id, session wait_timeout)."""
    seen: list[tuple[int, int]] = []
    together = threading.Barrier(n, timeout=10)

    def look() -> None:
        with db.connection_context():
            row = db.execute_sql("SELECT CONNECTION_ID(), @@SESSION.wait_timeout").fetchone()
            seen.append((int(row[0]), int(row[1])))
            together.wait()

    threads = [threading.Thread(target=look, name=f"look-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not any(t.is_alive() for t in threads)
    return seen


@pytest.mark.timeout(60)
def test_init_command_runs_on_every_new_pooled_connection(mysql_url: str) -> None:
    """PyMySQL's init_command, passed through the pool, runs on each new connection: a per-connection hook."""
    db = poolviz.connect(mysql_url, max_connections=3, init_command="SET SESSION wait_timeout = 77")
    try:
        first = session_values(db, 3)
        assert len({sid for sid, _ in first}) == 3 and {value for _, value in first} == {77}
        db.close_all()
        with db.connection_context():
            sid, value, default = db.execute_sql(
                "SELECT CONNECTION_ID(), @@SESSION.wait_timeout, @@GLOBAL.wait_timeout"
            ).fetchone()
        assert sid not in {s for s, _ in first} and value == 77 and default != 77
    finally:
        db.close_all()


@pytest.mark.timeout(60)
def test_stale_timeout_below_wait_timeout_retires_the_connection_before_the_server_drops_it(
    mysql_url: str, clock: FakeClock
) -> None:
    """Idle between stale_timeout and the server's wait_timeout: the pool closes it as stale, never broken."""
    db = poolviz.connect(mysql_url, max_connections=2, stale_timeout=30, init_command="SET SESSION wait_timeout = 60")
    try:
        with db.connection_context():
            db.execute_sql("SELECT 1")
        clock.advance(45)  # the pool's clock: past stale_timeout; the server's session is seconds old
        with db.connection_context():
            assert db.execute_sql("SELECT @@SESSION.wait_timeout").fetchone()[0] == 60
        closes = db.events.to_frame().query("kind == 'close'")["reason"].tolist()
        assert closes == ["stale"]
    finally:
        db.close_all()
