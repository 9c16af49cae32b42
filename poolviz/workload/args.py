"""The workloads' arguments, checked once: the threaded, asyncio and multi-process loops share these."""

from __future__ import annotations

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
