"""The three ways ``poolviz run`` runs a workload: threads, asyncio tasks (a ``+asyncpool`` URL), worker processes.

Each opens the pool from the command line's options, starts the server's view
(``server.csv`` on MariaDB/PostgreSQL), runs the workload until done or
Ctrl-C, and returns its :class:`~poolviz.workload.WorkloadResult`. The
workloads take plain values; only this module reads ``args``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..credentials import mask_url
from .pools import pool_url
from .values import UsageError


def check_url(args: argparse.Namespace) -> None:
    """Refuse a bad or unusable --url before anything is written: --out is created only after this."""
    from ..urls import ASYNC_SCHEMES

    if args.url is None:
        return
    scheme, _, rest = args.url.partition("://")
    if scheme.lower() in ASYNC_SCHEMES:
        from ..servers.reachability import reachable
        from ..urls import connect

        try:
            connect(args.url)  # reads the URL; an asyncio database connects only when first used
        except (ValueError, TypeError) as exc:
            raise UsageError(f"bad --url {mask_url(args.url)!r}: {exc}") from None
        # The same server and credentials through the threaded driver: a quick, loop-free check.
        reason = reachable(scheme.lower().replace("+asyncpool", "+pool") + "://" + rest)
        if reason is not None:
            raise UsageError(f"--url {mask_url(args.url)!r} is not usable: {reason}")
        return
    if args.pool == "peewee":
        open_pool(args.url, max_connections=1).close_all()
        return
    # Other libraries are checked through peewee's pool on the same server; the message shows the URL as given.
    try:
        open_pool(pool_url(args.url), max_connections=1).close_all()
    except UsageError as exc:
        raise UsageError(str(exc).replace(mask_url(pool_url(args.url)), mask_url(args.url))) from None


def open_pool(url: str, **kwargs: Any) -> Any:
    """An instrumented pool for ``url`` after checking its server answers, or a UsageError."""
    from ..servers.reachability import reachable
    from ..urls import connect

    try:
        db = connect(url, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --url {mask_url(url)!r}: {exc}") from None
    reason = reachable(url)
    if reason is not None:
        db.close_all()
        shown = mask_url(url)
        # The reason may name the URL already; say it once.
        raise UsageError(
            f"--url is not usable: {reason}" if shown in reason else f"--url {shown!r} is not usable: {reason}"
        )
    return db


def prepare_schema(url: str) -> None:
    """Create the User table through a throwaway pool, so the run's trace starts from an empty pool."""
    from ..workload import ensure_schema

    prep = open_pool(url, max_connections=1)
    try:
        ensure_schema(prep)
    except Exception as exc:  # a driver error here means the database cannot take the workload
        raise UsageError(f"cannot create the User table at {mask_url(url)!r}: {type(exc).__name__}: {exc}") from None
    finally:
        prep.close_all()


@contextmanager
def stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """Turn Ctrl-C into ``stop.set()`` for the block, so a run ends cleanly and still writes its files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        print("\npoolviz: stopping after the current requests…", file=sys.stderr)
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_workload(
    args: argparse.Namespace, url: str, hold: Any, think: Any, stop: threading.Event, progress: Any, out: Path
) -> Any:
    """Run ``poolviz run``'s workload on ``url`` the way its options ask; Ctrl-C sets ``stop``."""
    from ..urls import ASYNC_SCHEMES

    if url.split("://", 1)[0].lower() in ASYNC_SCHEMES:
        runner = run_tasks
    elif args.processes:
        runner = run_processes
    else:
        runner = run_threads
    with stop_on_interrupt(stop):
        return runner(args, url, hold, think, stop, progress, out)


@contextmanager
def server_view(url: str, out: Path, clock: Any = None) -> Iterator[Any]:
    """On a server, sample its own count of the run's sessions for the block and write ``out/server.csv``."""
    from ..servers.view import ServerSampler

    sampler = None if url.startswith("sqlite") else ServerSampler(url, clock=clock).start()
    try:
        yield sampler
    finally:
        if sampler is not None:
            sampler.stop()
            sampler.save(out / "server.csv")


