"""``--pool peewee|sqlalchemy|psycopg`` and each library's own settings as options, checked before anything connects.

Every library option defaults to "not given" (``None``), so an option of
another library is refused by name rather than silently ignored; the values
given are then checked by :func:`poolviz.pools.factory.settings_for` (the same
rules as ``factory.build``). ``--timeout`` is every library's.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..credentials import mask_url
from .values import UsageError, non_negative_int, positive_int, seconds_or_none

LIBRARIES = ("peewee", "sqlalchemy", "psycopg")

#: Each library's options: (option, setting, argparse keywords).
OPTIONS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "peewee": [
        (
            "--max-connections",
            "max_connections",
            {"type": positive_int, "help": "the pool's limit on open connections (default: 4)"},
        ),
        (
            "--stale-timeout",
            "stale_timeout",
            {
                "type": seconds_or_none,
                "help": "seconds after which the pool closes a connection instead of reusing it (default: none)",
            },
        ),
    ],
    "sqlalchemy": [
        ("--pool-size", "pool_size", {"type": positive_int, "help": "QueuePool's steady size (default: 4)"}),
        (
            "--max-overflow",
            "max_overflow",
            {"type": non_negative_int, "help": "connections opened beyond --pool-size, closed on return (default: 0)"},
        ),
        ("--use-lifo", "use_lifo", {"action": "store_true", "help": "hand out the last returned connection first"}),
        ("--pre-ping", "pre_ping", {"action": "store_true", "help": "test each connection before handing it out"}),
        (
            "--recycle",
            "recycle",
            {"type": seconds_or_none, "help": "close connections older than this many seconds (default: none)"},
        ),
    ],
    "psycopg": [
        (
            "--min-size",
            "min_size",
            {"type": non_negative_int, "help": "connections kept open, filled in the background (default: 0)"},
        ),
        ("--max-size", "max_size", {"type": positive_int, "help": "the pool's limit (default: 4)"}),
        (
            "--max-waiting",
            "max_waiting",
            {"type": non_negative_int, "help": "callers allowed to wait before TooManyRequests; 0: no limit"},
        ),
        (
            "--max-lifetime",
            "max_lifetime",
            {"type": seconds_or_none, "help": "close connections older than this, with jitter (default: 3600)"},
        ),
        (
            "--max-idle",
            "max_idle",
            {"type": seconds_or_none, "help": "close surplus connections idle this long (default: 600)"},
        ),
    ],
}
_OWNER = {setting: library for library, options in OPTIONS.items() for _, setting, _ in options}
_OPTION = {setting: option for options in OPTIONS.values() for option, setting, _ in options}


def add_pool_options(parser: argparse.ArgumentParser, *, sized: bool = True) -> None:
    """``--pool`` and every library's options; ``sized=False`` leaves out the size options (a sweep sets them)."""
    parser.add_argument(
        "--pool",
        choices=LIBRARIES,
        default="peewee",
        help="the pool library: peewee's PooledDatabase, SQLAlchemy's QueuePool (through an Engine) or "
        "psycopg_pool's ConnectionPool (PostgreSQL only); with a +asyncpool --url, asyncio tasks on peewee's "
        "asyncio pool, an AsyncEngine or an AsyncConnectionPool (default: peewee)",
    )
    sizes = {"max_connections", "pool_size", "max_size"}
    for library, options in OPTIONS.items():
        group = parser.add_argument_group(f"--pool {library} settings")
        for option, setting, keywords in options:
            if sized or setting not in sizes:
                group.add_argument(option, dest=setting, default=None, **keywords)


def pool_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--pool`` library's settings given on the command line (with ``--timeout``), checked.

    Raises :class:`UsageError` for an option of another library, a library
    that cannot reach the ``--url``'s database, or a value the library refuses.
    """
    from ..pools.factory import settings_for

    library = args.pool
    given: dict[str, Any] = {}
    for setting, owner in _OWNER.items():
        value = getattr(args, setting, None)
        if value is None or value is False:
            continue
        if owner != library:
            allowed = ", ".join(option for option, _, _ in OPTIONS[library]) + ", --timeout"
            raise UsageError(f"{_OPTION[setting]} is a --pool {owner} setting; --pool {library} takes {allowed}")
        given[setting] = value
    if library == "peewee":
        return {**given, "timeout": args.timeout}
    if args.timeout is None:
        raise UsageError(f"--timeout none is peewee's (fail at once); --pool {library} needs a number of seconds")
    given["timeout"] = args.timeout
    try:
        checked = settings_for(library, **given)
    except ValueError as exc:
        raise UsageError(f"--pool {library}: {exc}") from None
    return {key: checked[key] for key in given}


def check_library_url(args: argparse.Namespace, url: str) -> None:
    """Refuse a ``--pool`` that cannot use ``url`` (psycopg off PostgreSQL), and an asyncio URL where threads run.

    A ``+asyncpool`` URL runs asyncio tasks on the library's asyncio pool
    (peewee's asyncio database, SQLAlchemy's ``AsyncEngine``, psycopg_pool's
    ``AsyncConnectionPool``); ``sweep`` and ``--processes`` run threads only.
    """
    from ..backends import BACKEND_LABELS, backend_of_url
    from ..urls import ASYNC_SCHEMES

    library = args.pool
    scheme = url.split("://", 1)[0].lower()
    if scheme in ASYNC_SCHEMES:
        threads = (
            "poolviz sweep" if args.command == "sweep" else "--processes" if getattr(args, "processes", None) else ""
        )
        if threads:
            base = scheme.split("+")[0]
            raise UsageError(
                f"{threads} runs threads: give --url as {base}+pool://..., not {mask_url(url)!r} "
                "(+asyncpool runs asyncio tasks in one process with poolviz run)"
            )
    if library == "peewee":
        return
    backend = backend_of_url(url)
    if backend == "other":
        raise UsageError(
            f"--url {mask_url(url)!r}: --pool {library} takes a postgresql://, mysql:// or sqlite:/// URL "
            "(+pool or +asyncpool optional)"
        )
    if library == "psycopg" and backend != "postgresql":
        raise UsageError(
            f"--pool psycopg connects to PostgreSQL only, not {BACKEND_LABELS.get(backend, backend)} "
            f"({mask_url(url)!r}); use --pool sqlalchemy or peewee there"
        )


def pool_url(url: str) -> str:
    """``url`` in peewee's ``+pool`` spelling (for the schema set-up and the server's view)."""
    scheme, sep, rest = url.partition("://")
    return url if "+" in scheme or not sep else f"{scheme}+pool://{rest}"


def limit_of(frame: Any, given: int | None) -> int | None:
    """The pool's limit for the summary and pictures: ``given``, else what the trace recorded."""
    recorded = frame.attrs.get("max_connections") if hasattr(frame, "attrs") else None
    return given or recorded or None
