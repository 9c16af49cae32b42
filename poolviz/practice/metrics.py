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
