"""How poolviz.data.analysis scales: seconds for 10k, 100k and 1M events, and the growth ratios.

Linear code grows about 10x per 10x more events; the ratios printed show
whether each step stays there. Run: ``.venv/bin/python benchmarks/analysis_speed.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from synthetic import synthetic_events

from poolviz.data import analysis
from poolviz.data.frames import events_to_frame

SIZES = (10_000, 100_000, 1_000_000)


def best_of(repeats: int, work: Callable[..., Any], *args: Any) -> float:
    """The fastest of ``repeats`` timed calls ``work(*args)``, in seconds (the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    steps: dict[str, Callable[[Any, Any], Any]] = {
        "events_to_frame": lambda events, frame: events_to_frame(events),
        "hold_intervals": lambda events, frame: analysis.hold_intervals(frame),
        "occupancy": lambda events, frame: analysis.occupancy(frame),
        "wait_stats": lambda events, frame: analysis.wait_stats(frame),
        "waits_in_progress": lambda events, frame: analysis.waits_in_progress(frame),
        "fairness": lambda events, frame: analysis.fairness(frame),
        "summarize": lambda events, frame: analysis.summarize(frame, 8),
    }
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for size in SIZES:
        events = synthetic_events(size)
        frame = events_to_frame(events)
        holds = len(analysis.hold_intervals(frame))
        print(f"{size:>9,} events: {holds:,} holds, {frame['conn'].max()} connections, span {frame['t'].max():.1f} s")
        for name, step in steps.items():
            seconds[name].append(best_of(3, step, events, frame))

    header = "".join(f"{size:>12,}" for size in SIZES)
    print(f"\n{'seconds':<18}{header}{'10k->100k':>12}{'100k->1M':>12}")
    for name, times in seconds.items():
        cells = "".join(f"{s:>12.4f}" for s in times)
        print(f"{name:<18}{cells}{times[1] / times[0]:>11.1f}x{times[2] / times[1]:>11.1f}x")
    per_event = seconds["hold_intervals"][-1] / SIZES[-1] * 1e9
    print(f"\nhold_intervals at 1M events: {per_event:.0f} ns per event")


if __name__ == "__main__":
    main()
