"""Progress bars for notebook cells that run for more than a few seconds (tqdm).

:func:`progress_bar` gives a callback in the shape every workload takes,
``progress(done, total)``, drawn with ``tqdm.auto``: a widget bar in JupyterLab,
a line of text in a terminal or a static page built by ``make docs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Bar:
    """A ``progress(done, total)`` callback that moves one tqdm bar; ``step(n)`` advances it by hand."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        if done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def step(self, n: int = 1) -> None:
        self._bar.update(n)


@contextmanager
def progress_bar(description: str, total: int | None = None, unit: str = "request") -> Iterator[_Bar]:
    """A tqdm bar for the block: pass the yielded object as a workload's ``progress=``, or call ``step()``.

    ``with progress_bar("sweep", total=4, unit="size") as bar: ... bar.step()``
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, leave=True, mininterval=0.25)
    try:
        yield _Bar(bar)
    finally:
        bar.close()
