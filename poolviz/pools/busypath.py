"""The busy path's compiled half, when it was built: ``compiled`` is :mod:`poolviz.pools._busypath`, or None.

A checkout and its check-in are the only events most programs record, so
their usual case (an idle connection handed out at once, the same one
handed back, nobody listening) is also written in C
(``poolviz/pools/_busypath.c``, built by ``setup.py`` when a compiler is at
hand). Each compiled function does what the Python beside its caller does,
and hands anything else to that Python. Set ``POOLVIZ_PURE_PYTHON=1``
before importing poolviz to run the Python alone (the test suite runs both
and compares their events, tests/test_busypath.py).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("POOLVIZ_PURE_PYTHON"):
        return None
    gil_enabled = getattr(sys, "_is_gil_enabled", lambda: True)
    if not gil_enabled():  # the compiled path relies on the GIL: each of its calls runs whole under it
        return None
    try:
        return importlib.import_module("poolviz.pools._busypath")
    except ImportError:  # built without a C compiler: the Python does it all
        return None


#: The extension module, or None (not built, or POOLVIZ_PURE_PYTHON set).
compiled: ModuleType | None = _load()


def busy_path_in_use() -> str:
    """Which busy path runs, in words (the benchmarks print it beside their figures)."""
    if compiled is not None:
        return f"busy path: compiled ({os.path.basename(compiled.__file__ or '_busypath')})"
    if os.environ.get("POOLVIZ_PURE_PYTHON"):
        why = "POOLVIZ_PURE_PYTHON is set"
    elif not getattr(sys, "_is_gil_enabled", lambda: True)():
        why = "this Python runs without the GIL, which the compiled path relies on"
    else:
        why = "the extension was not built"
    return f"busy path: Python ({why})"
