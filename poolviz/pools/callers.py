"""Who is calling: the name an event carries for the thread or asyncio task that caused it.

Every pool library records its caller the same way: a task's name inside an
asyncio task, else the thread's name. ``Thread.name`` is a property and
events are many, so a thread's name is read once and kept per thread.
"""

from __future__ import annotations

import asyncio
import threading


class ThreadNameCache(threading.local):
    """Each thread's name, read once (``name`` is None until then)."""

    name: str | None = None


_cache = ThreadNameCache()
_current_thread = threading.current_thread


def thread_name() -> str:
    """This thread's name, read once per thread."""
    name = _cache.name
    if name is None:
        name = _cache.name = _current_thread().name
    return name


def task_or_thread_name() -> str:
    """The running asyncio task's name, else this thread's."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        task = None
    return task.get_name() if task is not None else thread_name()
