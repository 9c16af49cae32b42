"""The live dashboard's widgets: the settings' sliders and drop-downs, the buttons, the status lines, their layout.

:func:`build_controls` makes one control per setting of
:class:`~poolviz.live.settings.DashboardSettings` (keyed by its name) and
:func:`build_panel` lays them out with the buttons, the messages and the view.
Every widget gets a ``poolviz-...`` CSS class, so a browser test can find it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from ..workload import DISTRIBUTIONS
from .settings import HELP, LIBRARY_LABELS, LIBRARY_SETTINGS, DashboardSettings
from .shared import classed

#: A backend's entry: (label, URL, why it is unavailable or None).
Backends = dict[str, tuple[str, str, str | None]]

_WIDE = {"description_width": "118px"}


def _row() -> widgets.Layout:
    return widgets.Layout(width="305px")


def _slider(cls: type, name: str, description: str, **kw: Any) -> Any:
    # continuous_update=False: a setting changes once the slider is let go, not at every pixel.
    return classed(
        cls(description=description, continuous_update=False, style=_WIDE, layout=_row(), **kw),
        f"poolviz-{name.replace('_', '-')}",
    )


def _dropdown(name: str, options: Any, value: Any) -> Any:
    return classed(
        widgets.Dropdown(options=options, value=value, description=name, style=_WIDE, layout=_row()),
        f"poolviz-{name}",
    )


def _checkbox(name: str, description: str, value: bool) -> Any:
    return classed(
        widgets.Checkbox(
            value=value, description=description, indent=False, layout=widgets.Layout(margin="2px 0 2px 40px")
        ),
        f"poolviz-{name.replace('_', '-')}",
    )


def library_controls(d: DashboardSettings) -> dict[str, Any]:
    """The pool-library choice and the settings of SQLAlchemy's and psycopg_pool's pools."""
    library = classed(
        widgets.Dropdown(
            options=[(label, key) for key, label in LIBRARY_LABELS.items()],
            value=d.library,
            description="pool library",
            style=_WIDE,
            layout=_row(),
        ),
        "poolviz-library",
    )
    recycle = 0.0 if d.recycle is None else d.recycle
    return {
        "library": library,
        "pool_size": _slider(widgets.IntSlider, "pool_size", "pool_size", value=d.pool_size, min=1, max=32),
        "max_overflow": _slider(widgets.IntSlider, "max_overflow", "max_overflow", value=d.max_overflow, min=0, max=32),
        "use_lifo": _checkbox("use_lifo", "use_lifo (hand out the last returned)", d.use_lifo),
        "pre_ping": _checkbox("pre_ping", "pre_ping (test at checkout)", d.pre_ping),
        "recycle": _slider(widgets.FloatSlider, "recycle", "recycle (s)", value=recycle, min=0.0, max=120.0, step=0.5),
        "min_size": _slider(widgets.IntSlider, "min_size", "min_size", value=d.min_size, min=0, max=32),
        "max_size": _slider(widgets.IntSlider, "max_size", "max_size", value=d.max_size, min=1, max=32),
        "max_waiting": _slider(widgets.IntSlider, "max_waiting", "max_waiting", value=d.max_waiting, min=0, max=64),
        "max_lifetime": _slider(
            widgets.FloatSlider, "max_lifetime", "max_lifetime (s)", value=d.max_lifetime, min=1.0, max=3600.0, step=1.0
        ),
    }


def build_controls(backends: Backends) -> dict[str, Any]:
    """One control per setting, at :class:`DashboardSettings`' defaults; the backend first usable of ``backends``."""
    d = DashboardSettings()
    options = [
        (label if reason is None else f"{label} (unavailable)", key) for key, (label, _u, reason) in backends.items()
    ]
    first = "url" if "url" in backends and backends["url"][2] is None else "sqlite"
    return {
        "backend": _dropdown("backend", options, first),
        # The slider reaches 0 on purpose: peewee reads 0 as "no limit", and
        # the message the dashboard gives for it is part of the lesson.
        "max_connections": _slider(
            widgets.IntSlider, "max_connections", "max_connections", value=d.max_connections, min=0, max=32
        ),
        "workers": _slider(widgets.IntSlider, "workers", "workers", value=d.workers, min=1, max=64),
        "hold_ms": _slider(widgets.IntSlider, "hold_ms", "hold (ms)", value=int(d.hold_ms), min=0, max=500),
        "think_ms": _slider(widgets.IntSlider, "think_ms", "think (ms)", value=int(d.think_ms), min=0, max=500),
        "distribution": _dropdown("distribution", list(DISTRIBUTIONS), d.distribution),
        "timeout": _slider(widgets.FloatSlider, "timeout", "timeout (s)", value=d.timeout, min=0.0, max=30.0, step=0.5),
        "fail_at_once": classed(
            widgets.Checkbox(
                value=False,
                description="fail at once (timeout=None)",
                indent=False,
                layout=widgets.Layout(margin="2px 0 2px 40px"),
            ),
            "poolviz-fail-at-once",
        ),
        "stale_timeout": _slider(
            widgets.FloatSlider, "stale_timeout", "stale_timeout (s)", value=0.0, min=0.0, max=30.0, step=0.5
        ),
        "duration": _slider(
            widgets.FloatSlider, "duration", "run length (s)", value=d.duration, min=0.5, max=120.0, step=0.5
        ),
        **library_controls(d),
    }


