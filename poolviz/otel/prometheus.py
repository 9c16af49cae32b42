"""The metrics served to Prometheus over HTTP: OpenTelemetry's Prometheus exporter behind prometheus_client's server.

:func:`serve_prometheus` makes a meter provider whose one reader is a
``PrometheusMetricReader`` with a registry of its own (not prometheus_client's
global one, so two servers never serve each other's metrics) and serves that
registry on ``http://host:port/metrics``. Every scrape is a collection: the
observed pools are drained, and the page shows what they did up to the scrape.
Names follow the exporter's translation: ``db.client.connection.count`` is
``db_client_connection_count``, the timeouts ``db_client_connection_timeouts_total``,
the histograms ``db_client_connection_wait_time_seconds_bucket`` and so on.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, start_http_server

from .. import checks
from .observer import DEFAULT_DRAIN_INTERVAL_S, PoolMetrics, _instruments_for, observe


class PrometheusServer:
    """What :func:`serve_prometheus` returns: ``url``, the ``meter_provider`` to observe pools through, ``stop()``.

    It unpacks as ``url, stop = serve_prometheus()``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.reader = PrometheusMetricReader(registry=self.registry)
        #: Observe pools through this provider (or call :meth:`observe`) to have them served.
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound_port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        #: The page to scrape: ``http://127.0.0.1:PORT/metrics``.
        self.url = f"http://{shown}:{bound_port}/metrics"
        self.port: int = bound_port
        self._stopped = False
        self._lock = threading.Lock()

    def observe(
        self, pool: Any, pool_name: str | None = None, *, drain_interval: float | None = DEFAULT_DRAIN_INTERVAL_S
    ) -> PoolMetrics:
        """:func:`~poolviz.otel.observe` ``pool`` through this server's provider: served until :meth:`stop`."""
        return observe(pool, self.meter_provider, pool_name, drain_interval=drain_interval)

    def stop(self) -> None:
        """Stop serving: close the pools observed through this provider, the HTTP server and the provider."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for pool in _instruments_for(self.meter_provider).pools():
            pool.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.meter_provider.shutdown()

    def __iter__(self) -> Any:
        return iter((self.url, self.stop))

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<PrometheusServer {self.url} {'stopped' if self._stopped else 'serving'}>"


def serve_prometheus(port: int = 0, host: str = "127.0.0.1") -> PrometheusServer:
    """Serve OpenTelemetry metrics to Prometheus on ``http://host:port/metrics`` (``port=0``: a free one).

    Observe pools through the result's ``meter_provider`` (or its
    ``observe(pool)``); ``stop()`` closes them and the server.
    """
    number = checks.integer("port", port)
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be 0 (a free port) or a port number up to 65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be an address string such as '127.0.0.1', got {host!r}")
    return PrometheusServer(host, number)
