"""Compare's configurations: checked up front, placed on a database, built into pools and closed again.

A configuration names its pool library (``"peewee"``, the default,
``"sqlalchemy"`` or ``"psycopg"``) and that library's own settings, as
:data:`poolviz.pools.factory.SETTINGS` lists them; an optional ``label``
names it in the table. Every value is checked before anything connects, and a
bad one is a ``ValueError`` that names the config, the value and what is
allowed. :func:`place` decides where each configuration runs: on the URL
given, or on SQLite when there is none or its server does not answer, where
psycopg_pool (PostgreSQL only) is skipped with a note saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import checks
from ..backends import backend_of_url
from ..credentials import mask_url
from ..pools.factory import LIBRARIES, SETTINGS, library, settings_for
from ..workload import WORKLOAD_FIELDS, WorkloadSpec

logger = logging.getLogger("poolviz.live")

#: peewee's settings as Compare has always taken them (``timeout=None`` fails at once, as in peewee).
POOL_KEYS = ("max_connections", "timeout", "stale_timeout")
POOL_DEFAULTS: dict[str, Any] = {"max_connections": 4, "timeout": 10.0, "stale_timeout": None}

#: How each library's pool is named in titles and tables.
LIBRARY_TITLES = {
    "peewee": "peewee PooledDatabase",
    "sqlalchemy": "SQLAlchemy QueuePool",
    "psycopg": "psycopg_pool ConnectionPool",
}

_CONFIG_KEYS = ("library", "label")


def setting_names(name: str) -> tuple[str, ...]:
    """The settings a config of library ``name`` may give."""
    return POOL_KEYS if name == "peewee" else tuple(SETTINGS[name])


def check_compare(
    url: str | None, configs: Any, workload: WorkloadSpec | None, settings: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], WorkloadSpec]:
    """Compare's arguments checked: one dict per config (see :func:`check_config`) and the workload.

    ``settings`` are workload fields and pool settings shared by every config
    whose library takes them (``timeout`` by all three); a config's own value wins.
    """
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise ValueError(f"url: {problem}")
    pool_names = {n for lib in LIBRARIES for n in setting_names(lib)}
    known = {*WORKLOAD_FIELDS, *pool_names}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    fields = {k: v for k, v in settings.items() if k in WORKLOAD_FIELDS}
    if workload is not None and not isinstance(workload, WorkloadSpec):
        raise TypeError(f"workload must be a WorkloadSpec, got {workload!r}")
    spec = (workload or WorkloadSpec()).replace(**fields)
    shared = {k: v for k, v in settings.items() if k in pool_names}
    if isinstance(configs, (str, Mapping)) or not isinstance(configs, Sequence) or len(configs) < 1:
        raise ValueError(f"configs must be a list of dicts of pool settings, got {configs!r}")
    checked = [check_config(i, config, shared) for i, config in enumerate(configs)]
    unused = sorted(k for k in shared if not any(k in setting_names(c["library"]) for c in checked))
    if unused:
        raise ValueError(f"no config's pool library takes {', '.join(unused)}")
    return checked, spec


def check_config(i: int, config: Any, shared: Mapping[str, Any]) -> dict[str, Any]:
    """Config ``i`` checked: ``library``, ``settings`` (all of them), ``limit``, ``label`` and ``given``.

    ``limit`` is the most connections the pool may hold at once (what its view
    draws as the ceiling): peewee's ``max_connections``, SQLAlchemy's
    ``pool_size + max_overflow``, psycopg_pool's ``max_size``. ``given`` names
    the settings the caller chose (the rest are defaults).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"configs[{i}] must be a dict like {{'max_connections': 4}}, got {config!r}")
    try:
        name = library(config.get("library", "peewee"))
    except ValueError as exc:
        raise ValueError(f"configs[{i}]: {exc}") from None
    names = setting_names(name)
    extra = sorted(set(config) - {*names, *_CONFIG_KEYS})
    if extra:
        raise ValueError(
            f"configs[{i}] has unknown key(s) {', '.join(extra)}; "
            f"{name} pools take {', '.join(names)} (and {', '.join(_CONFIG_KEYS)})"
        )
    given = {k: config[k] for k in names if k in config}
    chosen = {**{k: v for k, v in shared.items() if k in names}, **given}
    try:
        values = _peewee_settings(chosen) if name == "peewee" else settings_for(name, **chosen)
    except ValueError as exc:
        raise ValueError(f"configs[{i}]: {exc}") from None
    limit = {
        "peewee": lambda: values["max_connections"],
        "sqlalchemy": lambda: values["pool_size"] + values["max_overflow"],
        "psycopg": lambda: values["max_size"],
    }[name]()
    label = config.get("label") or _default_label(name, "library" in config, given) or f"config {i + 1}"
    return {
        "library": name,
        "settings": values,
        "limit": limit,
        "given": tuple(given),
        "label": str(label),
        # peewee's limit under its old key: the dashboard's and the tests' readers use it.
        "max_connections": limit,
    }


