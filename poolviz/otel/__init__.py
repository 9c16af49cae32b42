"""Any instrumented pool's OpenTelemetry metrics: the ``db.client.connection.*`` semantic conventions.

``poolviz.otel.observe(pool)`` publishes a pool's connection counts, limits,
waiting requests, timeouts and its create, wait and use times through an
OpenTelemetry meter provider (:mod:`.observer`, names in :mod:`.names`);
``serve_prometheus()`` serves them to Prometheus over HTTP (:mod:`.prometheus`).

Needs the ``otel`` extra (``pip install poolviz[otel]``): OpenTelemetry's SDK,
its Prometheus exporter and prometheus_client. ``import poolviz`` never loads
them; this package does, when imported.
"""

from __future__ import annotations

from .names import default_pool_name
from .observer import PoolMetrics, observe
from .prometheus import PrometheusServer, serve_prometheus

__all__ = ["PoolMetrics", "PrometheusServer", "default_pool_name", "observe", "serve_prometheus"]
