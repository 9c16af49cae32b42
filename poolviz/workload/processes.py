"""Many processes, one server: a workload run by N worker processes, each with its own pool.

This is how a prefork application (gunicorn, uwsgi, Celery workers) uses a
database: every worker process opens its own instrumented pool from the same
URL and runs the same closed or open loop as one process would. Each worker
ships its pool's new events to the parent every :data:`SHIP_PERIOD_S` over a
pipe of its own (a batch of plain tuples, pickled), and the parent merges
them into one :class:`~poolviz.merge.MergedEventLog` while the run goes, so
the live view and the analysis see every process on one clock.

Why a pipe per worker rather than one shared queue: a pipe's end tells the
parent when its worker is gone (``EOFError``), which is how a worker killed
with SIGKILL is noticed and reported, and a full pipe makes the worker's
shipper wait rather than drop events (the pool's threads never wait on it).

Processes start with ``spawn`` by default: it is safe on Linux and macOS
(``fork`` copies a process that may hold locks and open connections).
``start_method="fork"`` is allowed on purpose, and
each worker still opens its own pool after the fork (a pool opened before
``fork()`` and used by the children would share its connections with them:
:mod:`poolviz.forking` shows it).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import astuple, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .. import checks
from ..credentials import mask_url
from ..events.merge import MergedEventLog, thread_label
from .args import closed_loop_args, open_loop_args
from .distributions import Distribution
from .results import RequestRecord, WorkloadResult

logger = logging.getLogger("poolviz.workload")

START_METHODS = ("spawn", "forkserver", "fork")
DEFAULT_START_METHOD = "spawn"
SHIP_PERIOD_S = 0.05
JOIN_TIMEOUT_S = 30.0


@dataclass
class WorkerPlan:
    """What one worker process does: the pool it opens (``library``, ``pool``) and the loop it runs (picklable)."""

    url: str
    pool: dict[str, Any]
    mode: str
    loop: dict[str, Any]
    ship: bool = True
    ship_period_s: float = SHIP_PERIOD_S
    library: str = "peewee"


def open_worker_pool(plan: WorkerPlan) -> Any:
    """The worker's own instrumented pool, built in the child: peewee's ``connect``, else ``factory.build``."""
    if plan.library == "peewee":
        from ..urls import connect

        return connect(plan.url, **plan.pool)
    from ..pools.factory import build

    return build(plan.library, plan.url, **plan.pool)


@dataclass
class ProcessResult(WorkloadResult):
    """A :class:`WorkloadResult` of a multi-process run, with one report per worker process.

    ``events`` is the merged frame (with the ``process`` column and the others
    of :data:`poolviz.merge.PROCESS_COLUMNS`); ``records`` are every finished
    worker's requests, times on the merged clock, threads named ``p1:worker-0``.
    ``workers`` has one dict per process: ``process``, ``pid``, ``status``
    (``ok``, ``killed by SIGKILL``, ``exited with N``, ``failed: ...``),
    ``exitcode``, ``requests`` (for a dead worker, the checkouts and timeouts
    it shipped before dying) and ``events`` (how many it shipped).
    """

    workers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_workers(self) -> list[dict[str, Any]]:
        """The workers that did not end normally."""
        return [w for w in self.workers if w["status"] != "ok"]

    def summary(self) -> dict[str, Any]:
        """:meth:`WorkloadResult.summary` plus ``processes`` and ``workers_failed`` (each one's status)."""
        summary = super().summary()
        summary["processes"] = len(self.workers)
        summary["workers_failed"] = {str(w["process"]): w["status"] for w in self.failed_workers}
        summary["requests_in_dead_workers"] = sum(w["requests"] for w in self.failed_workers)
        return summary


def _status(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return "ok" if exitcode == 0 else f"exited with {exitcode}"


def _worker_main(process: int, plan: WorkerPlan, events_out: Connection, control_in: Connection) -> None:
    """The body of one worker process: open a pool, run the loop, ship events, report, wait to close."""
    from ..pools import events_of
    from .clients import client_for
    from .loops import cleanup, run_closed_loop, run_open_loop

    db = open_worker_pool(plan)
    log = events_of(db)
    stop = threading.Event()
    close = threading.Event()
    finished = threading.Event()
    send_lock = threading.Lock()
    cursor = log.cursor(0)
    shipped = [0]

    def ship() -> None:
        # The lock keeps batches in the order they were read (the shipper thread and the final ship).
        with send_lock:
            mark = time.perf_counter()
            events, _lost = cursor.read()
            shipped[0] += len(events)
            events_out.send(("events", process, [tuple(e) for e in events], mark))

    def shipper() -> None:
        while not finished.wait(plan.ship_period_s):
            ship()

    def listen() -> None:
        while True:
            try:
                message = control_in.recv()
            except (EOFError, OSError):  # the parent is gone: stop and leave
                stop.set()
                close.set()
                return
            if message == "stop":
                stop.set()
            elif message == "close":
                close.set()
                return

    events_out.send(("hello", process, os.getpid(), log.t0))
    threading.Thread(target=listen, name="poolviz-control", daemon=True).start()
    shipping = threading.Thread(target=shipper, name="poolviz-shipper", daemon=True)
    if plan.ship:
        shipping.start()
    try:
        runner = run_closed_loop if plan.mode == "closed" else run_open_loop
        result = runner(db, **plan.loop, stop=stop, setup=False, cleanup=False)
    except Exception as exc:
        finished.set()
        events_out.send(("failed", process, f"{type(exc).__name__}: {exc}"))
        client_for(db).close()
        raise
    finished.set()
    if plan.ship:
        shipping.join()
        ship()
    records = [astuple(r) for r in result.records]
    figures = {
        "elapsed_s": result.elapsed_s,
        "stopped": result.stopped,
        "abandoned": result.abandoned,
        "hold_method": result.hold_method,
        "settings": result.settings,
        "lost": cursor.lost,
        "shipped": shipped[0],
    }
    events_out.send(("done", process, records, figures))
    close.wait()
    try:
        cleanup(db, result.row_prefix)
    finally:
        client_for(db).close()


class ProcessRun:
    """A running multi-process workload: start it, watch :attr:`log`, then :meth:`wait` for the result.

    Build one with :func:`start_processes`. :attr:`pids` lists the worker
    processes, :meth:`stop` asks them to finish their current requests and
    end, :meth:`kill` sends one of them SIGKILL (to see a worker die).
    """

    def __init__(self, plans: list[WorkerPlan], start_method: str, mode: str, settings: dict[str, Any]) -> None:
        self._plans = plans
        self._context: Any = multiprocessing.get_context(start_method)
        self.mode = mode
        self.settings = settings
        self.log = MergedEventLog(range(len(plans)))
        per_process = _limit(plans[0].library, plans[0].pool)
        self.log.meta.update(
            pool=f"{len(plans)} processes",
            # Spelled as the pools' own logs spell it (psycopg_pool's log says psycopg_pool).
            library={"psycopg": "psycopg_pool"}.get(plans[0].library, plans[0].library),
            url=mask_url(plans[0].url),
            max_connections=(per_process or 0) * len(plans) or None,
            max_connections_per_process=per_process,
            processes=len(plans),
            start_method=start_method,
        )
        if plans[0].library != "peewee":
            self.log.meta["pool_settings"] = dict(plans[0].pool)
        self._procs: list[Any] = []
        self._readers: dict[Connection, int] = {}
        self._controls: list[Connection] = []
        self._t0: dict[int, float] = {}
        self.pids: list[int] = []
        self._done: dict[int, tuple[list[tuple[Any, ...]], dict[str, Any]]] = {}
        self._failed: dict[int, str] = {}
        self._ended: set[int] = set()
        self._all_ended = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="poolviz-collector", daemon=True)
        self._began = 0.0
        self._elapsed = 0.0
        self._closed = False

    def start(self) -> ProcessRun:
        """Start every worker and the thread that merges their events; returns self once all have said hello."""
        self._began = time.perf_counter()
        hello: list[Connection] = []
        for process, plan in enumerate(self._plans):
            reader, writer = self._context.Pipe(duplex=False)
            control_in, control_out = self._context.Pipe(duplex=False)
            proc = self._context.Process(
                target=_worker_main,
                args=(process, plan, writer, control_in),
                name=f"poolviz-worker-{process}",
                daemon=True,
            )
            proc.start()
            # Close the parent's copies of the child's ends, so a dead child's pipe reads EOF.
            writer.close()
            control_in.close()
            self._procs.append(proc)
            self._readers[reader] = process
            self._controls.append(control_out)
            hello.append(reader)
        for process, reader in enumerate(hello):
            if not reader.poll(JOIN_TIMEOUT_S):
                raise RuntimeError(f"worker process {process} did not start within {JOIN_TIMEOUT_S:g} s")
            try:
                _tag, _process, pid, t0 = reader.recv()
            except EOFError:
                self._procs[process].join(5)
                raise RuntimeError(
                    f"worker process {process} ended before starting ({_status(self._procs[process].exitcode)})"
                ) from None
            self.pids.append(pid)
            self._t0[process] = t0
        self._collector.start()
        return self

    def _collect(self) -> None:
        sentinels = {proc.sentinel: process for process, proc in enumerate(self._procs)}
        readers = dict(self._readers)
        while len(self._ended) < len(self._procs):
            for ready in wait([*readers, *sentinels]):
                if ready in readers:
                    process = readers[ready]
                    if not self._receive(ready, process):
                        del readers[ready]
                        self._end(process)
                else:
                    process = sentinels.pop(ready)  # type: ignore[arg-type]
                    reader = next((r for r, p in readers.items() if p == process), None)
                    if reader is not None:
                        while self._receive(reader, process):  # whatever it sent before it went
                            pass
                        del readers[reader]
                    self._end(process)
        self._elapsed = time.perf_counter() - self._began
        self._all_ended.set()

    def _receive(self, reader: Connection, process: int) -> bool:
        try:
            if not reader.poll():
                return process not in self._ended and self._procs[process].is_alive()
            message = reader.recv()
        except (EOFError, OSError):
            return False
        tag = message[0]
        if tag == "events":
            self.log.add(process, self._t0[process], message[2], message[3])
        elif tag == "done":
            self._done[process] = (message[2], message[3])
            self._end(process)
        elif tag == "failed":
            self._failed[process] = message[2]
            self._end(process)
        return True

    def _end(self, process: int) -> None:
        if process not in self._ended:
            self._ended.add(process)
            self.log.end(process)

    @property
    def running(self) -> bool:
        """True until every worker has finished its loop or died."""
        return not self._all_ended.is_set()

    def stop(self) -> None:
        """Ask every worker to finish its current requests and end its loop."""
        for control in self._controls:
            with contextlib.suppress(OSError):  # that worker is gone already
                control.send("stop")

    def kill(self, process: int) -> None:
        """Send worker ``process`` SIGKILL: it dies at once, as under the OOM killer."""
        process = checks.choice("process", process, range(len(self._procs)))
        os.kill(self.pids[process], signal.SIGKILL)

    def wait(self, timeout: float | None = None, close: bool = True) -> ProcessResult:
        """Wait for every worker to finish or die and return the merged result.

        With ``close=False`` the workers keep their pools (idle connections
        still open on the server) until :meth:`close`.
        """
        if not self._all_ended.wait(timeout):
            raise TimeoutError(f"the workers were still running after timeout={timeout!r} s")
        if close:
            self.close()
        return self._result()

    def close(self) -> None:
        """Tell the workers to delete their rows, close their pools and exit; join them."""
        if self._closed:
            return
        self._closed = True
        for control in self._controls:
            with contextlib.suppress(OSError):
                control.send("close")
        for proc in self._procs:
            proc.join(JOIN_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for connection in [*self._controls, *self._readers]:
            connection.close()

    def _result(self) -> ProcessResult:
        frame = self.log.to_frame()
        base = self.log.t0
        records: list[RequestRecord] = []
        workers: list[dict[str, Any]] = []
        threads = int(self.settings.get("workers_per_process") or self.settings.get("threads_per_process") or 1)
        stopped = False
        abandoned = 0
        hold_method = ""
        for process, proc in enumerate(self._procs):
            shipped = frame[frame["process"] == process]
            requests = int(shipped["kind"].isin(["checkout", "timeout"]).sum())
            if process in self._done:
                rows, figures = self._done[process]
                shift = self._t0[process] - base
                for row in rows:
                    record = RequestRecord(*row)
                    record.start += shift
                    record.thread = thread_label(process, record.thread)
                    record.worker += process * threads
                    records.append(record)
                requests = len(rows)
                status = "ok"
                stopped = stopped or figures["stopped"]
                abandoned += figures["abandoned"]
                hold_method = figures["hold_method"]
            elif process in self._failed:
                status = f"failed: {self._failed[process]}"
            else:
                status = _status(proc.exitcode if proc.exitcode is not None else None)
                if status in ("ok", "still running"):
                    status = "ended without reporting"
            workers.append(
                {
                    "process": process,
                    "pid": self.pids[process],
                    "status": status,
                    "exitcode": proc.exitcode,
                    "requests": requests,
                    "events": self.log.received[process],
                }
            )
        records.sort(key=lambda r: (r.start, r.worker, r.index))
        return ProcessResult(
            mode=self.mode,
            records=records,
            elapsed_s=self._elapsed,
            events=frame,
            settings=dict(self.settings),
            hold_method=hold_method,
            stopped=stopped,
            abandoned=abandoned,
            workers=workers,
        )


def _limit(library: str, pool: dict[str, Any]) -> int | None:
    """One process's pool limit: peewee's max_connections, SQLAlchemy's pool_size + max_overflow, psycopg's max_size."""
    if library == "sqlalchemy":
        return int(pool["pool_size"]) + int(pool.get("max_overflow", 0))
    if library == "psycopg":
        return int(pool["max_size"])
    limit = pool.get("max_connections")
    return int(limit) if limit else None


def _check_common(url: Any, processes: Any, start_method: str, library: str = "peewee") -> tuple[str, int, str]:
    from ..backends import backend_of_url

    if library != "peewee":
        if not isinstance(url, str) or backend_of_url(url) == "other":
            raise ValueError(
                f"url must be a postgresql://, mysql:// or sqlite:/// URL each worker process can open, "
                f"got {mask_url(str(url))!r}"
            )
        if library == "psycopg" and backend_of_url(url) != "postgresql":
            raise ValueError(f"psycopg_pool pools connect to PostgreSQL only, not {mask_url(url)!r}")
    elif not isinstance(url, str) or "+pool://" not in url:
        raise ValueError(
            "url must be a +pool URL each worker process can open (e.g. postgresql+pool://user@host/db), "
            f"got {mask_url(str(url))!r}"
        )
    if backend_of_url(url) == "sqlite" and url.rstrip("/").endswith(":memory:"):
        raise ValueError(f"url {url!r} is an in-memory database: each worker process would get its own")
    processes = checks.count("processes", processes)
    start_method = checks.choice("start_method", start_method, START_METHODS)
    if start_method not in multiprocessing.get_all_start_methods():
        raise ValueError(f"start_method {start_method!r} is not available on this platform")
    return url, processes, start_method


def _pool_args(
    library: str, max_connections: Any, timeout: Any, stale_timeout: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Each worker's pool settings: peewee's as before; another library's checked by ``factory.settings_for``."""
    if library == "peewee":
        max_connections, stale_timeout, timeout = checks.pool_args(max_connections, stale_timeout, timeout)
        return {"max_connections": max_connections, "timeout": timeout, "stale_timeout": stale_timeout, **extra}
    from ..pools.factory import library as checked_library
    from ..pools.factory import settings_for

    library = checked_library(library)
    if stale_timeout is not None:
        raise ValueError(f"stale_timeout is peewee's; {library} pools take {', '.join(settings_for(library))}")
    size = {"sqlalchemy": "pool_size", "psycopg": "max_size"}[library]
    given = {size: max_connections, "timeout": timeout, **extra}
    checked = settings_for(library, **given)
    return {key: checked[key] for key in given}


def start_processes(
    url: str,
    processes: int,
    workers: int,
    requests: int,
    hold: Distribution | str | float,
    think: Distribution | str | float = 0.0,
    max_connections: int | None = 4,
    timeout: float | None = 10.0,
    stale_timeout: float | None = None,
    seed: int = 0,
    start_method: str = DEFAULT_START_METHOD,
    ship: bool = True,
    library: str = "peewee",
    **pool_kwargs: Any,
) -> ProcessRun:
    """Start ``processes`` worker processes, each running a closed loop of ``workers`` threads on its own pool.

    Each process opens ``url`` with ``max_connections`` (and ``timeout``,
    ``stale_timeout``, driver keyword arguments) and runs
    :func:`~poolviz.workload.run_closed_loop` with ``workers``, ``requests``,
    ``hold`` and ``think``; process ``p`` draws with seed ``seed * 1000 + p``.
    The ``User`` table must exist (:func:`~poolviz.workload.ensure_schema`).
    ``ship=False`` keeps events in the workers (for measuring what shipping costs).
    ``library`` (``peewee``, ``sqlalchemy`` or ``psycopg``) picks the pool
    each worker builds (``factory.build`` in the child): for the other two,
    ``max_connections`` is the size (``pool_size``, ``max_size``) unless
    ``pool_kwargs`` sets it, and ``pool_kwargs`` are that library's settings.
    """
    url, processes, start_method = _check_common(url, processes, start_method, library)
    args = closed_loop_args(workers, requests, hold, think, seed)
    workers, requests, hold_d, think_d, seed = args
    pool = _pool_args(library, max_connections, timeout, stale_timeout, pool_kwargs)
    plans = [
        WorkerPlan(
            url,
            pool,
            "closed",
            {"workers": workers, "requests": requests, "hold": hold_d, "think": think_d, "seed": seed * 1000 + p},
            ship,
            library=library,
        )
        for p in range(processes)
    ]
    settings = {"processes": processes, **args.settings("workers_per_process"), "start_method": start_method}
    return ProcessRun(plans, start_method, "closed", settings).start()


def start_open_processes(
    url: str,
    processes: int,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    threads: int = 8,
    hold: Distribution | str | float = 0.0,
    max_connections: int | None = 4,
    timeout: float | None = 10.0,
    stale_timeout: float | None = None,
    seed: int = 0,
    start_method: str = DEFAULT_START_METHOD,
    ship: bool = True,
    library: str = "peewee",
    **pool_kwargs: Any,
) -> ProcessRun:
    """Start ``processes`` workers that share Poisson traffic of ``rate`` per second, like a prefork web server.

    Each process runs :func:`~poolviz.workload.run_open_loop` with
    ``rate / processes`` arrivals per second on ``threads`` threads (and
    ``requests / processes`` arrivals, rounded up, when ``requests`` is given).
    """
    url, processes, start_method = _check_common(url, processes, start_method, library)
    args = open_loop_args(rate, duration, requests, hold, seed)
    rate, duration, requests, hold_d, seed = args
    threads = checks.count("threads", threads)
    pool = _pool_args(library, max_connections, timeout, stale_timeout, pool_kwargs)
    share = None if requests is None else -(-requests // processes)
    plans = [
        WorkerPlan(
            url,
            pool,
            "open",
            {
                "rate": rate / processes,
                "duration": duration,
                "requests": share,
                "threads": threads,
                "hold": hold_d,
                "seed": seed * 1000 + p,
            },
            ship,
            library=library,
        )
        for p in range(processes)
    ]
    settings = {
        "processes": processes,
        "threads_per_process": threads,
        **args.settings(),
        "start_method": start_method,
    }
    return ProcessRun(plans, start_method, "open", settings).start()


def run_processes(*args: Any, wait_timeout: float | None = None, **kwargs: Any) -> ProcessResult:
    """:func:`start_processes`, then wait (at most ``wait_timeout`` seconds) for the result."""
    return start_processes(*args, **kwargs).wait(wait_timeout)


def run_open_processes(*args: Any, wait_timeout: float | None = None, **kwargs: Any) -> ProcessResult:
    """:func:`start_open_processes`, then wait (at most ``wait_timeout`` seconds) for the result."""
    return start_open_processes(*args, **kwargs).wait(wait_timeout)