def _peewee_settings(chosen: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**POOL_DEFAULTS, **chosen}
    # Each view draws its pool's limit, so "no limit" (None) is not offered here.
    limit = checks.count("max_connections", merged["max_connections"])
    _limit, stale, timeout = checks.pool_args(limit, merged["stale_timeout"], merged["timeout"])
    return {"max_connections": limit, "timeout": timeout, "stale_timeout": stale}


def _default_label(name: str, named: bool, given: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in given.items())
    if not named:
        return shown
    return f"{name}: {shown}" if shown else name


def describe(config: Mapping[str, Any]) -> str:
    """The settings ``config`` chose, in one line (``"defaults"`` when it chose none)."""
    values = config["settings"]
    shown = [f"{k}={values[k]}" for k in config["given"]]
    return ", ".join(shown) if shown else "defaults"


def url_problem(url: Any) -> str | None:
    """Why ``url`` cannot be compared on (None when it can): a sqlite, mysql or postgresql URL, ``+pool`` optional."""
    if not isinstance(url, str):
        return f"url must be a string like 'postgresql://postgres@127.0.0.1:5432/test', got {url!r}"
    if backend_of_url(url) not in ("sqlite", "mysql", "postgresql"):
        return f"the URL must name sqlite, mysql, mariadb or postgresql (with or without +pool), got {mask_url(url)!r}"
    return None


def place(
    url: str | None,
    configs: Sequence[Mapping[str, Any]],
    reachable: Callable[[str], str | None] | None = None,
) -> tuple[str | None, list[str], str]:
    """Where the configs run: ``(url or None for SQLite, a skip reason per config ('' runs), a note)``.

    A server URL whose server does not answer (``reachable(url)`` gives the
    reason) falls back to SQLite with a note; psycopg_pool, which connects to
    PostgreSQL only, is skipped wherever the run is not on PostgreSQL.
    """
    note = ""
    if url is not None and backend_of_url(url) != "sqlite":
        if reachable is None:
            from ..servers.reachability import reachable as probe

            def reachable(u: str) -> str | None:
                return probe(u, timeout=1.0)

        reason = reachable(url)
        if reason:
            note = f"{mask_url(url)} does not answer ({reason}): peewee and SQLAlchemy run on SQLite instead."
            url = None
    backend = "sqlite" if url is None else backend_of_url(url)
    skips = []
    for config in configs:
        if config["library"] == "psycopg" and backend != "postgresql":
            where = "no PostgreSQL server answers" if note else f"this run is on {backend}"
            skips.append(f"skipped: psycopg_pool connects to PostgreSQL only, and {where}")
        else:
            skips.append("")
    if any(skips) and not note:
        note = "psycopg_pool connects to PostgreSQL only: give Compare a postgresql:// url to run it."
    return url, skips, note


def build_pool(config: Mapping[str, Any], url: str) -> Any:
    """An instrumented pool for ``config`` on ``url`` (a peewee database, a SQLAlchemy Engine or a ConnectionPool)."""
    if config["library"] == "peewee":
        from ..urls import connect

        scheme = url.partition("://")[0]
        pooled = url if "+" in scheme else f"{scheme}+pool{url[len(scheme) :]}"
        return connect(pooled, **config["settings"])
    from ..pools.factory import build

    return build(config["library"], url, **config["settings"])


def events_of(pool: Any) -> Any:
    """The pool's :class:`~poolviz.events.EventLog`, whatever its library."""
    from ..pools import events_of as find

    return find(pool)


def close_pool(pool: Any) -> None:
    """Close ``pool`` and its connections, whatever its library; a failure is logged, not raised."""
    from .settings import close_pool as close

    try:
        close(pool)
    except Exception:
        logger.warning("poolviz compare: closing a pool failed", exc_info=True)
