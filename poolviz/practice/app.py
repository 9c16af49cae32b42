"""A small Flask application with a peewee pool, to practise on: a healthy, a slow and a leaking endpoint.

It is written the way many real apps are, and it has a real bug. Every
request takes a connection in ``before_request`` and gives it back in
``teardown_request`` (peewee's own advice for Flask). ``/signup`` creates a
user and then sends a welcome message from a fire-and-forget thread, which
reads the user through the pool and never closes its connection: peewee
gives each thread its own connection, so when the thread ends the connection
stays checked out for good. A few signups per worker and the pool is empty;
every request then waits the pool's ``timeout`` and fails (503 here).
``fixed=True`` (``POOLVIZ_APP_FIXED=1``) runs the same thread inside
``db.connection_context()``, the fix.

Everything comes from the environment, so gunicorn can build it with
``poolviz.practice.app:create_app()``: the database URL (``POOLVIZ_APP_URL``,
a peewee ``+pool`` URL; plain peewee pools, not poolviz's), the pool's size
and timeout, the table, and ``POOLVIZ_RECORD_DIR``: when set, the app calls
``poolviz.record(db, directory, leak_threshold=...)`` at start, so each
worker gunicorn forks records its own stream. ``/metrics`` answers the
worker's OpenTelemetry pool metrics in Prometheus' text format.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from peewee import Database, DatabaseError
from playhouse.db_url import connect as peewee_connect
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase

from .. import checks
from ..backends import HOLD_SQL, backend_of
from ..credentials import mask_url
from ..models import User
from . import metrics

logger = logging.getLogger(__name__)

#: The environment variables the app reads (gunicorn builds it with no arguments).
URL_VAR = "POOLVIZ_APP_URL"
FIXED_VAR = "POOLVIZ_APP_FIXED"
TABLE_VAR = "POOLVIZ_APP_TABLE"
MAX_CONNECTIONS_VAR = "POOLVIZ_APP_MAX_CONNECTIONS"
POOL_TIMEOUT_VAR = "POOLVIZ_APP_POOL_TIMEOUT"
RECORD_DIR_VAR = "POOLVIZ_RECORD_DIR"
LEAK_THRESHOLD_VAR = "POOLVIZ_LEAK_THRESHOLD"
METRICS_VAR = "POOLVIZ_APP_METRICS"

DEFAULT_TABLE = "practice_user"
DEFAULT_MAX_CONNECTIONS = 4
DEFAULT_POOL_TIMEOUT = 1
#: The name the app's recording streams carry.
RECORDING_NAME = "practice-app"
#: The header each response carries: the worker process that answered.
WORKER_HEADER = "X-Worker-Pid"
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """What the app is built with; :meth:`from_env` reads the ``POOLVIZ_*`` variables."""

    url: str
    fixed: bool = False
    table: str = DEFAULT_TABLE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    pool_timeout: int = DEFAULT_POOL_TIMEOUT
    record_dir: str | None = None
    leak_threshold: float | None = None
    metrics: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (``os.environ`` by default); ``overrides`` that are not None win."""
        env = os.environ if env is None else env
        url = overrides.get("url") or env.get(URL_VAR)
        if not url:
            raise ValueError(f"the app needs a database URL: set {URL_VAR} (e.g. sqlite+pool:///app.db) or pass url=")
        found: dict[str, Any] = {
            "url": url,
            "fixed": env.get(FIXED_VAR, "").lower() in _TRUE,
            "table": env.get(TABLE_VAR) or DEFAULT_TABLE,
            "max_connections": env.get(MAX_CONNECTIONS_VAR) or DEFAULT_MAX_CONNECTIONS,
            "pool_timeout": env.get(POOL_TIMEOUT_VAR) or DEFAULT_POOL_TIMEOUT,
            "record_dir": env.get(RECORD_DIR_VAR) or None,
            "leak_threshold": env.get(LEAK_THRESHOLD_VAR) or None,
            "metrics": env.get(METRICS_VAR, "1").lower() in _TRUE,
        }
        found.update({k: v for k, v in overrides.items() if v is not None})
        return cls(
            url=str(found["url"]),
            fixed=bool(found["fixed"]),
            table=_table_name(found["table"]),
            max_connections=checks.count("max_connections", found["max_connections"]),
            # peewee reads its pool timeout as whole seconds (and 0 as "wait for ever").
            pool_timeout=checks.count("pool_timeout", found["pool_timeout"]),
            record_dir=None if found["record_dir"] is None else str(found["record_dir"]),
            leak_threshold=checks.leak_threshold(found["leak_threshold"]),
            metrics=bool(found["metrics"]),
        )


def _table_name(value: Any) -> str:
    name = str(value)
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"table must be letters, digits and underscores, starting with a letter; got {value!r}")
    return name


def open_pool(settings: Settings) -> PooledDatabase:
    """The app's pool: peewee's own ``Pooled*Database`` for the URL (``playhouse.db_url``), as an app makes it."""
    scheme = settings.url.split("://", 1)[0].lower()
    if not scheme.endswith("+pool"):
        raise ValueError(f"the app needs a pooled URL such as sqlite+pool:///app.db, got {mask_url(settings.url)!r}")
    extra: dict[str, Any] = {"check_same_thread": False} if scheme.startswith("sqlite") else {}
    db: PooledDatabase = peewee_connect(
        settings.url, max_connections=settings.max_connections, timeout=settings.pool_timeout, **extra
    )
    return db


