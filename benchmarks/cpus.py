"""Fair server figures: the database server on a CPU of its own while a benchmark runs, and the median over pairs.

Two pools measured side by side talk to different server processes, and on
a small machine where the scheduler puts each one (beside the benchmark,
or not) decides its round trip: two *plain* psycopg_pool pools measured
against each other read anywhere from 0.82x to 1.22x. With every server
process on the last CPU and the benchmark's threads on the others, the same
pairs read 0.99x to 1.02x. The old affinities come back when the block ends.
Without permission to move the server (not root, not Linux, one CPU) it
measures as it is and says so. A server figure is then the median over
several pool pairs, each with connections (server processes) of its own
(:func:`median_of_pairs`).
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

SERVERS = ("postgres", "mariadbd", "mysqld")


def _tasks(pid: int) -> list[int]:
    try:
        return [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _server_pids(names: tuple[str, ...]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@contextlib.contextmanager
def server_on_its_own_cpu(names: tuple[str, ...] = SERVERS) -> Iterator[str]:
    """Inside the block, the servers' processes (every thread) run on the last CPU and this process on the rest."""
    if not hasattr(os, "sched_setaffinity") or not Path("/proc").is_dir():
        yield "CPUs: as the scheduler places them (no sched_setaffinity here)"
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield "CPUs: as the scheduler places them (one CPU)"
        return
    server_cpu, client_cpus = {cpus[-1]}, set(cpus[:-1])
    saved: dict[int, set[int]] = {}
    mine = set(_tasks(os.getpid()))
    try:
        for task in [t for pid in _server_pids(names) for t in _tasks(pid)] + sorted(mine):
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                saved[task] = os.sched_getaffinity(task)
                os.sched_setaffinity(task, client_cpus if task in mine else server_cpu)
    except PermissionError as error:
        _restore(saved, names, set(cpus))
        yield f"CPUs: as the scheduler places them (the server may not be moved: {error.strerror})"
        return
    try:
        yield f"CPUs: servers on CPU {cpus[-1]}, this benchmark on {sorted(client_cpus)}"
    finally:
        _restore(saved, names, set(cpus))


def _restore(saved: dict[int, set[int]], names: tuple[str, ...], every: set[int]) -> None:
    # Server processes started inside the block (new connections' backends) get every CPU back too.
    for task in [t for pid in _server_pids(names) for t in _tasks(pid)]:
        saved.setdefault(task, every)
    for task, cpus in saved.items():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(task, cpus)


def median_of_pairs(label: str, ratios: list[float], target: float) -> float:
    """Print and return a server figure: the median of the pool pairs' ratios, each pair's shown beside it."""
    figure = statistics.median(ratios)
    verdict = "within" if figure <= target else "above"
    shown = ", ".join(f"{r:.3f}" for r in ratios)
    print(f"{label:<42} median of {len(ratios)} pairs {figure:5.3f}x  ({verdict} the {target}x target; pairs: {shown})")
    return figure
