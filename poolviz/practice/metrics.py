"""The practice app's OpenTelemetry pool metrics, served in Prometheus' text format, one set per worker process.

Each worker publishes its own pool's metrics (``poolviz.otel.observe``)
through the OpenTelemetry Prometheus exporter into a registry of its own.
The set is made at the first request a process serves: gunicorn forks the
workers from a master that serves nothing, so a worker never inherits the
master's readings (a meter made before the fork would count in two processes).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .. import checks

#: Prometheus' text format, as ``prometheus_client`` writes it.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_lock = threading.Lock()
# (pid, id(pool)) -> the registry its metrics are read from.
_registries: dict[tuple[int, int], Any] = {}


def registry_for(db: Any) -> Any:
    """This process's ``prometheus_client.CollectorRegistry`` holding ``db``'s pool metrics (made on first use)."""
    key = (os.getpid(), id(db))
    found = _registries.get(key)
    if found is not None:
        return found
    with _lock:
        found = _registries.get(key)
        if found is None:
            found = _registries[key] = _observe(db)
        return found


def _observe(db: Any) -> Any:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    from ..otel import observe

    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    observe(db, meter_provider=provider)
    return registry


def prometheus_text(db: Any, *, enabled: bool = True) -> tuple[bytes, str]:
    """``(body, content type)`` of a scrape of ``db``'s pool metrics in this process."""
    if not enabled:
        return b"# metrics are off (POOLVIZ_APP_METRICS=0)\n", TEXT_CONTENT_TYPE
    from prometheus_client import generate_latest

    return generate_latest(registry_for(db)), TEXT_CONTENT_TYPE


def scrape_workers(base_url: str, workers: list[int], *, tries: int = 200, timeout: float = 10.0) -> dict[int, str]:
    """One ``/metrics`` page from each of ``workers``: ``{pid: text}``.

    gunicorn hands each connection to whichever worker accepts it first, so
    the page is asked for again until every worker has answered (or ``tries``
    requests went out: the pages got so far are returned).
    """
    from .load import request

    wanted = set(workers)
    pages: dict[int, str] = {}
    for _ in range(checks.count("tries", tries)):
        reply = request(base_url, "/metrics", timeout=timeout)
        if reply.ok and reply.pid is not None:
            pages[reply.pid] = reply.body.decode("utf-8", errors="replace")
        if wanted <= set(pages):
            break
    return pages


def _samples(text: str) -> dict[str, float]:
    # Every sample of the page, keyed by its name and the connection state (when it has one); one pool per page.
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            state = sample.labels.get("db_client_connection_state")
            if "le" not in sample.labels:
                found[sample.name + (f"[{state}]" if state else "")] = sample.value
    return found


def metrics_table(pages: dict[int, str]) -> Any:
    """The pool metrics of each worker's page side by side, one row per worker (a pandas DataFrame).

    Columns: connections used and idle, the pool's max, requests pending,
    timeouts, checkouts and the mean wait for one (the wait histogram's count
    and mean), returns and the mean hold (the use histogram's).
    """
    import pandas as pd

    p = "db_client_connection_"
    rows = []
    for pid, text in sorted(pages.items()):
        s = _samples(text)
        rows.append(
            {
                "worker": pid,
                "used": s.get(f"{p}count[used]"),
                "idle": s.get(f"{p}count[idle]"),
                "max": s.get(f"{p}max"),
                "pending": s.get(f"{p}pending_requests"),
                "timeouts": s.get(f"{p}timeouts_total"),
                "checkouts": s.get(f"{p}wait_time_seconds_count"),
                "wait mean ms": _mean_ms(s, f"{p}wait_time_seconds"),
                "returns": s.get(f"{p}use_time_seconds_count"),
                "use mean ms": _mean_ms(s, f"{p}use_time_seconds"),
            }
        )
    return pd.DataFrame(rows).set_index("worker")


def _mean_ms(samples: dict[str, float], histogram: str) -> float:
    count = samples.get(f"{histogram}_count", 0.0)
    return samples.get(f"{histogram}_sum", 0.0) / count * 1e3 if count else float("nan")
