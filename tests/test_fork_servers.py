"""A pool opened before fork(), pinned on the real servers (notebook 11's fork claims)."""

from __future__ import annotations

from typing import Any

import pytest

from poolviz.servers.forking import child_session, session_id


def parent_session(db: Any) -> int:
    with db.connection_context():
        return session_id(db)


@pytest.mark.timeout(60)
def test_a_child_forked_after_the_pool_opened_uses_the_parents_server_session(server_pool: Any) -> None:
    """The child's inherited pool hands it the parent's idle connection: the same server session id."""
    parent = parent_session(server_pool)
    assert child_session(server_pool) == parent
    assert parent_session(server_pool) == parent


@pytest.mark.timeout(60)
def test_a_child_closing_the_inherited_pool_ends_the_parents_session(server_pool: Any) -> None:
    """The child's close_all() ends the shared session: the parent's pool finds it broken and opens another."""
    parent = parent_session(server_pool)
    assert child_session(server_pool, close_all=True) == parent
    after = parent_session(server_pool)
    assert after != parent
    closes = server_pool.events.to_frame().query("kind == 'close'")
    assert closes["reason"].tolist() == ["broken"]


@pytest.mark.timeout(60)
def test_dispose_in_the_child_gives_it_a_session_of_its_own(server_pool: Any) -> None:
    """After dispose() the child opens its own connection, and its close_all() leaves the parent's session alone."""
    parent = parent_session(server_pool)
    assert child_session(server_pool, dispose=True, close_all=True) != parent
    assert parent_session(server_pool) == parent
    assert (server_pool.events.to_frame()["kind"] == "close").sum() == 0
