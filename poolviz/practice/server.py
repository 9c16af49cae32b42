"""The practice app under gunicorn, several workers, in a process group of its own: started, and stopped for sure.

``python -m gunicorn`` runs from this interpreter (the same environment),
``--preload`` builds the app once in the master (``poolviz.record`` is called
there when recording) and forks the workers from it. The server is a new
session, so its process group holds the master and every worker: stopping
it sends SIGTERM to the whole group (gunicorn stops its workers and reaps
them), then SIGKILL to whatever is left, and waits until no process of the
group runs. A forgotten server is killed when its :class:`AppServer` is
garbage-collected or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import checks
from ..credentials import mask_text
from ..testing import SOURCE_ROOT, free_port
from . import load

#: The gunicorn application: the app factory, called in the master (``--preload``).
APP_SPEC = "poolviz.practice.app:create_app()"
_BOOTED = "Booting worker with pid: "


def require_gunicorn() -> None:
    """Raise ``RuntimeError`` saying what to install when gunicorn or Flask is missing from this environment."""
    missing = [name for name in ("gunicorn", "flask") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed in this Python "
            f"({sys.executable}): install the app extra, pip install 'poolviz[app]'"
        )


def port_in_use(host: str, port: int) -> bool:
    """Whether something on this machine already listens on (or holds) ``host:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` still running (zombies, already dead, excluded), read from /proc.

    Without /proc, ``os.killpg(pgid, 0)`` answers whether the group has any process: ``[pgid]`` or ``[]``.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return sorted(members)


def _absolute_sqlite(url: str) -> str:
    # gunicorn runs in another directory: a relative SQLite path is made absolute here, where it was meant.
    scheme, sep, rest = url.partition("://")
    if not scheme.lower().startswith("sqlite") or not rest.startswith("/") or rest.startswith("//"):
        return url
    path, query_sep, query = rest[1:].partition("?")
    if path in ("", ":memory:"):
        raise ValueError(f"the app's workers need a database file they can share, got {url!r}")
    return f"{scheme}{sep}/{os.path.abspath(path)}{query_sep}{query}"


def _has_control_socket() -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class AppServer:
    """The practice app (:mod:`poolviz.practice.app`) served by gunicorn; :meth:`start`, :meth:`stop`, or ``with``.

    ``url`` is the app's database (a peewee ``+pool`` URL); ``workers``
    processes, each with ``threads`` threads (``threads > 1``: the gthread
    worker, else sync); each worker's pool has ``max_connections`` and waits
    ``pool_timeout`` seconds for a connection before answering 503.
    ``fixed`` runs the fixed app; ``record_dir`` records every worker's pool
    there (``leak_threshold`` for leak events). ``port=None`` picks a free one.
    At :meth:`stop`, requests still running get ``graceful_timeout`` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        workers: int = 3,
        threads: int = 1,
        fixed: bool = False,
        record_dir: str | os.PathLike[str] | None = None,
        leak_threshold: float | None = None,
        max_connections: int = 4,
        pool_timeout: int = 1,
        table: str | None = None,
        metrics: bool = True,
        host: str = "127.0.0.1",
        port: int | None = None,
        boot_timeout: float = 60.0,
        graceful_timeout: int = 5,
        env: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a database URL string such as 'sqlite+pool:///app.db', got {url!r}")
        self.db_url = _absolute_sqlite(url)
        self.workers = checks.count("workers", workers)
        self.threads = checks.count("threads", threads)
        self.fixed = bool(fixed)
        self.record_dir = None if record_dir is None else os.path.abspath(record_dir)
        self.leak_threshold = checks.leak_threshold(leak_threshold)
        self.max_connections = checks.count("max_connections", max_connections)
        self.pool_timeout = checks.count("pool_timeout", pool_timeout)
        self.table = table
        self.metrics = bool(metrics)
        self.host = host
        self.port = None if port is None else checks.count("port", port)
        self.boot_timeout = checks.seconds("boot_timeout", boot_timeout, positive=True)
        self.graceful_timeout = checks.count("graceful_timeout", graceful_timeout)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self._logdir: str | None = None
        self._stderr_text = ""
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def url(self) -> str:
        """The app's base URL, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the gunicorn master is running."""
        return self.process is not None and self.process.poll() is None

    def environment(self) -> dict[str, str]:
        """The environment gunicorn runs with: this one, plus the app's settings (``POOLVIZ_APP_*``)."""
        from . import app

        env = {k: v for k, v in os.environ.items() if not k.startswith("POOLVIZ_APP_")}
        env.pop(app.RECORD_DIR_VAR, None)
        env.pop(app.LEAK_THRESHOLD_VAR, None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH")) if p)
        env[app.URL_VAR] = self.db_url
        env[app.FIXED_VAR] = "1" if self.fixed else "0"
        env[app.MAX_CONNECTIONS_VAR] = str(self.max_connections)
        env[app.POOL_TIMEOUT_VAR] = str(self.pool_timeout)
        env[app.METRICS_VAR] = "1" if self.metrics else "0"
        if self.table:
            env[app.TABLE_VAR] = self.table
        if self.record_dir:
            env[app.RECORD_DIR_VAR] = self.record_dir
        if self.leak_threshold is not None:
            env[app.LEAK_THRESHOLD_VAR] = repr(self.leak_threshold)
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The gunicorn command line."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            "gthread" if self.threads > 1 else "sync",
            "--bind",
            f"{self.host}:{self.port}",
            "--preload",
            "--graceful-timeout",
            str(self.graceful_timeout),
            "--log-level",
            "info",
            # gunicorn 23+ opens a control socket at one fixed path per user: two servers would share it.
            *(["--no-control-socket"] if _has_control_socket() else []),
            APP_SPEC,
        ]

    def start(self) -> AppServer:
        """Start gunicorn and return once every worker has booted and the app answers HTTP.

        Raises ``RuntimeError`` (the server stopped, its stderr's end in the
        message, credentials masked) when gunicorn or Flask is missing, the
        port is taken, the app fails to boot or does not answer within
        ``boot_timeout`` seconds.
        """
        if self.running:
            raise RuntimeError(f"the app is already running at {self.url}")
        require_gunicorn()
        if self.port is None:
            self.port = free_port(self.host)
        elif port_in_use(self.host, self.port):
            raise RuntimeError(f"port {self.port} on {self.host} is in use: pick another, or port=None for a free one")
        self._logdir = tempfile.mkdtemp(prefix="poolviz-app-")
        with open(os.path.join(self._logdir, "stderr.log"), "wb") as err:
            self.process = subprocess.Popen(
                self.command(),
                cwd=SOURCE_ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid
        self._finalizer = weakref.finalize(self, _kill_group, self.pgid)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while True:
            code = None if self.process is None else self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"the practice app did not start: gunicorn exited with code {code}. "
                    f"The end of its output:\n{self.stderr_tail()}"
                )
            if len(self.worker_pids()) >= self.workers and load.request(self.url, "/health", timeout=2).ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the practice app did not answer at {self.url} within {self.boot_timeout:g} s "
                    f"({len(self.worker_pids())} of {self.workers} workers booted). "
                    f"The end of its output:\n{self.stderr_tail()}"
                )
            time.sleep(0.05)

    def log_text(self) -> str:
        """gunicorn's output so far (its log and the app's warnings), credentials masked."""
        if self._logdir is not None:
            with contextlib.suppress(OSError):  # removed by stop(): the text read last is kept
                self._stderr_text = Path(self._logdir, "stderr.log").read_text(errors="replace")
        secret = urlsplit(self.db_url).password
        return mask_text(self._stderr_text, [secret] if secret else [])

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of gunicorn's output, credentials masked."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """The workers gunicorn booted (from its log), in boot order; a worker it replaced stays listed."""
        text = self.log_text()
        return [int(line.split(_BOOTED)[1].split()[0]) for line in text.splitlines() if _BOOTED in line]

    def members(self) -> list[int]:
        """The server's processes still running (master and workers): see :func:`group_members`."""
        return [] if self.pgid is None else group_members(self.pgid)

    def wait_recorded(self, timeout: float = 10.0, *, leaks: bool = False) -> None:
        """Return once every worker's recording has caught up with now (the writers flush ~100 ms behind).

        Each stream's watermark says up to when its process has written all
        its events; this waits until every worker's passes the moment of the
        call, so a recording read afterwards holds everything done before it.
        ``leaks=True`` waits a leak threshold and a tenth longer (the pool looks
        for leaks ten times per threshold), so the leak reports due for
        connections taken before the call are in too. Raises ``RuntimeError``
        when the server does not record, or after ``timeout`` seconds more.
        """
        from ..recording import RecordingReader
        from .app import RECORDING_NAME

        if self.record_dir is None:
            raise RuntimeError("this server does not record: start it with record_dir=")
        extra_s = 1.1 * self.leak_threshold if leaks and self.leak_threshold else 0.0
        mark = time.perf_counter() + extra_s
        reader = RecordingReader(self.record_dir, RECORDING_NAME)
        deadline = time.monotonic() + extra_s + checks.seconds("timeout", timeout, positive=True)
        while True:
            reader.poll()
            behind = [pid for pid in self.worker_pids() if _behind(reader, pid, mark)]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the recordings of workers {behind} did not catch up within {timeout:g} s")
            time.sleep(0.02)

    def get(self, path: str, timeout: float = 10.0) -> load.Reply:
        """One GET request to the app (see :func:`poolviz.practice.load.request`)."""
        return load.request(self.url, path, timeout=timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server and wait until none of its processes runs: SIGTERM to the group, SIGKILL after ``timeout``.

        Raises ``RuntimeError`` naming the processes left if any survives SIGKILL.
        """
        if self.process is None or self.pgid is None:
            return
        self.log_text()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.pgid)
            self.process.wait(10)
        deadline = time.monotonic() + timeout
        while self.members() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.members():
            _kill_group(self.pgid)
            deadline = time.monotonic() + 10
            while self.members() and time.monotonic() < deadline:
                time.sleep(0.05)
        left = self.members()
        self.log_text()
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None
        self.process = None
        if left:
            raise RuntimeError(f"processes of the app's group {self.pgid} still run after SIGKILL: {left}")

    def __enter__(self) -> AppServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<AppServer {self.url} {state}, {self.workers} workers, {'fixed' if self.fixed else 'leaky'}>"


def _behind(reader: Any, pid: int, mark: float) -> bool:
    stream = reader.processes.get(pid)
    return stream is None or (not stream.ended and stream.watermark < mark)


def serve(url: str, **kwargs: Any) -> AppServer:
    """Start the practice app under gunicorn (:class:`AppServer` ``(url, **kwargs)``) and return it running."""
    return AppServer(url, **kwargs).start()
