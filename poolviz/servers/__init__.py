"""The lab around the pools: real servers, what they see, and what can go wrong with them.

``reachability`` (where the servers are and whether they answer), ``view``
(the server's own connection counts, sampled), ``pgbouncer`` (the server-side
pooler), ``roles`` (dedicated roles and connection limits), ``faults``
(connections killed on purpose) and ``forking`` (a pool inherited across
``fork()``). The SQL each server speaks for these is in
:mod:`poolviz.backends`, with the one way of telling which backend a
database or URL is. The names of ``reachability`` are re-exported here, so
``from poolviz import servers; servers.choose("postgresql")`` reads naturally.
"""

from __future__ import annotations

from .reachability import (
    DEFAULT_MYSQL_URL,
    DEFAULT_PG_URL,
    DEFAULT_PGBOUNCER_URL,
    DEFAULT_PORTS,
    Choice,
    choose,
    db_error_text,
    mysql_url,
    pgbouncer_url,
    postgres_url,
    reachable,
    servers_required,
)

__all__ = [
    "DEFAULT_MYSQL_URL",
    "DEFAULT_PGBOUNCER_URL",
    "DEFAULT_PG_URL",
    "DEFAULT_PORTS",
    "Choice",
    "choose",
    "db_error_text",
    "mysql_url",
    "pgbouncer_url",
    "postgres_url",
    "reachable",
    "servers_required",
]
