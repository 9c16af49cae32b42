"""A recording (:func:`poolviz.record`) read into one frame: every process on one clock.

``perf_counter()`` is ``CLOCK_MONOTONIC``, the same in every process of a
machine, so the streams merge as the multi-process runs' traces do, with the
same :data:`~poolviz.events.merge.PROCESS_COLUMNS` (``process`` is the pid).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..recording import RecordingReader

if TYPE_CHECKING:
    import pandas as pd


def load_recording(directory: str | os.PathLike[str], *, name: str | None = None) -> pd.DataFrame:
    """The events recorded in ``directory`` as one frame, all processes merged in time order.

    Works while the application still writes: what is written so far is read
    (a half-written last line waits for next time). ``name`` picks the
    application when the directory holds several. ``frame.attrs``:
    ``processes`` (pids), ``name``, ``dropped`` (events lost in all),
    ``dropped_by_process`` ({pid: n}), ``meta`` (the pool's, credentials
    masked) and ``meta_by_process``.
    """
    reader = RecordingReader(directory, name)
    reader.poll()
    found = reader.names()
    if not found:
        raise ValueError(
            f"no recording in {str(reader.directory)!r}: it holds no .pvrec files "
            f"(poolviz.record(pool, {str(reader.directory)!r}) writes them)"
        )
    if name is not None and name not in found:
        raise ValueError(f"no recording named {name!r} in {str(reader.directory)!r}; it holds: {', '.join(found)}")
    reader.end_all()
    frame = reader.log.to_frame()
    streams = reader.processes
    dropped = reader.dropped()
    first: dict[str, Any] = next(iter(streams.values())).meta if streams else {}
    frame.attrs.update(
        processes=sorted(streams),
        name=reader.name,
        dropped=sum(dropped.values()),
        dropped_by_process=dropped,
        meta=dict(first),
        meta_by_process={pid: dict(s.meta) for pid, s in streams.items()},
    )
    return frame