def user_table(db: Database, table: str) -> Any:
    """The tutorial's ``User`` on ``table``, bound to ``db`` (a subclass: the reader's own ``User`` is untouched)."""

    class AppUser(User):
        class Meta:
            database = db
            table_name = table

    return AppUser


def drop_table(url: str, table: str = DEFAULT_TABLE) -> None:
    """Drop the app's table on ``url`` if it is there: tests and the notebook clean up after themselves."""
    db = open_pool(Settings(url=url, table=_table_name(table), metrics=False))
    try:
        with db.connection_context():
            user_table(db, table).drop_table(safe=True)
    finally:
        db.close_all()


def create_app(
    url: str | None = None,
    *,
    fixed: bool | None = None,
    table: str | None = None,
    max_connections: int | None = None,
    pool_timeout: int | None = None,
    record_dir: str | os.PathLike[str] | None = None,
    leak_threshold: float | None = None,
    metrics: bool | None = None,
) -> Flask:
    """The Flask app: arguments that are not None win over the ``POOLVIZ_*`` environment variables."""
    settings = Settings.from_env(
        url=url,
        fixed=fixed,
        table=table,
        max_connections=max_connections,
        pool_timeout=pool_timeout,
        record_dir=None if record_dir is None else os.fspath(record_dir),
        leak_threshold=leak_threshold,
        metrics=metrics,
    )
    db = open_pool(settings)
    users = user_table(db, settings.table)
    with db.connection_context():
        users.create_table(safe=True)
    # gunicorn --preload forks the workers from this process: no connection may cross the fork.
    db.close_all()
    if settings.record_dir:
        import poolviz

        poolviz.record(db, settings.record_dir, leak_threshold=settings.leak_threshold, name=RECORDING_NAME)
    app = Flask(__name__)
    app.config.update(POOLVIZ_SETTINGS=settings, POOLVIZ_DB=db, POOLVIZ_USERS=users)
    _connection_per_request(app, db, settings)
    _routes(app, db, users, settings)
    return app


def _connection_per_request(app: Flask, db: Database, settings: Settings) -> None:
    # The views that use the database; /health and /metrics must answer even with the pool empty.
    uses_db = {"users", "slow", "signup"}

    @app.before_request
    def take_connection() -> None:
        if settings.metrics:
            metrics.registry_for(db)  # this worker's metrics, from its first request on
        if request.endpoint in uses_db:
            db.connect()

    @app.teardown_request
    def give_it_back(exc: BaseException | None) -> None:
        if not db.is_closed():
            db.close()

    @app.after_request
    def say_who_answered(response: Response) -> Response:
        response.headers[WORKER_HEADER] = str(os.getpid())
        return response

    @app.errorhandler(MaxConnectionsExceeded)
    def pool_exhausted(exc: MaxConnectionsExceeded) -> tuple[Response, int]:
        return jsonify(error=f"pool exhausted: {exc}", pid=os.getpid()), 503


def _routes(app: Flask, db: Database, users: Any, settings: Settings) -> None:
    backend = backend_of(db)

    @app.get("/health")
    def health() -> Response:
        return jsonify(ok=True, pid=os.getpid(), fixed=settings.fixed)

    @app.get("/users")
    def users_view() -> Response:
        newest = [u.username for u in users.select().order_by(users.id.desc()).limit(3)]
        return jsonify(users=users.select().count(), newest=newest, pid=os.getpid())

    @app.get("/slow")
    def slow() -> Response:
        seconds = checks.seconds("seconds", request.args.get("seconds", "0.2"))
        if backend in HOLD_SQL:
            db.execute_sql(HOLD_SQL[backend], (seconds,))
        else:
            time.sleep(seconds)  # SQLite has no sleep of its own: the connection is held all the same
        return jsonify(held_s=seconds, pid=os.getpid())

    @app.route("/signup", methods=["GET", "POST"])
    def signup() -> Response:
        name = request.args.get("name") or f"user-{uuid.uuid4().hex[:12]}"
        user = users.create(username=name)
        send = send_welcome_fixed if settings.fixed else send_welcome
        threading.Thread(target=send, args=(db, users, user.id), name=f"welcome-{user.id}", daemon=True).start()
        return jsonify(id=user.id, username=name, pid=os.getpid())

    @app.get("/metrics")
    def scrape() -> Response:
        body, content_type = metrics.prometheus_text(db, enabled=settings.metrics)
        return Response(body, content_type=content_type)


def send_welcome(db: Database, users: Any, user_id: int) -> None:
    """The bug: a background thread reads through the pool and never gives its connection back.

    peewee connects this thread on its first query (``autoconnect``) and
    nothing closes it: the thread ends, the connection stays checked out.
    """
    try:
        user = users.get_by_id(user_id)
        _deliver(f"Welcome, {user.username}!")
    except (MaxConnectionsExceeded, DatabaseError) as exc:
        logger.warning("welcome message for user %s not sent: %s", user_id, exc)


def send_welcome_fixed(db: Database, users: Any, user_id: int) -> None:
    """The fix: the same work inside ``connection_context()``, which gives the connection back on exit."""
    try:
        with db.connection_context():
            user = users.get_by_id(user_id)
        _deliver(f"Welcome, {user.username}!")
    except (MaxConnectionsExceeded, DatabaseError) as exc:
        logger.warning("welcome message for user %s not sent: %s", user_id, exc)


def _deliver(message: str) -> None:
    # Stands in for the mail server: the message goes nowhere.
    logger.debug("sending %r", message)
