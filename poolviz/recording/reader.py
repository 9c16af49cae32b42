"""The reading side of a recording: tail every process's stream and merge them on one clock.

:class:`RecordingReader` keeps, for each stream, the segment and byte offset
it has read up to; each :meth:`~RecordingReader.poll` reads only what was
appended since. A last line not yet ended by its newline (the writer is in
the middle of it) is left for the next poll, not an error. What it reads goes
into a :class:`~poolviz.events.merge.MergedEventLog` keyed by pid, which
releases events in time order once every live stream has written past them:
this is what ``poolviz follow`` and the live view's follow widget build on,
and what :func:`poolviz.load_recording` turns into a frame.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import DEFAULT_CAPACITY, NO_CONN
from ..events.merge import MergedEventLog
from . import format as fmt

logger = logging.getLogger("poolviz.recording")

#: A live stream that writes no line for this long (its writer writes one every 0.5 s at least) stops
#: holding back the other streams' events: the merged log releases them up to this long ago.
STALL_S = 2.0
#: How far back :meth:`ProcessStream.checkouts_per_s` may look.
RATE_WINDOW_S = 10.0
_RELEASING = ("checkin", "close")


@dataclass
class Holder:
    """A connection checked out right now: by whom, where, since when (a ``perf_counter()`` reading)."""

    process: int
    conn: int
    thread: str
    site: str
    since: float


@dataclass
class ProcessStream:
    """What a reader knows of one process's stream: its header, where it has read to, and running figures."""

    pid: int
    name: str
    host: str = ""
    started: float = 0.0
    t0: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    segment: int = -1
    offset: int = 0
    events: int = 0
    dropped: int = 0
    bad_lines: int = 0
    lines: int = 0
    heard: float = field(default_factory=time.perf_counter, repr=False)  # when a poll last found a new line
    ended: str = ""  # "" while live; "stopped" (its end marker) or "exited" (its process is gone)
    watermark: float = float("-inf")
    last: float = float("-inf")  # the perf_counter() reading of its latest event
    counts: tuple[int, int, int] = (0, 0, 0)
    kinds: Counter[str] = field(default_factory=Counter)
    holders: dict[int, Holder] = field(default_factory=dict)
    checkout_times: deque[float] = field(default_factory=deque, repr=False)

    def checkouts_per_s(self, window_s: float, now: float) -> float:
        """Checkouts per second over the ``window_s`` seconds before ``now`` (``perf_counter()`` readings)."""
        since = now - window_s
        recent = 0
        for t in reversed(self.checkout_times):  # newest first: stop at the window's start
            if t <= since:
                break
            recent += t <= now
        return recent / window_s

    def take(self, raw: tuple[Any, ...]) -> None:
        """Follow one event of this process: counts, kinds, holders."""
        _seq, t, kind, conn, thread, _w, _d, _r, _reason, message, in_use, idle, waiting = raw
        now = self.t0 + t
        self.events += 1
        self.last = now
        self.kinds[kind] += 1
        self.counts = (in_use, idle, waiting)
        if kind == "checkout":
            self.holders[conn] = Holder(self.pid, conn, thread, message, now)
            self.checkout_times.append(now)
            while self.checkout_times and self.checkout_times[0] < now - RATE_WINDOW_S:
                self.checkout_times.popleft()
        elif kind in _RELEASING and conn != NO_CONN:
            self.holders.pop(conn, None)
        elif kind == "dispose":
            self.holders.clear()


