"""Synthetic pool traces for the benchmarks, generated with numpy rather than a real pool.

A real pool cannot produce a million events in a benchmark's time, so this
builds one that has the same shape: ``lanes`` connection slots, each serving
back-to-back holds by random worker threads; some checkouts wait first; every
``recycle`` holds a slot's connection is closed as stale and a new serial
opens; a few callers time out. The counts on each event follow from the
events themselves, so the trace is consistent for every analysis. Threads are
drawn at random per hold, so one thread may now and then hold two slots at
once, which the analysis does not care about.
"""

from __future__ import annotations

import numpy as np

from poolviz.events import Event

_PRIORITY = {"close": 0, "connect": 1, "checkin": 2, "wait": 3, "checkout": 4, "timeout": 5}


def synthetic_columns(
    events: int,
    lanes: int = 8,
    threads: int = 64,
    wait_share: float = 0.3,
    recycle: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Columns of the first ``events`` events of a synthetic trace, in ``seq`` order."""
    rng = np.random.default_rng(seed)
    holds = events // 2 + lanes
    per_lane = -(-holds // lanes)
    hold_s = rng.exponential(1e-3, (lanes, per_lane))
    gap_s = rng.exponential(2e-4, (lanes, per_lane))
    end = np.cumsum(gap_s + hold_s, axis=1)
    start = (end - hold_s).ravel()
    end = end.ravel()
    lane = np.repeat(np.arange(lanes), per_lane)
    index = np.tile(np.arange(per_lane), lanes)
    serial = (index // recycle) * lanes + lane + 1
    fresh = index % recycle == 0
    stale = index % recycle == recycle - 1
    thread = rng.integers(0, threads, lane.size)
    waited = rng.random(lane.size) < wait_share
    wait_s = np.where(waited, rng.uniform(0.0, 2e-3, lane.size), 0.0)

    timeouts = max(events // 500, 1)
    out_t = rng.uniform(0.0, float(end.max()), timeouts)
    out_wait = rng.uniform(0.0, 5e-3, timeouts)
    out_thread = rng.integers(0, threads, timeouts)

    def part(kind: str, t: np.ndarray, **cols: np.ndarray) -> dict[str, np.ndarray]:
        return {"kind": np.full(t.size, kind, dtype=object), "t": t, **cols}

    parts = [
        part("connect", start[fresh] - 1e-6, conn=serial[fresh], thread=thread[fresh]),
        part("wait", start[waited] - wait_s[waited], conn=np.zeros(waited.sum(), int), thread=thread[waited]),
        part("checkout", start, conn=serial, thread=thread, wait_s=wait_s, reused=~fresh),
        part("checkin", end[~stale], conn=serial[~stale], thread=thread[~stale], duration_s=hold_s.ravel()[~stale]),
        part("close", end[stale], conn=serial[stale], thread=thread[stale], reason=np.full(stale.sum(), "stale")),
        part("wait", out_t - out_wait, conn=np.zeros(timeouts, int), thread=out_thread),
        part("timeout", out_t, conn=np.zeros(timeouts, int), thread=out_thread, wait_s=out_wait),
    ]
    columns: dict[str, np.ndarray] = {}
    for name, default in (
        ("kind", ""),
        ("t", 0.0),
        ("conn", 0),
        ("thread", 0),
        ("wait_s", 0.0),
        ("duration_s", 0.0),
        ("reused", False),
        ("reason", ""),
    ):
        columns[name] = np.concatenate([p.get(name, np.full(p["t"].size, default)) for p in parts])
    priority = np.vectorize(_PRIORITY.__getitem__, otypes=[int])(columns["kind"])
    order = np.lexsort((priority, columns["t"]))[:events]
    columns = {name: values[order] for name, values in columns.items()}

    kind = columns["kind"]
    columns["t"] = columns["t"] - min(float(columns["t"][0]), 0.0)
    columns["seq"] = np.arange(kind.size)
    columns["thread"] = np.char.add("worker-", columns["thread"].astype(str)).astype(object)
    in_use = np.cumsum((kind == "checkout").astype(int) - (kind == "checkin") - (kind == "close"))
    opened = np.cumsum((kind == "connect").astype(int) - (kind == "close"))
    columns["in_use"] = in_use
    columns["idle"] = opened - in_use
    columns["waiting"] = np.cumsum(
        (kind == "wait").astype(int) - ((kind == "checkout") & (columns["wait_s"] > 0)) - (kind == "timeout")
    )
    columns["message"] = np.full(kind.size, "", dtype=object)
    return columns


def synthetic_events(events: int, **options: int | float) -> list[Event]:
    """The synthetic trace as :class:`poolviz.events.Event` tuples, as an ``EventLog`` holds them."""
    columns = synthetic_columns(events, **options)  # type: ignore[arg-type]
    return list(map(Event._make, zip(*(columns[name].tolist() for name in Event._fields), strict=True)))
