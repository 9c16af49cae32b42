"""The compiled busy path (poolviz.pools._busypath) does what the Python beside it does, and is there when it must be.

Each library's scripted run (tests/busypath_scenarios.py) is made twice, in
fresh processes: with the extension, and with ``POOLVIZ_PURE_PYTHON=1``. The
events must be the same, but for the name of psycopg_pool's background worker
that opened a replacement (either of its workers may). The Python alone must
also pass the pool libraries' own specifications (run here in a subprocess).
"""

from __future__ import annotations

import asyncio
import collections.abc
import json
import linecache
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from poolviz.pools.busypath import compiled
from poolviz.testing import wait_until, wait_until_async

HERE = Path(__file__).parent
ROOT = HERE.parent


def run_scenario(name: str, url: str, *, pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "POOLVIZ_PURE_PYTHON"}
    if pure:
        env["POOLVIZ_PURE_PYTHON"] = "1"
    result = subprocess.run(
        [sys.executable, str(HERE / "busypath_scenarios.py"), name, url],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    run: dict[str, Any] = json.loads(result.stdout)
    for event in run["events"]:
        event[2] = re.sub(r"^pool-\d+-worker-\d+$", "pool-worker", event[2])
    return run


def requires_compiled() -> None:
    if compiled is None:
        pytest.skip("poolviz.pools._busypath was not built here (no C compiler?): only the Python path runs")


def test_the_extension_is_built_where_it_is_required() -> None:
    """CI sets POOLVIZ_REQUIRE_COMPILED: a set-up that silently fell back to the Python must fail there."""
    if not os.environ.get("POOLVIZ_REQUIRE_COMPILED"):
        pytest.skip("POOLVIZ_REQUIRE_COMPILED is not set")
    assert compiled is not None, "poolviz.pools._busypath is missing: did `pip install -e .` find a C compiler?"
    if sys.version_info[:2] in ((3, 11), (3, 12)):
        assert compiled.RLOCK_LAYOUT_KNOWN, "threading.RLock's layout was not the one the busy path reads"


@pytest.mark.parametrize("scenario", ["psycopg", "psycopg-async"])
def test_psycopg_pools_record_the_same_events_compiled_or_not(scenario: str, pg_url: str) -> None:
    requires_compiled()
    from poolviz.pools.psycopg.testing import libpq_url

    fast = run_scenario(scenario, libpq_url(pg_url), pure=False)
    python = run_scenario(scenario, libpq_url(pg_url), pure=True)
    assert (fast["compiled"], python["compiled"]) == (True, False)
    assert len(fast["events"]) >= 19
    assert fast["events"] == python["events"]


@pytest.mark.parametrize("scenario", ["sqlalchemy", "sqlalchemy-async"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sqlalchemy_pools_record_the_same_events_compiled_or_not(
    scenario: str, backend: str, tmp_path: Path, request: Any
) -> None:
    requires_compiled()
    asyncio_engine = scenario.endswith("-async")
    if backend == "sqlite":
        url = f"sqlite{'+aiosqlite' if asyncio_engine else ''}:///{tmp_path / 'scenario.db'}"
    else:
        from poolviz.urls import sqlalchemy_url

        url = sqlalchemy_url(request.getfixturevalue("pg_url"), asyncio=asyncio_engine)
    fast = run_scenario(scenario, url, pure=False)
    python = run_scenario(scenario, url, pure=True)
    assert (fast["compiled"], python["compiled"]) == (True, False)
    assert len(fast["events"]) >= 20
    assert fast["events"] == python["events"]


@pytest.mark.slow
def test_the_python_path_alone_passes_the_pool_specifications() -> None:
    """The fallback is not a second-class path: the libraries' own test files pass on it."""
    env = dict(os.environ, POOLVIZ_PURE_PYTHON="1")
    files = [
        "tests/test_sqlalchemy_pools.py",
        "tests/test_sqlalchemy_properties.py",
        "tests/test_psycopg_events.py",
        "tests/test_psycopg_parity.py",
        "tests/test_psycopg_asyncio.py",
        "tests/test_sites.py",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_an_asyncio_pool_s_methods_are_coroutines_to_asyncio(pg_url: str) -> None:
    """create_task(), wait_for(), cancel() and close() take the compiled methods' Steps as they take coroutines."""
    requires_compiled()
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    import poolviz
    from poolviz.pools.psycopg.testing import libpq_url

    async def run() -> list[str]:
        pool = AsyncConnectionPool(libpq_url(pg_url), min_size=1, max_size=1, open=False, timeout=5)
        await pool.open()
        await pool.wait()
        poolviz.instrument(pool)
        step = pool.getconn()
        assert isinstance(step, collections.abc.Coroutine) and asyncio.iscoroutine(step)
        step.close()  # never started: psycopg_pool's coroutine is closed, nothing recorded
        conn = await asyncio.create_task(pool.getconn(), name="taker")
        waiter = asyncio.create_task(pool.getconn(), name="cancelled")
        await wait_until_async(lambda: pool.get_stats().get("requests_waiting") == 1, what="the waiter queued")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(PoolTimeout):
            await asyncio.wait_for(pool.getconn(timeout=0.05), 5)
        await pool.putconn(conn)
        again = await asyncio.wait_for(pool.getconn(), 5)
        await pool.putconn(again)
        stats = pool.get_stats()
        kinds = [e.kind for e in poolviz.events_of(pool).snapshot()]
        await pool.close()
        assert stats["pool_available"] == 1
        return kinds

    assert asyncio.run(run()) == ["checkout", "wait", "timeout", "wait", "timeout", "checkin", "checkout", "checkin"]


def in_add_to_pool(thread: threading.Thread) -> bool:
    """Whether ``thread`` is calling psycopg_pool's ``_add_to_pool`` (from ``_return_connection``) now."""
    frame = sys._current_frames().get(thread.ident or 0)
    if frame is None or frame.f_code.co_name != "_return_connection":
        return False
    return "_add_to_pool" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def test_a_check_in_waits_for_a_pool_lock_another_thread_holds(pg_url: str) -> None:
    """The compiled check-in takes psycopg_pool's lock on its fields only when free; held elsewhere, it waits."""
    requires_compiled()
    from psycopg_pool import ConnectionPool

    import poolviz
    from poolviz.pools.psycopg.testing import libpq_url, sequence_problems

    pool = ConnectionPool(libpq_url(pg_url), min_size=1, max_size=1, open=True, timeout=5)
    try:
        pool.wait()
        poolviz.instrument(pool)
        conn = pool.getconn()
        returned = threading.Event()
        with pool._lock:
            thread = threading.Thread(target=lambda: (pool.putconn(conn), returned.set()))
            thread.start()
            # Its putconn reaches psycopg_pool's _add_to_pool call (ours, compiled), where the lock stops it.
            wait_until(lambda: in_add_to_pool(thread), what="the putconn at _add_to_pool")
            assert not returned.is_set()
            assert [e.kind for e in poolviz.events_of(pool).snapshot()] == ["checkout"]
        assert returned.wait(5)
        thread.join(5)
        assert pool._lock.acquire(blocking=False)  # free again, and reentrant as ever
        pool._lock.release()
        events = poolviz.events_of(pool).snapshot()
        assert [e.kind for e in events] == ["checkout", "checkin"]
        assert sequence_problems(events, adopted=1) == []
        assert pool.get_stats()["pool_available"] == 1
    finally:
        pool.close()