def run_threads(
    args: argparse.Namespace, url: str, hold: Any, think: Any, stop: threading.Event, progress: Any, out: Path
) -> Any:
    """``--workers`` threads on one pool of ``--pool``'s library (peewee: ``--max-connections``)."""
    from ..pools import events_of
    from ..workload import run_closed_loop, run_open_loop
    from ..workload.clients import client_for

    prepare_schema(pool_url(url))
    db = open_library_pool(args, url)
    try:
        with server_view(pool_url(url), out, clock=events_of(db)):
            if args.open_loop:
                planned = None if args.duration is not None else args.requests
                return run_open_loop(
                    db, args.rate, args.duration, planned, args.workers, hold, args.seed, stop, progress, setup=False
                )
            return run_closed_loop(db, args.workers, args.requests, hold, think, args.seed, stop, progress, setup=False)
    finally:
        client_for(db).close()


def open_library_pool(args: argparse.Namespace, url: str) -> Any:
    """The run's instrumented pool: peewee's from ``--max-connections`` and co., else ``factory.build``."""
    from ..pools.factory import build

    if args.pool == "peewee":
        return open_pool(
            url, max_connections=args.max_connections, timeout=args.timeout, stale_timeout=args.stale_timeout
        )
    try:
        return build(args.pool, url, **args.pool_settings)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--pool {args.pool} on {mask_url(url)!r}: {exc}") from None


def run_tasks(
    args: argparse.Namespace, url: str, hold: Any, think: Any, stop: threading.Event, progress: Any, out: Path
) -> Any:
    """A ``+asyncpool`` URL: ``--workers`` asyncio tasks on ``--pool``'s asyncio pool.

    peewee's asyncio database takes ``--max-connections`` as ``pool_size`` and
    ``--timeout`` as ``acquire_timeout``; SQLAlchemy's ``AsyncEngine`` and
    psycopg_pool's ``AsyncConnectionPool`` take their library's options, as
    their threaded pools do (:func:`poolviz.pools.factory.build`).
    """
    from ..pools import events_of
    from ..pools.factory import build
    from ..urls import connect
    from ..workload.asyncio_loops import AsyncRun, on_own_loop, run_async_closed_loop, run_async_open_loop

    try:
        if args.pool == "peewee":
            db = connect(url, pool_size=args.max_connections, acquire_timeout=args.timeout)
        else:
            db = build(args.pool, url, asyncio=True, **args.pool_settings)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --url {mask_url(url)!r}: {exc}") from None
    # The User table is made through a peewee pool of its own, so the run's trace starts from an empty pool at seq 0.
    prep = connect(url, pool_size=1)
    on_own_loop(prep, AsyncRun(prep, None, None).setup())
    # Started once the set-up pool is closed, so the samples count the run's sessions only.
    with server_view(url, out, clock=events_of(db)):
        if args.open_loop:
            planned = None if args.duration is not None else args.requests
            return run_async_open_loop(
                db, args.rate, args.duration, planned, hold, args.seed, stop=stop, progress=progress, setup=False
            )
        return run_async_closed_loop(
            db, args.workers, args.requests, hold, think, args.seed, stop, progress, setup=False
        )


def run_processes(
    args: argparse.Namespace, url: str, hold: Any, think: Any, stop: threading.Event, progress: Any, out: Path
) -> Any:
    """``--processes`` worker processes, each with ``--workers`` threads and its own pool (no progress bar)."""
    from ..workload.processes import start_open_processes, start_processes

    prepare_schema(pool_url(url))
    if args.pool == "peewee":
        common = {"max_connections": args.max_connections, "timeout": args.timeout, "stale_timeout": args.stale_timeout}
    else:
        # Each worker builds its pool with factory.build(--pool, url, **settings) in its own process.
        size = {"sqlalchemy": "pool_size", "psycopg": "max_size"}[args.pool]
        settings = dict(args.pool_settings)
        common = {"library": args.pool, "max_connections": settings.pop(size, 4), **settings}
    # The sampler starts before the workers, which connect as soon as they start, so its readings cover the
    # whole run; align() puts them on the run's clock (those taken before the run's t=0 are negative).
    with server_view(pool_url(url), out) as sampler:
        if args.open_loop:
            requests = None if args.duration is not None else args.requests
            run = start_open_processes(
                url, args.processes, args.rate, args.duration, requests, args.workers, hold, seed=args.seed, **common
            )
        else:
            run = start_processes(
                url, args.processes, args.workers, args.requests, hold, think, seed=args.seed, **common
            )
        if sampler is not None:
            sampler.align(run.log)
        while run.running:
            if stop.wait(0.1):
                run.stop()
                break
        return run.wait()
