"""The dedicated roles can be made wherever the server tests run, including CI's fallback MariaDB user."""

from __future__ import annotations

from urllib.parse import urlparse

from conftest import mysql_fallback_sql

import poolviz
from poolviz import servers
from poolviz.servers import roles

PROBE = "poolviz_grants_probe"


def test_the_fallback_ci_user_can_make_both_roles(mysql_url: str) -> None:
    """A user with the fallback grants (CI's when root is refused over TCP) runs ensure_role for both roles."""
    on_fallback = urlparse(mysql_url).username == "poolviz"
    admin_url = mysql_url
    root = None
    if not on_fallback:
        root = poolviz.connect(mysql_url, max_connections=1)
        with root.connection_context():
            for statement in filter(str.strip, mysql_fallback_sql(PROBE).split(";")):
                root.execute_sql(statement.replace("%", "%%"))
        admin_url = roles.role_url(mysql_url, roles.APP_ROLE).replace(roles.APP_ROLE, PROBE)
    try:
        for role, limit in ((roles.APP_ROLE, None), (roles.LIMITED_ROLE, 3)):
            assert servers.reachable(roles.ensure_role(admin_url, role, connection_limit=limit)) is None
    finally:
        if root is not None:
            with root.connection_context():
                for host in ("127.0.0.1", "localhost"):
                    root.execute_sql(f"DROP USER IF EXISTS '{PROBE}'@'{host}'")
            root.close_all()


def test_an_asyncio_url_is_reachable_when_its_server_answers(server_url: str) -> None:
    """reachable() asks the server behind a +asyncpool URL too (Compare used to report it as not answering)."""
    assert servers.reachable(server_url.replace("+pool://", "+asyncpool://", 1)) is None
