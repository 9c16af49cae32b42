"""A real application to practise on: a Flask app with a peewee pool, served by gunicorn, and real HTTP load.

- :mod:`.app`: the Flask app (``create_app``), with a healthy (``/users``), a
  slow (``/slow``) and a leaking (``/signup``) endpoint, and the fix
  (``fixed=True``);
- :mod:`.server`: the app under gunicorn with several workers, in its own
  process group, started and stopped for sure (:func:`serve`, :class:`AppServer`);
- :mod:`.load`: a load driver sending real HTTP requests from threads
  (:func:`drive`), with each request's status and latency;
- :mod:`.metrics`: each worker's OpenTelemetry pool metrics, served to Prometheus.
"""

from __future__ import annotations

from typing import Any

from .load import LoadResult, drive
from .server import AppServer, serve

__all__ = ["AppServer", "LoadResult", "create_app", "drive", "serve"]


def __getattr__(name: str) -> Any:
    # The app needs Flask (the "app" extra); the server and the load driver need only the standard library.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'poolviz.practice' has no attribute {name!r}")
