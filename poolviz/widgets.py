"""The JupyterLab widgets, re-exported from :mod:`poolviz.live` so ``from poolviz.widgets import PoolDashboard`` works.

Each lives in its own module: :mod:`poolviz.live.dashboard`, :mod:`poolviz.live.replay`,
:mod:`poolviz.live.compare`, :mod:`poolviz.live.follow` (a recording followed live),
all drawing through :class:`poolviz.live.view.LiveView`.
"""

from __future__ import annotations

from .live.compare import Compare
from .live.dashboard import PoolDashboard
from .live.follow import Follow, follow
from .live.replay import Replay
from .live.settings import DashboardSettings, resize_pool
from .live.shared import frame_stats
from .live.view import LiveView

__all__ = [
    "Compare",
    "DashboardSettings",
    "Follow",
    "LiveView",
    "PoolDashboard",
    "Replay",
    "follow",
    "frame_stats",
    "resize_pool",
]