@dataclass
class Panel:
    """The dashboard's widgets besides the controls, and the box that holds everything (:attr:`widget`)."""

    backend_note: Any
    help: Any
    run_button: Any
    stop_button: Any
    save_button: Any
    status: Any
    message: Any
    stats: Any
    widget: Any = None
    #: One box per pool library holding its own settings; only the chosen library's is shown.
    library_boxes: dict[str, Any] = field(default_factory=dict)
    #: Every widget made, to close them all at the end.
    all_widgets: list[Any] = field(default_factory=list)


def build_panel(controls: dict[str, Any], view: Any, backends: Backends) -> Panel:
    """The buttons, status and message lines around ``controls`` and ``view``, laid out in one box."""
    panel = Panel(
        backend_note=classed(widgets.HTML(unavailable_note(backends)), "poolviz-backend-note"),
        help=classed(widgets.HTML(HELP), "poolviz-help"),
        run_button=classed(widgets.Button(description="Run", button_style="success", icon="play"), "poolviz-run"),
        stop_button=classed(
            widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True), "poolviz-stop"
        ),
        save_button=classed(widgets.Button(description="Save PNG", icon="download"), "poolviz-save"),
        status=classed(widgets.HTML("idle"), "poolviz-status"),
        message=classed(widgets.HTML(), "poolviz-message"),
        stats=classed(widgets.HTML(), "poolviz-stats"),
    )
    c = controls
    column = widgets.Layout(width="315px")
    panel.library_boxes = {
        name: classed(widgets.VBox([c[key] for key in keys]), f"poolviz-library-{name}")
        for name, keys in LIBRARY_SETTINGS.items()
    }
    show_library(panel, c["library"].value)
    settings_box = widgets.HBox(
        [
            widgets.VBox([c["library"], c["backend"], c["workers"], c["duration"]], layout=column),
            widgets.VBox(
                [c["hold_ms"], c["think_ms"], c["distribution"], c["timeout"], c["fail_at_once"]], layout=column
            ),
            widgets.VBox(list(panel.library_boxes.values()), layout=column),
        ],
        layout=widgets.Layout(flex_flow="row wrap"),
    )
    buttons = widgets.HBox([panel.run_button, panel.stop_button, panel.save_button, panel.status])
    lines = [panel.backend_note, panel.help, buttons, panel.message, view, panel.stats]
    panel.widget = classed(widgets.VBox([settings_box, *lines]), "poolviz-dashboard")
    panel.all_widgets = [
        *c.values(),
        panel.backend_note,
        panel.help,
        panel.run_button,
        panel.stop_button,
        panel.save_button,
        panel.status,
        panel.message,
        view,
        panel.stats,
        settings_box,
        *settings_box.children,
        *panel.library_boxes.values(),
        buttons,
        panel.widget,
    ]
    return panel


def show_library(panel: Panel, name: str) -> None:
    """Show the settings of pool library ``name`` and hide the other libraries'."""
    for key, box in panel.library_boxes.items():
        box.layout.display = None if key == name else "none"


def unavailable_note(backends: Backends) -> str:
    """A small line listing the backends that cannot be used and why (empty when all can)."""
    unavailable = [f"{label}: {reason}" for label, _url, reason in backends.values() if reason]
    return "<small>Unavailable: " + html.escape(" · ".join(unavailable)) + "</small>" if unavailable else ""
