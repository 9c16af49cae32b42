"""Where a connection was checked out, for leak reports (HikariCP's leakDetectionThreshold is the model).

Capturing a stack costs microseconds, so the pools do it only when a
``leak_threshold`` is set, and keep a short summary rather than a full dump.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import NamedTuple

import peewee
import playhouse

_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIPPED_FILES = {
    os.path.abspath(peewee.__file__),
    os.path.abspath(threading.__file__),
    os.path.abspath(contextlib.__file__),
    os.path.join(_HERE, "pools.py"),
    os.path.join(_HERE, "leaks.py"),
}
_SKIPPED_DIRS = (os.path.dirname(os.path.abspath(playhouse.__file__)) + os.sep,)


class Leak(NamedTuple):
    """A connection held longer than the pool's ``leak_threshold``."""

    conn: int
    thread: str
    thread_alive: bool
    held_s: float
    origin: str


def origin_summary(limit: int = 3) -> str:
    """The innermost ``limit`` caller frames outside peewee and poolviz: ``file:line in func < ...``."""
    frame = sys._getframe(1)
    parts: list[str] = []
    while frame is not None and len(parts) < limit:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename not in _SKIPPED_FILES and not filename.startswith(_SKIPPED_DIRS):
            parts.append(f"{os.path.basename(filename)}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(parts)


def check_leak_threshold(value: object) -> None:
    """``leak_threshold`` is None (off) or a positive number of seconds."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"leak_threshold must be None or a number of seconds > 0, got {value!r}")
