"""The two workloads: a closed loop (workers back to back) and an open loop (Poisson arrivals)."""

from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any

from .. import checks
from .args import closed_loop_args, open_loop_args
from .distributions import Distribution
from .results import WorkloadResult
from .run import Progress, Run, check_pool, execute, join_all


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
    workers, requests, hold_d, think_d, seed = args
    stop_event = stop if stop is not None else threading.Event()
    settings = args.settings()

    def body(run: Run) -> int:
        def work(worker: int) -> None:
            rng = random.Random(f"poolviz:{seed}:{worker}")
            for index in range(requests):
                if stop_event.is_set():
                    return
                hold_s = hold_d.sample(rng)
                think_s = think_d.sample(rng)
                run.request(worker, index, hold_s)
                if think_s > 0 and stop_event.wait(think_s):
                    return

        threads = [threading.Thread(target=work, args=(w,), name=f"worker-{w}", daemon=True) for w in range(workers)]
        for thread in threads:
            thread.start()
        join_all(threads, stop_event)
        return 0

    total = workers * requests
    return execute(db, "closed", settings, stop_event, setup, cleanup, progress, total, body)


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
    rate, duration, requests, hold_d, seed = args
    threads = checks.count("threads", threads)
    stop_event = stop if stop is not None else threading.Event()
    settings: dict[str, Any] = {"threads": threads, **args.settings()}

    def body(run: Run) -> int:
        inbox: queue.SimpleQueue[tuple[int, float, float] | None] = queue.SimpleQueue()
        abandoned = [0] * threads

        def work(worker: int) -> None:
            while True:
                item = inbox.get()
                if item is None:
                    return
                if stop_event.is_set():
                    abandoned[worker] += 1
                    continue
                index, arrived, hold_s = item
                run.request(worker, index, hold_s, arrived)

        handlers = [threading.Thread(target=work, args=(w,), name=f"handler-{w}", daemon=True) for w in range(threads)]
        for thread in handlers:
            thread.start()
        arrivals = random.Random(f"poolviz:{seed}:arrivals")
        holds = random.Random(f"poolviz:{seed}:holds")
        log = run.log
        try:
            began = time.perf_counter()
            offset = began - log.t0
            due = 0.0
            index = 0
            while requests is None or index < requests:
                due += arrivals.expovariate(rate)
                if duration is not None and due > duration:
                    break
                delay = began + due - time.perf_counter()
                if delay > 0 and stop_event.wait(delay):
                    break
                if stop_event.is_set():
                    break
                inbox.put((index, offset + due, hold_d.sample(holds)))
                index += 1
        finally:
            for _ in handlers:
                inbox.put(None)
            join_all(handlers, stop_event)
        return sum(abandoned)

    total = requests if duration is None else None
    return execute(db, "open", settings, stop_event, setup, cleanup, progress, total, body)
