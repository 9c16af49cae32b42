"""What the commands write: JSON, the pictures, a progress bar and the closing line about waits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..units import duration


def progress_bar(stream: TextIO, width: int = 30) -> Callable[[int, int | None], None]:
    """A ``progress(done, total)`` callback drawing ``\\r[####....] 3/8`` on ``stream``, redrawn only on change."""
    shown: list[Any] = [None]

    def draw(done: int, total: int | None) -> None:
        if total:
            filled = min(width, done * width // total)
            state: Any = (filled, done == total)
            bar = "#" * filled + "." * (width - filled)
            text = f"\r[{bar}] {done}/{total}"
        else:
            state = done // 10
            text = f"\r{done} requests"
        if state == shown[0] and done != total:
            return
        shown[0] = state
        stream.write(text + ("\n" if total and done >= total else ""))
        stream.flush()

    return draw


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def write_plots(frame: Any, out: Path, max_connections: int | None) -> list[Path]:
    from .. import plots

    paths = []
    for name, draw in (
        ("timeline.png", plots.plot_timeline),
        ("occupancy.png", lambda f, ax: plots.plot_occupancy(f, ax=ax, max_connections=max_connections)),
        ("waits.png", plots.plot_waits),
        ("fairness.png", plots.plot_fairness),
    ):
        fig = figure(10, 4.5)
        draw(frame, fig.add_subplot())
        plots.save_png(fig, out / name)
        paths.append(out / name)
    return paths


def waits_line(summary: dict[str, Any]) -> str:
    """Waits as a reader needs them: the tail and the longest, who is still waiting, how evenly workers were served.

    A p95 of 0 alone hides starving workers (peewee's pool lets a releasing
    thread take its connection straight back), so the maximum and the
    per-worker checkouts always come with it.
    """
    line = (
        f"wait p95 {duration(summary['wait_p95_s'])}, p99 {duration(summary['wait_p99_s'])}, "
        f"max {duration(summary['wait_max_s'])}"
    )
    if summary["waiting_now"]:
        line += f", {summary['waiting_now']} still waiting (oldest {duration(summary['oldest_wait_s'])})"
    if summary["fair_workers"]:
        line += (
            f"; checkouts per worker {summary['fair_checkouts_min']}-{summary['fair_checkouts_max']}"
            f" (median {summary['fair_checkouts_median']:g})"
        )
    return line
