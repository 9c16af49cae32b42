"""The two workloads with asyncio tasks instead of threads, on poolviz's asyncio databases.

The closed loop runs ``tasks`` tasks that each make requests back to back;
the open loop starts one task per arrival, as an ASGI server does per request.
A request is the threaded loops' request in async form: ``await
db.aconnect()``, the tutorial's ``User`` insert and select (run through
``db.run``, peewee's greenlet bridge), a hold (``SELECT SLEEP``/``pg_sleep``
on a server, ``asyncio.sleep`` on SQLite), then ``await db.aclose()``. Both
return the same :class:`~poolviz.workload.results.WorkloadResult` as the
threaded loops, with each task's name where a thread's name would be.

``arun_*`` are coroutines for code that already runs an event loop (a
notebook cell can ``await`` them); ``run_async_*`` run one on an event loop of
their own (in a helper thread when the caller already has a loop running) and
close the pool at the end, since an asyncio pool belongs to the loop that
created it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import random
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from ..credentials import mask_text
from ..events import Event
from ..models import user_model
from .args import closed_loop_args, open_loop_args
from .distributions import Distribution
from .results import RequestRecord, WorkloadResult
from .run import HOLD_SQL, Progress, ensure_schema

ASYNC_CLIENT_SLEEP = "asyncio.sleep"
# The events of the request the current task is running (listeners run in the task that caused the event).
_seen: contextvars.ContextVar[dict[str, Event] | None] = contextvars.ContextVar("poolviz_aio_seen", default=None)


def check_async_pool(db: Any) -> None:
    """An asyncio workload runs on an instrumented asyncio database only."""
    from ..pools.peewee_asyncio import is_async_instrumented

    if not is_async_instrumented(db):
        raise TypeError(
            "an asyncio workload needs an instrumented asyncio database "
            "(poolviz.connect('postgresql+asyncpool://...') or poolviz.aio.instrument_async(db)), "
            f"got {type(db).__module__}.{type(db).__qualname__}"
        )


class AsyncRun:
    """One asyncio run: the database, the listener linking events to requests, the records."""

    def __init__(self, db: Any, progress: Progress | None, total: int | None) -> None:
        self.db = db
        self.log = db.events
        self.hold_sql = HOLD_SQL.get(db.events.meta.get("backend", ""))
        self.prefix = f"pv-{uuid.uuid4().hex[:12]}-"
        # The tutorial's User, bound to this run's database only (see user_model).
        self.model = user_model(db)
        self.progress = progress
        self.total = total
        self.records: list[RequestRecord] = []

    @staticmethod
    def listen(event: Event) -> None:
        seen = _seen.get()
        if seen is not None and event.kind in ("checkout", "timeout", "checkin"):
            seen[event.kind] = event

    async def request(self, worker: int, index: int, hold_s: float, arrived: float | None = None) -> RequestRecord:
        """Run one request in the current task and return its record; errors are recorded, never raised."""
        seen: dict[str, Event] = {}
        token = _seen.set(seen)
        begun = self.log.now()
        start = begun if arrived is None else arrived
        ok, error_type, error_message = True, "", ""
        db = self.db
        try:
            await db.aconnect()
            try:
                await db.run(_user_work, self.model, f"{self.prefix}{worker}-{index}")
                await self.hold(hold_s)
            finally:
                await db.aclose()
        except Exception as exc:  # recorded on the request; the run carries on
            ok, error_type = False, type(exc).__name__
            error_message = mask_text(" ".join(str(exc).split()))
        finally:
            _seen.reset(token)
        end = self.log.now()
        got = seen.get("checkout") or seen.get("timeout")
        checkin = seen.get("checkin")
        task = asyncio.current_task()
        record = RequestRecord(
            worker=worker,
            index=index,
            thread=task.get_name() if task is not None else threading.current_thread().name,
            start=start,
            latency_s=end - start,
            queued_s=begun - start,
            wait_s=got.wait_s if got is not None else math.nan,
            held_s=checkin.duration_s if checkin is not None else math.nan,
            hold_s=hold_s,
            conn=seen["checkout"].conn if "checkout" in seen else 0,
            seq=got.seq if got is not None else -1,
            ok=ok,
            error_type=error_type,
            error_message=error_message,
        )
        self.records.append(record)
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress(len(self.records), self.total)
        return record

    async def hold(self, seconds: float) -> None:
        """Hold the connection for ``seconds``: sleeping on the server where possible, else ``asyncio.sleep``."""
        if seconds <= 0:
            return
        if self.hold_sql is not None:
            await self.db.aexecute_sql(self.hold_sql, (seconds,))
        else:
            await asyncio.sleep(seconds)

    async def setup(self) -> None:
        """Create the User table if missing; a pool created for that is closed, so the run shows it opening."""
        fresh = self.db.pool is None
        with warnings.catch_warnings():
            # aiomysql turns MariaDB's note "Table 'user' already exists" into a Warning.
            warnings.simplefilter("ignore")
            await self.db.run(ensure_schema, self.db)
        if fresh:
            await self.db.close_pool()

    async def cleanup(self) -> None:
        """Delete the rows this run created (a failure is ignored: the rows are only test data)."""
        with contextlib.suppress(Exception):
            await self.db.run(_delete_rows, self.db, self.model, self.prefix)


def _user_work(model: Any, name: str) -> None:
    # Runs inside peewee's greenlet bridge (db.run), where peewee's sync API awaits for us.
    model.insert(username=name).execute()
    list(model.select().where(model.username == name))


def _delete_rows(db: Any, model: Any, prefix: str) -> None:
    with db.connection_context():
        model.delete().where(model.username.startswith(prefix)).execute()


async def _execute(
    db: Any,
    mode: str,
    settings: dict[str, Any],
    stop: Any,
    setup: bool,
    cleanup: bool,
    progress: Progress | None,
    total: int | None,
    body: Callable[[AsyncRun], Awaitable[int]],
) -> WorkloadResult:
    run = AsyncRun(db, progress, total)
    if setup:
        await run.setup()
    log = db.events
    first_seq = log.last.seq + 1 if log.last is not None else 0
    began = time.perf_counter()
    with log.subscribe(run.listen):
        abandoned = await body(run)
    elapsed = time.perf_counter() - began
    last_seq = log.last.seq if log.last is not None else -1
    if cleanup:
        await run.cleanup()
    frame = log.to_frame()
    window = frame[(frame["seq"] >= first_seq) & (frame["seq"] <= last_seq)].reset_index(drop=True)
    window.attrs = dict(frame.attrs)
    return WorkloadResult(
        mode=mode,
        records=sorted(run.records, key=lambda r: (r.start, r.worker, r.index)),
        elapsed_s=elapsed,
        events=window,
        settings={**settings, "concurrency": "asyncio"},
        hold_method=run.hold_sql or ASYNC_CLIENT_SLEEP,
        stopped=bool(stop is not None and stop.is_set()),
        abandoned=abandoned,
    )


async def arun_closed_loop(
    db: Any,
    tasks: int,
    requests: int,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Run ``tasks`` asyncio tasks that each make ``requests`` requests back to back through ``db``.

    The asyncio twin of :func:`~poolviz.workload.run_closed_loop`: the same
    seeded draws per worker, the same result. Setting ``stop`` ends the run
    once each task finishes its current request.
    """
    check_async_pool(db)
    args = closed_loop_args(tasks, requests, hold, think, seed, workers_name="tasks")
    tasks, requests, hold_d, think_d, seed = args
    settings = args.settings("tasks")

    async def body(run: AsyncRun) -> int:
        async def work(worker: int) -> None:
            rng = random.Random(f"poolviz:{seed}:{worker}")
            for index in range(requests):
                if stop is not None and stop.is_set():
                    return
                hold_s = hold_d.sample(rng)
                think_s = think_d.sample(rng)
                await run.request(worker, index, hold_s)
                if think_s > 0:
                    await asyncio.sleep(think_s)

        workers = [asyncio.create_task(work(w), name=f"task-{w}") for w in range(tasks)]
        await asyncio.gather(*workers)
        return 0

    return await _execute(db, "closed", settings, stop, setup, cleanup, progress, tasks * requests, body)


