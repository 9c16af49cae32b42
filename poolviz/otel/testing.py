"""Reading the metrics back, and checking them against the events: for tests and notebooks.

:func:`points` collects an OpenTelemetry reader once (an SDK
``InMemoryMetricReader``, say) and returns its points by metric and
attributes; :func:`disagreements` collects and compares every metric with what
the pool's events say, the way :func:`poolviz.testing.check_invariants` checks
a trace: an empty list when they agree. :func:`crowd` drives a threaded pool
of any library through a full house: holders, a waiter served late, callers
that time out.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from ..events import Event, EventLog
from ..testing import join_threads, wait_until
from . import names

Attributes = frozenset[tuple[str, Any]]


def points(reader: Any) -> dict[str, dict[Attributes, Any]]:
    """``{metric name: {frozenset(attribute items): point}}`` from one collection of ``reader``."""
    found: dict[str, dict[Attributes, Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                by_attributes = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    by_attributes[frozenset(point.attributes.items())] = point
    return found


def expected(events: list[Event]) -> dict[str, Any]:
    """What the metrics should say after ``events`` (every event the pool recorded, oldest first).

    Counts are the newest event's; timeouts the timeout events; the wait
    times the checkouts' ``wait_s``; the create times the connects'
    ``duration_s``; the use times the check-ins' ``duration_s`` and, for a
    connection closed while checked out (returned and not kept), the time
    from its checkout to its close.
    """
    last = events[-1] if events else None
    held: dict[int, float] = {}
    use: list[float] = []
    for event in events:
        if event.kind == "checkout":
            held[event.conn] = event.t
        elif event.kind == "checkin":
            held.pop(event.conn, None)
            use.append(event.duration_s)
        elif event.kind == "close" and event.conn in held:
            use.append(max(0.0, event.t - held.pop(event.conn)))
        elif event.kind == "dispose":
            held.clear()
    return {
        names.USED: last.in_use if last else 0,
        names.IDLE: last.idle if last else 0,
        names.PENDING_REQUESTS: last.waiting if last else 0,
        names.TIMEOUTS: sum(e.kind == "timeout" for e in events),
        names.WAIT_TIME: [e.wait_s for e in events if e.kind == "checkout"],
        names.USE_TIME: use,
        names.CREATE_TIME: [e.duration_s for e in events if e.kind == "connect"],
    }


def disagreements(reader: Any, events: list[Event], pool_name: str) -> list[str]:
    """Where one collection of ``reader`` disagrees with :func:`expected` of ``events`` for ``pool_name``.

    Collect while the pool is still, after its last event: the events and the
    metrics must describe the same moment.
    """
    got = points(reader)
    want = expected(events)
    pool = (names.POOL_NAME, pool_name)
    problems: list[str] = []

    def point(name: str, *extra: tuple[str, Any]) -> Any:
        found = got.get(name, {}).get(frozenset({pool, *extra}))
        if found is None:
            problems.append(f"{name}: no point for pool {pool_name!r} {dict(extra)}")
        return found

    for state in (names.USED, names.IDLE):
        found = point(names.COUNT, (names.STATE, state))
        if found is not None and found.value != want[state]:
            problems.append(f"{names.COUNT} {state}: {found.value}, the events say {want[state]}")
    for name in (names.PENDING_REQUESTS, names.TIMEOUTS):
        found = point(name)
        if found is not None and found.value != want[name]:
            problems.append(f"{name}: {found.value}, the events say {want[name]}")
    for name in (names.WAIT_TIME, names.USE_TIME, names.CREATE_TIME):
        values = want[name]
        found = got.get(name, {}).get(frozenset({pool}))
        count, total = (found.count, found.sum) if found is not None else (0, 0.0)
        if count != len(values) or not math.isclose(total, sum(values), rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{name}: count {count} sum {total}, the events say count {len(values)} sum {sum(values)}")
    return problems


def crowd(
    log: EventLog,
    take: Callable[[], Any],
    give: Callable[[Any], Any],
    limit: int,
    *,
    waiter: bool = True,
    impatient: Callable[[], Any] | None = None,
) -> int:
    """Fill a pool of ``limit`` from as many threads, then let them go; returns how many calls timed out.

    While it is full, ``impatient()`` (a call that must time out: it should
    raise) runs twice, and with ``waiter`` one more thread waits for a
    connection, served when the holders give theirs back. ``take()`` checks a
    connection out and returns what ``give`` checks back in; ``log`` is the
    pool's event log, read to see it full and the waiter waiting.
    """
    release = threading.Event()

    def hold() -> None:
        conn = take()
        release.wait(30)
        give(conn)

    def wait() -> None:
        give(take())

    holders = [threading.Thread(target=hold, name=f"holder-{i}") for i in range(limit)]
    for thread in holders:
        thread.start()
    wait_until(lambda: log.last is not None and log.last.in_use == limit, what=f"{limit} connections held")
    timeouts = 0
    for _ in range(2 if impatient else 0):
        try:
            impatient()  # type: ignore[misc]
        except Exception:
            timeouts += 1
    late = [threading.Thread(target=wait, name="waiter")] if waiter else []
    for thread in late:
        # psycopg_pool counts a timed-out caller as waiting until a connection comes back.
        waiting = (log.last.waiting if log.last is not None else 0) + 1
        thread.start()
        wait_until(lambda: log.last is not None and log.last.waiting == waiting, what="the waiter waiting")  # noqa: B023
    release.set()
    join_threads(holders + late)
    return timeouts
