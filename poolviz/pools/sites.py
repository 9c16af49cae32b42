"""Checkout sites: where in the application's code a connection was taken, as ``path.py:LINE in function``.

A checkout's site is the first frame, walking out from the pool, that is not
*library code*: peewee and ``playhouse``, poolviz's own pools, events and
recording (:data:`LIBRARY_MODULES`), SQLAlchemy, psycopg and psycopg_pool,
the DB drivers, and the threading, asyncio, contextlib, concurrent, functools
and greenlet machinery between them. ``poolviz.workload`` and
``poolviz.practice`` are applications like any other. A frame is library code
when its module (``__name__`` in its globals) or its file belongs to one of
those; the module catches code that libraries generate with ``exec`` (which
has no file of its own), the file code run under another name. Inside a
greenlet (SQLAlchemy's ``AsyncEngine``, peewee's asyncio bridge) the walk
carries on in the greenlet that switched into it.

Every checkout asks, so every step is cached: the verdict per code object,
and per (code object, instruction offset) the checkout payload (see
:mod:`poolviz.events.store`) that carries the site, so a checkout of an idle
connection that did not wait reuses one tuple and allocates nothing. The
offset (``f_lasti``) is the key, not the line: ``f_lineno`` decodes the code
object's line table on every read, the offset is a field. The caches hold the
code objects they saw, so an id is never reused while cached.

The path is relative to the current directory when the file is under it,
else its last two components; ``""`` when no frame is the application's.
The same verdict serves the leak reports' stacks (:func:`stack`), so a
leak's first entry is its checkout's site.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import Any

from ..events.store import REUSED
from .busypath import compiled

#: Modules (and their submodules) whose frames are never a site.
LIBRARY_MODULES = (
    "peewee",
    "playhouse",
    "poolviz.pools",
    "poolviz.events",
    "poolviz.recording",
    "sqlalchemy",
    "psycopg",
    "psycopg_pool",
    "psycopg2",
    "pymysql",
    "aiomysql",
    "asyncpg",
    "aiosqlite",
    "sqlite3",
    "threading",
    "asyncio",
    "contextlib",
    "concurrent",
    "functools",
    "greenlet",
)
#: Parts of poolviz that are applications of the pools, not the pools: their frames are sites.
APP_MODULES = ("poolviz.workload", "poolviz.practice")

_POOLVIZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the poolviz package
# Beyond this many code objects seen, the caches start again (notebooks compile each cell anew).
_MAX_CODES = 20_000

Payload = tuple[float, float, bool, str, str]

# id(code) -> code, for library code (holding the code keeps its id from being reused).
_library: dict[int, CodeType] = {}
# id(code) -> (code, {f_lasti: the payload of a reused checkout there}), for application code.
_lines: dict[int, tuple[CodeType, dict[int, Payload]]] = {}
_getframe = sys._getframe
# The same walk in C (None when not built): the cached answer, or None when the Python must look.
_compiled_payload_at = compiled.payload_at if compiled is not None else None


def check_sites(value: Any) -> bool:
    """The ``sites=`` setting of ``instrument()``: True (record each checkout's site, the default) or False."""
    if not isinstance(value, bool):
        raise TypeError(f"sites must be True or False, got {value!r}")
    return value


def _module_is_library(name: str) -> bool:
    if any(name == app or name.startswith(app + ".") for app in APP_MODULES):
        return False
    return any(name == lib or name.startswith(lib + ".") for lib in LIBRARY_MODULES)


def _library_dirs() -> tuple[tuple[str, ...], frozenset[str]]:
    """The folders and files of the library modules that are installed (found without importing them)."""
    import importlib.util

    dirs: list[str] = []
    files: set[str] = set()
    for name in LIBRARY_MODULES:
        if name.startswith("poolviz."):
            dirs.append(os.path.join(_POOLVIZ, *name.split(".")[1:]) + os.sep)
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
            continue
        origin = os.path.realpath(spec.origin)
        if spec.submodule_search_locations:
            dirs.extend(os.path.realpath(d) + os.sep for d in spec.submodule_search_locations)
        else:
            files.add(origin)
    return tuple(dirs), frozenset(files)


_DIRS, _FILES = _library_dirs()
_APP_DIRS = tuple(os.path.join(_POOLVIZ, *name.split(".")[1:]) + os.sep for name in APP_MODULES)


def _file_is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    if path.startswith(_APP_DIRS):
        return False
    return path in _FILES or path.startswith(_DIRS)


def _classify(frame: FrameType) -> dict[int, Payload] | None:
    """Look ``frame``'s code up, classifying it the first time: None for library code, else its lines' payloads."""
    code = frame.f_code
    key = id(code)
    entry = _lines.get(key)
    if entry is not None:
        return entry[1]
    if key in _library:
        return None
    name = frame.f_globals.get("__name__")
    library = (isinstance(name, str) and _module_is_library(name)) or _file_is_library(code.co_filename)
    if len(_library) + len(_lines) > _MAX_CODES:
        _library.clear()
        _lines.clear()
    if library:
        _library[key] = code
        return None
    lines: dict[int, Payload] = {}
    _lines[key] = (code, lines)
    return lines


def is_library_frame(frame: FrameType) -> bool:
    """Whether ``frame`` runs library code (see the module docstring), cached per code object."""
    return _classify(frame) is None


def describe(code: CodeType, line: int) -> str:
    """``path.py:LINE in function``: the path relative to the current directory if under it, else its last two parts."""
    filename = code.co_filename
    if not filename.startswith("<"):
        path = os.path.abspath(filename)
        try:
            here = os.getcwd() + os.sep
        except OSError:  # the current directory was removed
            here = None
        if here is not None and path.startswith(here):
            filename = path[len(here) :]
        else:
            filename = os.path.join(*path.split(os.sep)[-2:])
    return f"{filename}:{line} in {code.co_name}"


def _outward(frame: FrameType | None) -> Iterator[FrameType]:
    """The frames from ``frame`` outwards, carrying on in each greenlet that switched into this one."""
    current: Any = None
    while True:
        while frame is not None:
            yield frame
            frame = frame.f_back
        greenlet = sys.modules.get("greenlet")
        if greenlet is None:
            return
        current = (current or greenlet.getcurrent()).parent
        if current is None:
            return
        frame = current.gr_frame


def app_frames(frame: FrameType | None) -> Iterator[FrameType]:
    """The application's frames (not library code) from ``frame`` outwards, innermost first."""
    return (f for f in _outward(frame) if _classify(f) is not None)


def _payload_at(frame: FrameType) -> Payload:
    lines = _classify(frame)
    if lines is None:  # the caches started again since: it is application code all the same
        lines = {}
    found = lines.get(frame.f_lasti)
    if found is None:
        found = lines[frame.f_lasti] = (0.0, 0.0, True, "", describe(frame.f_code, frame.f_lineno))
    return found


def reused_payload(depth: int = 1) -> Payload:
    """The payload of a reused checkout that did not wait, carrying its site: ``(0.0, 0.0, True, "", site)``.

    The hot path of every pool: one cached tuple per (code, line); ``REUSED``
    itself when no frame is the application's. ``depth`` is where the walk
    starts, as for ``sys._getframe`` (1: the caller).
    """
    if _compiled_payload_at is not None:
        found = _compiled_payload_at(depth, _library, _lines)
        if found is not None:
            return found  # type: ignore[no-any-return]
    frame: FrameType | None = _getframe(depth)
    library = _library
    lines_of = _lines
    # _payload_in's walk, inlined: most checkouts meet only cached code objects in this greenlet.
    while frame is not None:
        key = id(frame.f_code)
        if key in library:
            frame = frame.f_back
            continue
        entry = lines_of.get(key)
        lines = entry[1] if entry is not None else _classify(frame)
        if lines is None:
            frame = frame.f_back
            continue
        found = lines.get(frame.f_lasti)
        if found is None:
            found = lines[frame.f_lasti] = (0.0, 0.0, True, "", describe(frame.f_code, frame.f_lineno))
        return found
    return _outside_this_greenlet()


def _payload_in(frame: FrameType | None) -> Payload | None:
    """The payload at the first application frame from ``frame`` outwards in its greenlet (None: none there)."""
    library = _library
    while frame is not None:
        lines = None if id(frame.f_code) in library else _classify(frame)
        if lines is not None:
            found = lines.get(frame.f_lasti)
            if found is None:
                found = lines[frame.f_lasti] = (0.0, 0.0, True, "", describe(frame.f_code, frame.f_lineno))
            return found
        frame = frame.f_back
    return None


def _outside_this_greenlet() -> Payload:
    """The walk's answer in the greenlets that switched into this one, outwards (``REUSED``: none)."""
    greenlet = sys.modules.get("greenlet")
    current = greenlet.getcurrent().parent if greenlet is not None else None
    while current is not None:
        found = _payload_in(current.gr_frame)
        if found is not None:
            return found
        current = current.parent
    return REUSED


def site(depth: int = 1) -> str:
    """The site of a checkout made now (``depth`` as for ``sys._getframe``; 1: the caller)."""
    return reused_payload(depth + 1)[4]


def checkout_payload(site_payload: Payload, reused: bool, wait_s: float = 0.0) -> Payload | None:
    """The payload of any checkout, given :func:`reused_payload`'s answer: cached when it can be, ``None`` for none."""
    if not wait_s:
        if reused:
            return site_payload
        return (0.0, 0.0, False, "", site_payload[4]) if site_payload[4] else None
    return (wait_s, 0.0, reused, "", site_payload[4])


def stack(limit: int = 5, depth: int = 1) -> str:
    """The innermost ``limit`` application frames, innermost first, ``" < "``-joined; the first is the site."""
    frames = itertools.islice(app_frames(_getframe(depth)), limit)
    return " < ".join(_payload_at(frame)[4] for frame in frames)
