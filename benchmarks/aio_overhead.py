"""Cost of poolviz on peewee's asyncio databases: plain against instrumented, side by side in one loop.

For each backend (SQLite always; MariaDB and PostgreSQL when they answer) a
plain ``playhouse.pwasyncio`` database and poolviz's instrumented one run in
interleaved rounds on the same event loop: ``aconnect()``+``aclose()`` cycles
(acquire and release through the driver's pool), and, on the servers, the
same with a ``SELECT 1`` in between. One task runs the cycles; the figure for
each is the median over rounds, and the ratio is instrumented / plain.

    .venv/bin/python benchmarks/aio_overhead.py [--cycles 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playhouse.pwasyncio import AsyncMySQLDatabase, AsyncPostgresqlDatabase, AsyncSqliteDatabase

from poolviz import servers
from poolviz.pools.peewee_asyncio import (
    InstrumentedAsyncMySQLDatabase,
    InstrumentedAsyncPostgresqlDatabase,
    InstrumentedAsyncSqliteDatabase,
)

POOL_SIZE = 4


async def cycles(db: Any, count: int, query: bool) -> float:
    """Seconds per acquire+release (with a SELECT 1 when ``query``)."""
    started = time.perf_counter()
    for _ in range(count):
        await db.aconnect()
        if query:
            await db.aexecute_sql("SELECT 1")
        await db.aclose()
    return (time.perf_counter() - started) / count


async def compare(name: str, plain: Any, ours: Any, count: int, rounds: int, query: bool) -> None:
    await cycles(plain, 50, query)  # create both pools and warm up
    await cycles(ours, 50, query)
    base: list[float] = []
    inst: list[float] = []
    for _ in range(rounds):
        base.append(await cycles(plain, count, query))
        inst.append(await cycles(ours, count, query))
        ours.events.clear()
    b, i = statistics.median(base), statistics.median(inst)
    what = "acquire+SELECT 1+release" if query else "acquire+release"
    print(f"{name:<11} {what:<25} plain {b * 1e6:8.1f} µs  poolviz {i * 1e6:8.1f} µs  ratio {i / b:5.2f}x")
    await plain.close_pool()
    await ours.close_pool()


def server_args(url: str | None) -> dict[str, Any] | None:
    if url is None or servers.reachable(url):
        return None
    from urllib.parse import urlparse

    parsed = urlparse(url)
    args: dict[str, Any] = {"host": parsed.hostname, "port": parsed.port, "user": parsed.username}
    if parsed.password:
        args["password"] = parsed.password
    return {"database": parsed.path.lstrip("/"), **args}


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        await compare(
            "SQLite",
            AsyncSqliteDatabase(path, pool_size=POOL_SIZE),
            InstrumentedAsyncSqliteDatabase(path, pool_size=POOL_SIZE),
            count,
            rounds,
            False,
        )
    for name, url, plain_cls, ours_cls in (
        ("MariaDB", servers.mysql_url(), AsyncMySQLDatabase, InstrumentedAsyncMySQLDatabase),
        ("PostgreSQL", servers.postgres_url(), AsyncPostgresqlDatabase, InstrumentedAsyncPostgresqlDatabase),
    ):
        params = server_args(url)
        if params is None:
            print(f"{name:<11} skipped: server not reachable")
            continue
        database = params.pop("database")
        for query in (False, True):
            plain = plain_cls(database, pool_size=POOL_SIZE, pool_min_size=POOL_SIZE, **params)
            ours = ours_cls(database, pool_size=POOL_SIZE, pool_min_size=POOL_SIZE, **params)
            await compare(name, plain, ours, count // (4 if query else 1), rounds, query)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.cycles, options.rounds))
