"""The workloads' arguments, checked once, and the draws they make: threads, asyncio tasks and processes share these.

A closed loop's hold and think times (:meth:`ClosedLoopArgs.draws`) and an open
loop's Poisson arrivals (:meth:`OpenLoopArgs.arrivals`) are drawn here only, so
the threaded and the asyncio loops send the same traffic for the same seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import checks
from .distributions import Distribution


class ClosedLoopArgs(NamedTuple):
    """A closed loop's checked arguments: how many workers, requests each, hold and think times, seed."""

    workers: int
    requests: int
    hold: Distribution
    think: Distribution
    seed: int

    def settings(self, workers_key: str = "workers") -> dict[str, Any]:
        """What a result records about them (``workers_key`` names the workers: threads, tasks…)."""
        return {
            workers_key: self.workers,
            "requests_per_worker": self.requests,
            "hold": str(self.hold),
            "think": str(self.think),
            "seed": self.seed,
        }

    def draws(self, worker: int) -> Iterator[tuple[int, float, float]]:
        """``(index, hold_s, think_s)`` for each request of ``worker``, from its own seeded ``random.Random``."""
        rng = random.Random(f"poolviz:{self.seed}:{worker}")
        for index in range(self.requests):
            yield index, self.hold.sample(rng), self.think.sample(rng)


def closed_loop_args(
    workers: Any, requests: Any, hold: Any, think: Any, seed: Any, *, workers_name: str = "workers"
) -> ClosedLoopArgs:
    """Check a closed loop's arguments; ``workers_name`` is how errors call the workers (``tasks``…)."""
    return ClosedLoopArgs(
        checks.count(workers_name, workers),
        checks.count("requests", requests),
        Distribution.parse(hold, "hold"),
        Distribution.parse(think, "think"),
        checks.integer("seed", seed),
    )


class OpenLoopArgs(NamedTuple):
    """An open loop's checked arguments: arrival rate, how long or how many, hold times, seed."""

    rate: float
    duration: float | None
    requests: int | None
    hold: Distribution
    seed: int

    def settings(self) -> dict[str, Any]:
        """What a result records about them."""
        return {
            "rate": self.rate,
            "duration": self.duration,
            "requests_planned": self.requests,
            "hold": str(self.hold),
            "seed": self.seed,
        }

    def arrivals(self, t0: float) -> Iterator[Arrival]:
        """The Poisson arrivals, each yielded with the seconds left until it is due (``delay``).

        Arrival times count from the first ``next()``; ``at`` is that time on
        the clock whose zero is the ``time.perf_counter()`` reading ``t0`` (an
        event log's). Gaps and hold times come from two ``random.Random``
        seeded with ``seed``, so stopping early does not shift the later draws.
        """
        gaps = random.Random(f"poolviz:{self.seed}:arrivals")
        holds = random.Random(f"poolviz:{self.seed}:holds")
        began = time.perf_counter()
        due = 0.0
        index = 0
        while self.requests is None or index < self.requests:
            due += gaps.expovariate(self.rate)
            if self.duration is not None and due > self.duration:
                return
            yield Arrival(index, began - t0 + due, self.hold.sample(holds), began + due - time.perf_counter())
            index += 1


class Arrival(NamedTuple):
    """One open-loop arrival: its number, when it arrives (log clock), its hold time and how long until then."""

    number: int
    at: float
    hold_s: float
    delay: float


def open_loop_args(rate: Any, duration: Any, requests: Any, hold: Any, seed: Any) -> OpenLoopArgs:
    """Check an open loop's arguments: a positive rate, and a duration or a request count (at least one)."""
    rate = checks.number("rate", rate, positive=True)
    if duration is None and requests is None:
        raise ValueError("an open loop needs duration (seconds) or requests (a count), got neither")
    return OpenLoopArgs(
        rate,
        None if duration is None else checks.seconds("duration", duration, positive=True),
        None if requests is None else checks.count("requests", requests),
        Distribution.parse(hold, "hold"),
        checks.integer("seed", seed),
    )