async def arun_open_loop(
    db: Any,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    hold: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Start one task per Poisson arrival at ``rate`` per second, like an asyncio web server.

    The asyncio twin of :func:`~poolviz.workload.run_open_loop`, without its
    handler threads: every arrival gets a task at once, so ``queued_s`` is only
    the event loop's delay in starting it and the waiting happens in the pool. The run makes ``requests``
    arrivals, or arrivals for ``duration`` seconds, whichever ends first.
    Setting ``stop`` ends arrivals; tasks already started finish.
    """
    check_async_pool(db)
    args = open_loop_args(rate, duration, requests, hold, seed)
    rate, duration, requests, hold_d, seed = args
    settings = args.settings()

    async def body(run: AsyncRun) -> int:
        arrivals = random.Random(f"poolviz:{seed}:arrivals")
        holds = random.Random(f"poolviz:{seed}:holds")
        started: list[asyncio.Task[RequestRecord]] = []
        log = run.log
        began = time.perf_counter()
        offset = began - log.t0
        due = 0.0
        index = 0
        while requests is None or index < requests:
            due += arrivals.expovariate(rate)
            if duration is not None and due > duration:
                break
            delay = began + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop is not None and stop.is_set():
                break
            coro = run.request(index, 0, hold_d.sample(holds), offset + due)
            started.append(asyncio.create_task(coro, name=f"request-{index}"))
            index += 1
        await asyncio.gather(*started)
        return 0

    total = requests if duration is None else None
    return await _execute(db, "open", settings, stop, setup, cleanup, progress, total, body)


def run_async_closed_loop(db: Any, *args: Any, **kwargs: Any) -> WorkloadResult:
    """:func:`arun_closed_loop` on an event loop of its own; the pool is closed at the end."""
    check_async_pool(db)
    return _on_own_loop(db, arun_closed_loop(db, *args, **kwargs))


def run_async_open_loop(db: Any, *args: Any, **kwargs: Any) -> WorkloadResult:
    """:func:`arun_open_loop` on an event loop of its own; the pool is closed at the end."""
    check_async_pool(db)
    return _on_own_loop(db, arun_open_loop(db, *args, **kwargs))


def run_for_cli(
    url: str,
    args: Any,
    hold: Distribution,
    think: Distribution,
    stop: threading.Event,
    progress: Any,
    usage: type,
    out: Any = None,
) -> WorkloadResult:
    """``poolviz run`` on a ``+asyncpool`` URL: ``--workers`` tasks, ``--max-connections`` as ``pool_size``.

    ``--timeout`` becomes ``acquire_timeout``; ``usage`` is the CLI's error for a bad URL. On a server,
    with ``out`` given, the server's view of the run goes to ``out/server.csv`` (as for threads and processes).
    """
    from ..credentials import mask_url
    from ..servers.view import ServerSampler
    from ..urls import connect

    try:
        db = connect(url, pool_size=args.max_connections, acquire_timeout=args.timeout)
    except (ValueError, TypeError) as exc:
        raise usage(f"bad --url {mask_url(url)!r}: {exc}") from None
    # The User table is made through a pool of its own, so the run's trace starts from an empty pool at seq 0.
    prep = connect(url, pool_size=1)
    _on_own_loop(prep, AsyncRun(prep, None, None).setup())
    # Started once the set-up pool is closed, so the samples count the run's sessions only.
    sampler = None if out is None or url.startswith("sqlite") else ServerSampler(url, clock=db.events).start()
    try:
        if args.open_loop:
            planned = None if args.duration is not None else args.requests
            return run_async_open_loop(
                db, args.rate, args.duration, planned, hold, args.seed, stop=stop, progress=progress, setup=False
            )
        return run_async_closed_loop(
            db, args.workers, args.requests, hold, think, args.seed, stop, progress, setup=False
        )
    finally:
        if sampler is not None:
            sampler.stop()
            sampler.save(out / "server.csv")


def _on_own_loop(db: Any, coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        try:
            return await coro
        finally:
            await db.close_pool()
            # peewee's pool-creation lock binds to the first loop that contends
            # for it and refuses every later loop: give the next run a new one.
            db._pool_lock = asyncio.Lock()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # A loop already runs in this thread (a notebook): asyncio.run() refuses, so use a thread of our own.
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="poolviz-asyncio", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


__all__ = [
    "ASYNC_CLIENT_SLEEP",
    "AsyncRun",
    "arun_closed_loop",
    "arun_open_loop",
    "check_async_pool",
    "run_for_cli",
    "run_async_closed_loop",
    "run_async_open_loop",
]