class RecordingReader:
    """Incremental reader of the recording in ``directory`` (of the application ``name``).

    :meth:`poll` reads what every stream appended since the last poll and feeds
    :attr:`log`, a :class:`~poolviz.events.merge.MergedEventLog` keyed by pid
    (threads read ``p<pid>:<thread>``); :attr:`processes` describes each
    stream. A stream ends at its end marker, or when its process is gone. With
    ``name=None`` the directory must hold one application's recording.
    """

    def __init__(self, directory: Any, name: str | None = None, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self.directory = _as_directory(directory)
        if name is not None:
            check_name(name)
        self.name = name
        self.log = MergedEventLog((), capacity)
        self.processes: dict[int, ProcessStream] = {}
        self._clock_set = False

    def names(self) -> list[str]:
        """The applications whose recordings are in the directory."""
        return sorted({f.name for f in fmt.stream_files(self.directory)})

    def poll(self) -> int:
        """Read what is new in every stream; returns how many events :attr:`log` recorded."""
        if not self.directory.is_dir():
            raise FileNotFoundError(f"no recording at {str(self.directory)!r}: the directory is gone")
        # Any stream not listed yet starts after this reading: no watermark may pass it.
        listed = time.perf_counter()
        files = fmt.stream_files(self.directory)
        names = sorted({f.name for f in files})
        if self.name is None and len(names) > 1:
            raise ValueError(
                f"{str(self.directory)!r} holds the recordings of several applications: {', '.join(names)}; "
                "pass name= (poolviz follow: --name) to choose one"
            )
        if self.name is None and names:
            self.name = names[0]
        by_pid: dict[int, list[fmt.StreamFile]] = {}
        for f in files:
            if f.name == self.name:
                by_pid.setdefault(f.pid, []).append(f)
        for pid, segments in by_pid.items():
            if pid not in self.processes:
                self._discover(pid, segments[0])
        self._set_clock()
        recorded = 0
        for pid, stream in self.processes.items():
            if stream.ended:
                continue
            gone = not _alive(stream)
            read = stream.lines
            recorded += self._read(stream, by_pid.get(pid, []), listed)
            if gone and not stream.ended:
                stream.ended = "exited"
                recorded += self.log.end(pid)
            elif stream.lines != read:
                stream.heard = listed
            elif listed - stream.heard > STALL_S:
                # Silent past its idle lines (a full disk, a frozen process): stop holding the others back.
                recorded += self.log.add(pid, stream.t0, (), listed - STALL_S)
        return recorded

    def end_all(self) -> int:
        """Take every stream as ended (a snapshot of a recording still being written): record all that was read."""
        recorded = 0
        for pid in self.processes:
            recorded += self.log.end(pid)
        return recorded

    def dropped(self) -> dict[int, int]:
        """Events each process's stream lost, as its latest line says."""
        return {pid: s.dropped for pid, s in self.processes.items()}

    def holders(self, now: float | None = None) -> list[tuple[Holder, float]]:
        """Who holds a connection now in the live streams, with how long (seconds), longest first."""
        now = time.perf_counter() if now is None else now
        held = [(h, now - h.since) for s in self.processes.values() if not s.ended for h in s.holders.values()]
        return sorted(held, key=lambda pair: -pair[1])

    def _discover(self, pid: int, first: fmt.StreamFile) -> None:
        try:
            with first.path.open("rb") as f:
                raw = f.readline()
        except OSError:
            return
        if not raw.endswith(b"\n"):
            return  # its header is being written: next poll
        head = fmt.check_header(fmt.decode(raw) or {}, first.path)
        stream = ProcessStream(
            pid,
            str(head.get("name", first.name)),
            str(head.get("host", "")),
            float(head.get("started", 0.0)),
            float(head["t0"]),
            dict(head.get("meta") or {}),
        )
        self.processes[pid] = stream
        self.log.add(pid, stream.t0, (), None)

    def _set_clock(self) -> None:
        # The merged log's t == 0 is the earliest stream's (the log is new and has recorded nothing yet).
        if self._clock_set or not self.processes:
            return
        self._clock_set = True
        self.log.start_clock_at(min(s.t0 for s in self.processes.values()))
        if not self.log.meta:
            self.log.meta.update(next(iter(self.processes.values())).meta)

    def _read(self, stream: ProcessStream, segments: list[fmt.StreamFile], listed: float) -> int:
        recorded = 0
        numbers = [f.segment for f in segments]
        while True:
            later = [n for n in numbers if n > stream.segment]
            if stream.segment not in numbers:
                if not later:
                    return recorded
                stream.segment, stream.offset = later[0], 0  # any segment between was deleted by rotation
                later = later[1:]
            path = self.directory / fmt.file_name(stream.name, stream.pid, stream.segment)
            recorded += self._read_segment(stream, path, listed, finished=bool(later))
            if stream.ended or not later:
                return recorded
            stream.segment, stream.offset = later[0], 0

    def _read_segment(self, stream: ProcessStream, path: Path, listed: float, *, finished: bool) -> int:
        try:
            with path.open("rb") as f:
                f.seek(stream.offset)
                data = f.read()
        except OSError:
            return 0  # deleted by rotation since the listing: its events are counted as dropped by the writer
        whole = data[: data.rfind(b"\n") + 1]
        if finished and len(whole) < len(data):
            stream.bad_lines += 1  # a line cut short by a failed write; the writer went on in a new segment
        lines = whole.splitlines(keepends=True)
        recorded = 0
        for index, raw in enumerate(lines):
            line = fmt.decode(raw)
            if line is None:
                if index == len(lines) - 1 and not finished:
                    return recorded  # maybe still being written over: next poll
                stream.bad_lines += 1
                logger.warning("poolviz recording: skipped a line that is not JSON in %s", path)
            else:
                recorded += self._take(stream, line, path, listed, first=stream.offset == 0)
            stream.offset += len(raw)
            if stream.ended:
                break
        return recorded

    def _take(self, stream: ProcessStream, line: dict[str, Any], path: Path, listed: float, *, first: bool) -> int:
        stream.lines += 1
        if first or "format" in line:
            fmt.check_header(line, path)
            return 0
        stream.dropped = int(line.get("dropped", stream.dropped))
        if line.get("end"):
            stream.ended = "stopped"
            return self.log.end(stream.pid)
        try:
            events = fmt.batch_events(line)
        except ValueError as exc:
            stream.bad_lines += 1
            logger.warning("poolviz recording: skipped a batch of %s: %s", path, exc)
            return 0
        for raw in events:
            stream.take(raw)
        watermark = line.get("watermark")
        if watermark is not None:
            watermark = min(float(watermark), listed)
            stream.watermark = max(stream.watermark, watermark)
        return self.log.add(stream.pid, stream.t0, events, watermark)


def check_name(name: Any) -> str:
    """``name`` if it can name a recording (it is part of every file name)."""
    if not isinstance(name, str) or not fmt.NAME_PATTERN.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '_', '-' or '.' (not starting with '.'), got {name!r}")
    return name


def _as_directory(directory: Any) -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path (str or os.PathLike), got {directory!r}")
    path = Path(directory)
    if not path.exists():
        raise FileNotFoundError(
            f"no recording at {str(path)!r}: no such directory (poolviz.record(pool, {str(path)!r}) creates it)"
        )
    if not path.is_dir():
        raise NotADirectoryError(f"no recording at {str(path)!r}: it is a file, not a directory")
    return path


def _alive(stream: ProcessStream) -> bool:
    # Only a process of this machine can be seen to be gone; a zombie is gone (it has written its last).
    if stream.pid == os.getpid() or (stream.host and stream.host != socket.gethostname()):
        return True
    if not pid_exists(stream.pid):
        return False
    try:
        stat = Path(f"/proc/{stream.pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (always True where that cannot be asked safely)."""
    if os.name != "posix":
        return True  # Windows' os.kill(pid, 0) would end the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
