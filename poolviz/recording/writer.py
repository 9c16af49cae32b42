"""The writing side of a recording: a background flusher that streams a pool's events to files.

The pool's hot path is untouched: a daemon thread reads the log through a
:class:`~poolviz.events.log.Cursor` every :data:`FLUSH_PERIOD_S` and appends
one JSON line per batch (see :mod:`poolviz.recording.format`), so a reader is
at most about 100 ms behind. Every line is one ``os.write`` on an unbuffered
descriptor: a forked child holds no copy of a half-full buffer that it could
write into its parent's file.

Nothing here raises into the application: a directory that cannot be
created or written, or a full disk, gives one warning (a
:class:`RecordingWarning`), and the events that could not be written are
counted as dropped in the next line that can be.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from pathlib import Path
from typing import Any

from ..credentials import mask_text
from ..events import EventLog
from . import format as fmt

logger = logging.getLogger("poolviz.recording")

#: How often the flusher reads the log and writes what is new.
FLUSH_PERIOD_S = 0.05
#: With nothing new, a line still goes out this often: its watermark lets a reader release other processes' events.
IDLE_LINE_S = 0.5
#: Events per batch line at most. Small batches keep the application's threads waiting little: reading one
#: holds the pool's lock, and encoding one holds the GIL, each for a few hundred microseconds at most; the
#: line's write then lets the GIL go.
BATCH_LIMIT = 256
#: A segment rotates once it holds this many bytes...
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: ...and the oldest is deleted (its events counted as dropped) when a stream has more segments than this.
DEFAULT_MAX_SEGMENTS = 8
JOIN_TIMEOUT_S = 5.0
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class RecordingWarning(RuntimeWarning):
    """A recording could not write (or may be mixed with another application's): the application goes on."""


def _masked(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_text(v) if isinstance(v, str) else v for k, v in meta.items()}


class Recorder:
    """Streams one pool's :class:`~poolviz.events.EventLog` to ``directory``, one stream per process.

    Made and started by :func:`poolviz.record`. A child forked after it starts
    records itself, in a stream of its own that starts with the events after
    the fork; the parent's stream stays the parent's (that takes Python's
    fork hooks: ``os.fork()``, multiprocessing, gunicorn; uWSGI forks in C and
    runs them only with ``py-call-osafterfork``, else call :func:`poolviz.record`
    in each worker, as with ``lazy-apps``). Stopped (and its stream ended) by
    :meth:`stop`, at interpreter exit, or when a multiprocessing child finishes.
    """

    def __init__(
        self,
        log: EventLog,
        directory: Path,
        name: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        period_s: float = FLUSH_PERIOD_S,
    ) -> None:
        self.log = log
        self.directory = directory
        self.name = name
        self.max_bytes = max_bytes
        self.max_segments = max_segments
        self.period_s = period_s
        self._stopped = False
        self._fork_locked = False
        self._start_stream()
        atexit.register(self._at_exit)
        ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):  # POSIX: where there is fork()
            os.register_at_fork(
                before=_hook(ref, "_before_fork"),
                after_in_parent=_hook(ref, "_after_fork_in_parent"),
                after_in_child=_hook(ref, "_after_fork_in_child"),
            )

    def _start_stream(self) -> None:
        # Everything one process's stream needs, made afresh in a forked child.
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._fd: int | None = None
        self._segments: deque[list[int]] = deque()  # [segment, events in it], oldest first
        self._next_segment = 0
        self._segment_bytes = 0
        self._dropped = {"capacity": 0, "rotation": 0, "write": 0}
        self._events_written = 0
        self._bytes_written = 0
        self._batches = 0
        self._last_line = 0.0
        self._warned = False
        self._failing = False
        self._cursor = self.log.cursor()  # from now on: a child records what follows the fork
        with self._lock:
            self._open_next()
        self._thread = threading.Thread(target=self._run, name="poolviz-recorder", daemon=True)
        self._thread.start()

    def _warn(self, what: str, exc: BaseException) -> None:
        self._failing = True
        if self._warned:
            logger.debug("poolviz recording %s: %s", what, exc)
            return
        self._warned = True
        message = (
            f"poolviz.record cannot {what} in {str(self.directory)!r}: {exc}; the application goes on, "
            "and the events not written are counted as dropped"
        )
        logger.warning(message)
        warnings.warn(message, RecordingWarning, stacklevel=2)

    def _open_next(self) -> bool:
        # Open the next segment and write its header; rotate out the oldest past the limit. Hold the lock.
        segment = self._next_segment
        path = self.directory / fmt.file_name(self.name, self.pid, segment)
        head = fmt.encode(fmt.header(self.name, self.pid, time.time(), self.log.t0, segment, _masked(self.log.meta)))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, _FLAGS, 0o644)
        except OSError as exc:
            self._warn("open a file", exc)
            return False
        self._next_segment += 1
        try:
            _write_all(fd, head)
        except OSError as exc:
            os.close(fd)
            self._warn("write", exc)
            return False
        self._fd = fd
        self._segment_bytes = len(head)
        self._bytes_written += len(head)
        self._segments.append([segment, 0])
        while len(self._segments) > self.max_segments:
            old, events = self._segments.popleft()
            self._dropped["rotation"] += events
            try:
                os.unlink(self.directory / fmt.file_name(self.name, self.pid, old))
            except OSError as exc:
                logger.debug("poolviz recording could not delete segment %d: %s", old, exc)
        return True

    def _write_line(self, line: bytes, events: int) -> None:
        # One line, whole, or counted as dropped. Hold the lock.
        if self._fd is None and not self._open_next():
            self._dropped["write"] += events
            return
        assert self._fd is not None
        try:
            _write_all(self._fd, line)
        except OSError as exc:
            # Part of the line may be in the file: start a new segment, so nothing follows a broken line.
            self._close_fd()
            self._dropped["write"] += events
            self._warn("write", exc)
            return
        self._failing = False
        self._last_line = time.perf_counter()
        self._batches += 1
        self._events_written += events
        self._bytes_written += len(line)
        self._segment_bytes += len(line)
        self._segments[-1][1] += events
        if self._segment_bytes >= self.max_bytes:
            self._close_fd()
            self._open_next()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def dropped(self) -> int:
        """Events this process's stream has lost so far: to the log's capacity, deleted segments, failed writes."""
        return sum(self._dropped.values())

    def _flush_locked(self) -> None:
        mark = time.perf_counter()
        while True:
            # Plain rows, not Event records: those would cost the flusher (in the application's
            # process) more than half again its CPU per event (see benchmarks/recording_overhead.py).
            events, lost = self._cursor.read_rows(BATCH_LIMIT)
            self._dropped["capacity"] += lost
            if events or lost or mark - self._last_line >= IDLE_LINE_S:
                # The mark was taken before the read: every later event is stamped after it (less a margin
                # the reader allows for a reading taken just before the pool's lock).
                line = fmt.batch(events, mark, self.dropped)
                self._write_line(line, len(events))
            if len(events) < BATCH_LIMIT:
                return

    def flush(self) -> None:
        """Write what the log holds that is not written yet, now (the flusher does it every 50 ms)."""
        with self._lock:
            if self._stopped:
                return
            self._flush_locked()

    def _run(self) -> None:
        while not self._wake.wait(self.period_s):
            try:
                self.flush()
            except Exception as exc:  # never into the application, never silently
                with self._lock:
                    self._warn("record", exc)

    def stop(self) -> None:
        """Write what is left, end the stream with its end marker and stop the flusher; harmless twice."""
        if self._stopped:
            return
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
        with self._lock:
            if self._stopped:
                return
            try:
                self._flush_locked()
                self._write_line(fmt.end(time.perf_counter(), self.dropped), 0)
            except Exception as exc:
                self._warn("record", exc)
            self._stopped = True
            self._close_fd()
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        try:
            self.stop()
        except Exception:  # at exit, only a log line
            logger.exception("poolviz recording could not end its stream")

    def _before_fork(self) -> None:
        # The flusher takes the pool's lock to read the log: a fork while it does would leave the lock held for
        # ever in the child, and its pool stuck. Holding the flusher's own lock over the fork keeps it out.
        self._fork_locked = not self._stopped and self._lock.acquire(timeout=JOIN_TIMEOUT_S)

    def _after_fork_in_parent(self) -> None:
        if self._fork_locked:
            self._fork_locked = False
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        if self._stopped:
            return
        self._close_fd()  # the parent's: the child's copy of the descriptor only
        # A lock held by another thread of the parent at the fork is held for ever in the child.
        if not self.log.lock.acquire(timeout=JOIN_TIMEOUT_S):
            self._stopped = True
            logger.warning("poolviz recording: the pool's lock was held at fork(); this child records nothing")
            return
        self.log.lock.release()
        self._start_stream()
        if "multiprocessing" in sys.modules:
            # A multiprocessing child leaves through os._exit, past atexit: its finalizers run instead.
            from multiprocessing import util

            util.register_after_fork(self, _finalize_at_exit)

    @property
    def running(self) -> bool:
        """Whether the recorder is still writing (not stopped)."""
        return not self._stopped

    def stats(self) -> dict[str, Any]:
        """What this process's stream has done: events and bytes written, drops by cause, the current segment."""
        with self._lock:
            segment = self._segments[-1][0] if self._segments else None
            return {
                "name": self.name,
                "pid": self.pid,
                "directory": str(self.directory),
                "running": not self._stopped,
                "failing": self._failing,
                "segment": segment,
                "segments": len(self._segments),
                "batches": self._batches,
                "events_written": self._events_written,
                "bytes_written": self._bytes_written,
                "dropped": self.dropped,
                **{f"dropped_{cause}": n for cause, n in self._dropped.items()},
            }

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Recorder {self.name!r} pid {self.pid} in {str(self.directory)!r}, {state}>"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError("nothing written")
        view = view[written:]


def _hook(ref: weakref.ref[Recorder], method: str) -> Any:
    # A fork hook cannot be unregistered: it holds the recorder weakly, and never raises into fork().
    def hook() -> None:
        recorder = ref()
        if recorder is not None:
            try:
                getattr(recorder, method)()
            except Exception:
                logger.exception("poolviz recording: %s failed", method)

    return hook


def _finalize_at_exit(recorder: Recorder) -> None:
    from multiprocessing import util

    util.Finalize(recorder, recorder._at_exit, exitpriority=100)
