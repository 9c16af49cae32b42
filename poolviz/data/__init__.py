"""The data layer: events as pandas frames (:mod:`.frames`, :mod:`.processes`), traces on disk
(:mod:`.traces`), the numbers drawn from them (:mod:`.analysis`), who holds each connection now
(:mod:`.holders`) and queueing theory (:mod:`.queueing`).

It needs pandas and draws nothing; import the module you need, e.g.
``from poolviz.data import analysis``. :func:`holders` is here too.
"""

from __future__ import annotations

from .holders import HOLDER_COLUMNS, holders

__all__ = ["HOLDER_COLUMNS", "holders"]
