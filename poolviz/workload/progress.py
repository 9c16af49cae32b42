"""Progress bars for notebook cells that run for more than a few seconds (tqdm).

:func:`progress_bar` gives a callback in the shape every workload takes,
``progress(done, total)``, drawn with ``tqdm.auto``: a widget bar in JupyterLab,
a line of text in a terminal. A notebook run without a person watching (the
static pages of ``make docs``, the test suite) sets ``POOLVIZ_PLAIN_PROGRESS=1``
and gets one closing line instead, since a saved widget shows only its first state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PLAIN_ENV = "POOLVIZ_PLAIN_PROGRESS"


class _Bar:
    """A ``progress(done, total)`` callback that moves one bar; ``step(n)`` advances it by hand."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        if done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def step(self, n: int = 1) -> None:
        self._bar.update(n)


class _Count:
    """What a bar needs when nobody watches it: the count and the total, printed once at the end."""

    def __init__(self, total: int | None) -> None:
        self.n = 0
        self.total = total

    def update(self, n: int) -> None:
        self.n += n


@contextmanager
def progress_bar(description: str, total: int | None = None, unit: str = "request") -> Iterator[_Bar]:
    """A bar for the block: pass the yielded object as a workload's ``progress=``, or call ``step()``.

    ``with progress_bar("sweep", total=4, unit="size") as bar: ... bar.step()``
    """
    if os.environ.get(PLAIN_ENV):
        count, started = _Count(total), time.perf_counter()
        yield _Bar(count)
        of = f"/{count.total}" if count.total else ""
        print(f"{description}: {count.n}{of} {unit}s in {time.perf_counter() - started:.1f} s")
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, leave=True, mininterval=0.25)
    try:
        yield _Bar(bar)
    finally:
        bar.close()
