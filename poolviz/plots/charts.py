"""The pictures' old single module, kept only so ``from poolviz.plots import charts`` still works.

Everything here is :mod:`poolviz.plots`'s public names; import them from
there (``from poolviz import plots``): this module goes once nothing uses it.
"""

from __future__ import annotations

from . import *  # noqa: F403
from . import __all__ as __all__
