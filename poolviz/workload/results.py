"""What a run produced: one record per request and the run's result."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CLIENT_SLEEP = "time.sleep"


@dataclass
class RequestRecord:
    """What happened to one request. Times are seconds on the pool's event clock.

    ``start`` is when the request arrived (open loop) or began (closed loop);
    ``queued_s`` how long it sat in the open loop's queue before a thread took
    it; ``wait_s`` the pool wait from its ``checkout`` (or ``timeout``) event;
    ``held_s`` how long it held the connection (from its ``checkin`` event);
    ``hold_s`` the hold time drawn for it; ``latency_s`` arrival to done.
    """

    worker: int
    index: int
    thread: str
    start: float
    latency_s: float
    queued_s: float
    wait_s: float
    held_s: float
    hold_s: float
    conn: int
    seq: int
    ok: bool
    error_type: str = ""
    error_message: str = ""


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RequestRecord))


@dataclass
class WorkloadResult:
    """The outcome of a run: per-request records, the run's events and its settings.

    ``events`` holds only the events recorded between the run's start and end
    (table setup and clean-up are left out), so each request there is one
    ``checkout`` or ``timeout`` event.
    """

    mode: str
    records: list[RequestRecord]
    elapsed_s: float
    events: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    hold_method: str = CLIENT_SLEEP
    stopped: bool = False
    abandoned: int = 0
    #: The prefix of the ``User`` rows this run inserted (``username LIKE 'prefix%'``), for a clean-up done later.
    row_prefix: str = ""

    @property
    def requests(self) -> int:
        """Requests that ran (ok or failed)."""
        return len(self.records)

    @property
    def requests_ok(self) -> int:
        """Requests that completed without an error."""
        return sum(1 for r in self.records if r.ok)

    @property
    def requests_failed(self) -> int:
        """Requests that ended in an error (recorded, not raised)."""
        return sum(1 for r in self.records if not r.ok)

    @property
    def throughput_rps(self) -> float:
        """Completed requests per second of the run."""
        return self.requests_ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def requests_frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per request, ordered by start time."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records], columns=list(RECORD_FIELDS))

    def summary(self) -> dict[str, Any]:
        """The run's figures as a JSON-able dict (counts, rates, latency percentiles, settings)."""
        latencies = sorted(r.latency_s for r in self.records if r.ok)
        errors: dict[str, int] = {}
        for r in self.records:
            if not r.ok:
                errors[r.error_type] = errors.get(r.error_type, 0) + 1
        return {
            "mode": self.mode,
            **self.settings,
            "hold_method": self.hold_method,
            "requests": self.requests,
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "errors": errors,
            "abandoned": self.abandoned,
            "stopped": self.stopped,
            "elapsed_s": self.elapsed_s,
            "throughput_rps": self.throughput_rps,
            "latency_mean_s": sum(latencies) / len(latencies) if latencies else None,
            "latency_p50_s": _quantile(latencies, 0.50),
            "latency_p95_s": _quantile(latencies, 0.95),
            "latency_p99_s": _quantile(latencies, 0.99),
            "latency_max_s": latencies[-1] if latencies else None,
        }


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    # Linear interpolation, as numpy's and pandas' default.
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
