"""Real HTTP load on a running app: threads sending GET requests with an endpoint mix, for a duration.

Each thread is one impatient visitor after another: it picks a path from the
mix (weighted, from its own seeded generator), sends the request on a fresh
connection (``http.client``, ``Connection: close``, as gunicorn's sync
workers answer), reads the whole answer and notes its status, latency and
the worker process that answered (the app's ``X-Worker-Pid`` header). A
request that gets no answer (refused, reset, timed out) has status 0 and
its error's text.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import checks

WORKER_HEADER = "X-Worker-Pid"


@dataclass(frozen=True)
class Reply:
    """One request: its path, status (0: no answer), latency, start (seconds into the run) and answering worker."""

    path: str
    status: int
    latency_s: float
    started_s: float
    pid: int | None = None
    error: str = ""
    body: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300


def request(base_url: str, path: str, *, timeout: float = 10.0, t0: float | None = None) -> Reply:
    """GET ``path`` from the app at ``base_url``; never raises for a failed request (status 0, error text)."""
    host, port = _host_port(base_url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        pid = response.getheader(WORKER_HEADER)
        status, error = response.status, ""
    except (OSError, http.client.HTTPException) as exc:
        body, pid, status, error = b"", None, 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    done = time.perf_counter()
    return Reply(
        path=path,
        status=status,
        latency_s=done - started,
        started_s=started - (started if t0 is None else t0),
        pid=int(pid) if pid and pid.isdigit() else None,
        error=error,
        body=body,
    )


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"base_url must be an http:// URL such as http://127.0.0.1:8000, got {base_url!r}")
    try:
        return parts.hostname, parts.port or 80
    except ValueError:
        raise ValueError(f"base_url's port must be a number from 0 to 65535, got {base_url!r}") from None


@dataclass
class LoadResult:
    """What a :func:`drive` run got back: every reply, in the order they finished."""

    replies: list[Reply]
    elapsed_s: float
    concurrency: int
    mix: dict[str, float]

    def frame(self) -> Any:
        """One row per request: path, status, ok, latency_s, started_s, pid, error (a pandas DataFrame)."""
        import pandas as pd

        columns = ["path", "status", "ok", "latency_s", "started_s", "pid", "error"]
        rows = [(r.path, r.status, r.ok, r.latency_s, r.started_s, r.pid, r.error) for r in self.replies]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> Any:
        """Per path: requests, ok, failed, the statuses seen, latency p50/p95/max in ms (a pandas DataFrame)."""
        import pandas as pd

        frame = self.frame()
        rows = []
        for path, group in frame.groupby("path", sort=True):
            latency = group["latency_s"] * 1e3
            rows.append(
                {
                    "path": path,
                    "requests": len(group),
                    "ok": int(group["ok"].sum()),
                    "failed": int((~group["ok"]).sum()),
                    "statuses": dict(sorted(group["status"].value_counts().items())),
                    "p50 ms": latency.quantile(0.5),
                    "p95 ms": latency.quantile(0.95),
                    "max ms": latency.max(),
                }
            )
        return pd.DataFrame(rows).set_index("path")

    def count(self, *, path: str | None = None, status: int | None = None) -> int:
        """How many requests (to ``path``, with ``status``, when given)."""
        return sum(
            1 for r in self.replies if (path is None or r.path == path) and (status is None or r.status == status)
        )

    @property
    def workers(self) -> set[int]:
        """The worker processes that answered."""
        return {r.pid for r in self.replies if r.pid is not None}


def _mix(mix: Mapping[str, Any] | str) -> dict[str, float]:
    if isinstance(mix, str):
        mix = {mix: 1}
    if not isinstance(mix, Mapping) or not mix:
        raise ValueError(f"mix must be a path or a mapping of paths to weights such as {{'/users': 9}}, got {mix!r}")
    weights = {}
    for path, weight in mix.items():
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            raise ValueError(f"each path in mix must start with '/' and hold no spaces, got {path!r}")
        weights[path] = checks.number(f"mix[{path!r}]", weight, positive=True)
    return weights


def drive(
    base_url: str,
    mix: Mapping[str, Any] | str,
    *,
    concurrency: int = 4,
    duration: float = 2.0,
    requests: int | None = None,
    timeout: float = 10.0,
    seed: int = 0,
) -> LoadResult:
    """Send GET requests to ``base_url`` from ``concurrency`` threads for ``duration`` seconds.

    ``mix`` maps paths to weights (``{"/users": 8, "/signup": 1}``), or is a
    single path. ``requests`` caps the total, when given (the run then ends
    at whichever comes first). Every thread finishes its request in flight,
    so the run can last up to ``timeout`` past ``duration``.
    """
    _host_port(base_url)
    weights = _mix(mix)
    concurrency = checks.count("concurrency", concurrency)
    duration = checks.seconds("duration", duration, positive=True)
    timeout = checks.seconds("timeout", timeout, positive=True)
    budget = None if requests is None else checks.count("requests", requests)
    seed = checks.integer("seed", seed)
    paths, cumulative = list(weights), list(weights.values())
    replies: list[Reply] = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    deadline = t0 + duration

    def visitor(index: int) -> None:
        rng = random.Random(seed * 1_000_003 + index)
        while time.perf_counter() < deadline:
            with lock:
                if budget is not None and len(replies) + in_flight[0] >= budget:
                    return
                in_flight[0] += 1
            reply = request(base_url, rng.choices(paths, cumulative)[0], timeout=timeout, t0=t0)
            with lock:
                in_flight[0] -= 1
                replies.append(reply)

    in_flight = [0]
    threads = [
        threading.Thread(target=visitor, args=(i,), name=f"visitor-{i}", daemon=True) for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + timeout + 10)
    return LoadResult(replies=replies, elapsed_s=time.perf_counter() - t0, concurrency=concurrency, mix=weights)
