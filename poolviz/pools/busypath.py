"""The busy path's compiled half, when it was built: ``compiled`` is :mod:`poolviz.pools._busypath`, or None.

A checkout and its check-in are the only events most programs record, so
their usual case (an idle connection handed out at once, the same one
handed back, nobody listening) is also written in C
(``poolviz/pools/_busypath.c``, built by ``setup.py`` when a compiler is at
hand). Each compiled function does what the Python beside its caller does,
and answers "not mine" for anything else, which that Python then handles.
Set ``POOLVIZ_PURE_PYTHON=1`` before importing poolviz to run the Python
alone (the test suite runs both).
"""

from __future__ import annotations

import os
from types import ModuleType

compiled: ModuleType | None = None
if not os.environ.get("POOLVIZ_PURE_PYTHON"):
    try:
        from . import _busypath as compiled
    except ImportError:  # built without a C compiler: the Python does it all
        compiled = None
