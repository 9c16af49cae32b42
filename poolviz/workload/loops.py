"""The threaded workloads: a closed loop (workers back to back) and an open loop (Poisson arrivals).

What a request records, how progress and errors are handled and what the
result holds are decided once in :mod:`.run` (shared with the asyncio loops);
the draws come from :mod:`.args`; how a request checks a connection out,
does its work and holds it, per pool library, from :mod:`.clients`. Here:
threads, a queue, and the frame around them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from .. import checks
from .args import Arrival, closed_loop_args, open_loop_args
from .clients import client_for
from .distributions import Distribution
from .results import RequestRecord, WorkloadResult
from .run import Frame, Progress, Run, check_pool, cleanup_failed


class ThreadRun(Run):
    """A run whose requests are made by threads, on any library's pool through its :class:`~.clients.Client`."""

    def __init__(self, db: Any, progress: Progress | None, total: int | None) -> None:
        super().__init__(db, progress, total)
        self.client = client_for(db)

    def request(self, worker: int, index: int, hold_s: float, arrived: float | None = None) -> RequestRecord:
        """Run one request and return its record; errors are recorded, never raised."""
        client = self.client
        with self.track(worker, index, hold_s, arrived) as request, client.connection() as handle:
            client.work(handle, self.row_name(worker, index))
            client.hold(handle, hold_s)
        return request.record

    def setup(self) -> None:
        """Create the User table if missing (a fresh peewee pool is left empty again)."""
        self.client.setup()

    def cleanup(self) -> None:
        """Delete the rows this run created (see :func:`.run.cleanup_failed` for a failure)."""
        try:
            self.client.cleanup(self.prefix)
        except Exception as exc:  # a server at its connection limit refuses the tidy-up too: say so in one line
            cleanup_failed(self.prefix, exc)


def cleanup(db: Any, prefix: str) -> None:
    """Delete the ``User`` rows named ``prefix``... through ``db`` (any library) in this thread; a failure is logged."""
    try:
        client_for(db).cleanup(prefix)
    except Exception as exc:
        cleanup_failed(prefix, exc)


def join_all(threads: list[threading.Thread], stop: threading.Event) -> None:
    """Join every thread; on an interrupt, ask them to stop and still join them before re-raising."""
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise


def start_threads(target: Callable[[int], None], count: int, name: str) -> list[threading.Thread]:
    """``count`` daemon threads running ``target(i)``, named ``name-i``, started."""
    threads = [threading.Thread(target=target, args=(i,), name=f"{name}-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def execute(run: ThreadRun, frame: Frame, body: Callable[[ThreadRun], int]) -> WorkloadResult:
    """The frame around both loops: set up, listen, run ``body``, clean up, collect the result."""
    if frame.setup:
        run.setup()
    with run.watch() as window:
        abandoned = body(run)
    if frame.cleanup:
        run.cleanup()
    return run.result(frame, window, abandoned)


def run_closed_loop(
    db: Any,
    workers: int,
    requests: int,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Run ``workers`` threads that each make ``requests`` requests back to back through ``db``.

    Each worker draws its hold (and think) times from its own
    ``random.Random`` seeded with ``seed`` and its number, so a run with the
    same seed repeats the same draws. Setting ``stop`` ends the run early:
    each worker finishes its current request and exits; every thread is
    joined before this returns. ``progress(done, total)`` is called after
    each request, never by two threads at once. ``setup`` creates the
    ``User`` table if missing; ``cleanup`` deletes the rows the run made.
    """
    check_pool(db)
    args = closed_loop_args(workers, requests, hold, think, seed)
    stop_event = stop if stop is not None else threading.Event()

    def body(run: ThreadRun) -> int:
        def work(worker: int) -> None:
            for index, hold_s, think_s in args.draws(worker):
                if stop_event.is_set():
                    return
                run.request(worker, index, hold_s)
                if think_s > 0 and stop_event.wait(think_s):
                    return

        join_all(start_threads(work, args.workers, "worker"), stop_event)
        return 0

    frame = Frame("closed", args.settings(), stop_event, setup, cleanup)
    return execute(ThreadRun(db, progress, args.workers * args.requests), frame, body)


def run_open_loop(
    db: Any,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    threads: int = 8,
    hold: Distribution | str | float = 0.0,
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    setup: bool = True,
    cleanup: bool = True,
) -> WorkloadResult:
    """Send requests at Poisson arrivals of ``rate`` per second to ``threads`` threads, like a web server.

    Arrivals go into a queue that the threads take from, so a request's
    latency includes its time in the queue (``queued_s``) as well as its
    pool wait. The run makes ``requests`` arrivals, or arrivals for
    ``duration`` seconds, whichever ends first (give at least one). Arrival
    times and hold times come from ``random.Random`` seeded with ``seed``.
    Setting ``stop`` ends arrivals; threads finish their current request,
    queued requests are dropped (counted in ``abandoned``), and every thread
    is joined before this returns.
    """
    check_pool(db)
    args = open_loop_args(rate, duration, requests, hold, seed)
    threads = checks.count("threads", threads)
    stop_event = stop if stop is not None else threading.Event()

    def body(run: ThreadRun) -> int:
        inbox: queue.SimpleQueue[Arrival | None] = queue.SimpleQueue()
        abandoned = [0] * threads

        def work(worker: int) -> None:
            while (arrival := inbox.get()) is not None:
                if stop_event.is_set():
                    abandoned[worker] += 1
                else:
                    run.request(worker, arrival.number, arrival.hold_s, arrival.at)

        handlers = start_threads(work, threads, "handler")
        try:
            for arrival in args.arrivals(run.log.t0):
                if stop_event.wait(max(arrival.delay, 0.0)):  # wait(0) still says if stop is set
                    break
                inbox.put(arrival)
        finally:
            for _ in handlers:
                inbox.put(None)
            join_all(handlers, stop_event)
        return sum(abandoned)

    frame = Frame("open", {"threads": threads, **args.settings()}, stop_event, setup, cleanup)
    return execute(ThreadRun(db, progress, args.requests if args.duration is None else None), frame, body)
