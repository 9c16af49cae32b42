"""An application's pool recorded to files while it runs, one stream per process, read back on one clock.

:func:`record` (``poolviz.record``) starts a :class:`~.writer.Recorder` in the
application; :class:`~.reader.RecordingReader` tails the files from another
process (``poolviz follow``, the live view), and
:func:`poolviz.load_recording` reads them into one frame. The files are
described in :mod:`.format`.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any

from .. import checks
from ..pools import ACCEPTED, events_of, instrument
from . import format as fmt
from .format import FORMAT, VERSION, RecordingVersionError
from .reader import Holder, ProcessStream, RecordingReader, check_name, pid_exists
from .writer import DEFAULT_MAX_BYTES, DEFAULT_MAX_SEGMENTS, Recorder, RecordingWarning

#: This process's recorders by directory and name (a forked child's are its own: their pid says so).
_recorders: weakref.WeakValueDictionary[tuple[Path, str], Recorder] = weakref.WeakValueDictionary()
#: Script names that say nothing of the application: the recording is then called "app".
_ANONYMOUS = {"", "-c", "-m", "__main__", "ipykernel_launcher", "pytest", "python"}


def default_name() -> str:
    """The running script's name (``app.py`` → ``app``; gunicorn's workers, ``python -m gunicorn`` too →
    ``gunicorn``), else ``"app"``."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    # python -m gunicorn runs gunicorn/__main__.py: the package names the application.
    stem = script.parent.name if script.stem == "__main__" else script.stem
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in stem).lstrip(".")
    return "app" if cleaned in _ANONYMOUS or not cleaned else cleaned


def record(
    pool: Any,
    directory: str | os.PathLike[str],
    *,
    leak_threshold: float | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_segments: int = DEFAULT_MAX_SEGMENTS,
) -> Recorder:
    """Stream ``pool``'s events to files in ``directory`` while the application runs; returns the :class:`Recorder`.

    ``pool`` is any pool :func:`poolviz.instrument` takes; it is instrumented
    here if it is not yet, with ``leak_threshold`` (which an instrumented pool
    refuses: it has its own). ``name`` names the
    application (default: the script's name); each process writes its own
    stream, and a process forked later records itself. Recording the same
    pool again returns the same recorder. A stream rotates into a
    new file every ``max_bytes`` and keeps at most ``max_segments`` of them,
    deleting the oldest (its events counted as dropped). Bad arguments raise
    at once; problems writing never do: one :class:`RecordingWarning`, and the
    events not written are counted as dropped.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path (str or os.PathLike), got {directory!r}")
    leak_threshold = checks.leak_threshold(leak_threshold)
    name = default_name() if name is None else check_name(name)
    max_bytes = checks.count("max_bytes", max_bytes)
    max_segments = checks.count("max_segments", max_segments)
    log = _instrumented_log(pool, leak_threshold)
    path = Path(directory).absolute()  # a later chdir (a daemonising server) must not move the files
    running = _recorders.get((path, name))
    if running is not None and running.running and running.pid == os.getpid():
        if running.log is log:
            return running  # recording already: the same recorder
        raise ValueError(
            f"another pool of this process already records as {name!r} in {str(path)!r}: "
            "give this one another name= (one stream per process and name)"
        )
    _warn_of_others(path, name)
    recorder = Recorder(log, path, name, max_bytes=max_bytes, max_segments=max_segments)
    _recorders[(path, name)] = recorder
    return recorder


def _instrumented_log(pool: Any, leak_threshold: float | None) -> Any:
    try:
        log = events_of(pool)
    except TypeError:
        raise TypeError(f"record() takes {ACCEPTED}; got {type(pool).__module__}.{type(pool).__qualname__}") from None
    except ValueError:
        return events_of(instrument(pool, leak_threshold=leak_threshold))  # not instrumented yet
    if leak_threshold is not None:
        # Instrumenting again changes nothing: the threshold would be silently ignored.
        raise ValueError(
            f"record(leak_threshold={leak_threshold:g}) instruments a pool with it, but this "
            f"{type(pool).__name__} is instrumented already: give leak_threshold where it was instrumented "
            "(poolviz.connect(url, leak_threshold=...) or poolviz.instrument(pool, leak_threshold=...))"
        )
    return log


def _warn_of_others(directory: Path, name: str) -> None:
    others = sorted({f.name for f in fmt.stream_files(directory) if f.name != name and pid_exists(f.pid)})
    if others:
        warnings.warn(
            f"{str(directory)!r} also holds the recording of {', '.join(map(repr, others))}, still running; "
            f"this one is {name!r}: read them apart with load_recording(directory, name=...)",
            RecordingWarning,
            stacklevel=3,
        )


__all__ = [
    "FORMAT",
    "VERSION",
    "Holder",
    "ProcessStream",
    "Recorder",
    "RecordingReader",
    "RecordingVersionError",
    "RecordingWarning",
    "default_name",
    "record",
]
