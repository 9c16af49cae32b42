"""The instrumented pools, one package per pool library: :mod:`.peewee` (peewee's threaded pools)
and :mod:`.peewee_asyncio` (peewee's asyncio databases).

Each records the same event vocabulary (:mod:`poolviz.events`) and only
observes: the pool behaves as it would without poolviz.
"""

from __future__ import annotations

from .peewee import instrument, is_instrumented

__all__ = ["instrument", "is_instrumented"]
