"""The recording's files: their names, and the JSON lines they hold.

One *stream* per process: ``<directory>/<name>.<pid>.<segment>.pvrec``, where
``segment`` counts from 0 as the stream rotates. Each segment is JSON lines,
written whole (one ``os.write`` each), so a reader sees a line complete or
not yet ended by its newline:

* a header, first in every segment (so a segment stands alone once older ones
  are deleted): ``{"format": "poolviz-recording", "version": 1, "name",
  "pid", "host", "started" (wall clock), "t0" (the ``perf_counter()`` reading
  of the log's ``t == 0``: ``CLOCK_MONOTONIC``, the same in every process of
  the machine), "segment", "meta" (the pool's, credentials masked)}``;
* batches: ``{"rows": "<base64>", "watermark": w, "dropped": n}``: the
  events, each a tuple of the 13 :class:`~poolviz.events.Event` fields, as a
  list pickled with protocol 4 (read back by an unpickler that refuses every
  global, so a file can hold data only, never code). Pickle because the
  flusher runs in the application: turning floats into JSON text took half of
  its CPU per event (see ``benchmarks/recording_overhead.py``). A reader also
  takes ``{"events": [[13 fields], ...], ...}``, the same in plain JSON, for
  lines written by hand or by other tools. The process will write no event
  stamped before ``w`` (a ``perf_counter()`` reading) after this line; ``n``
  is how many events the stream has lost so far (the log's capacity, deleted
  segments, failed writes), never silently;
* an end marker when the recorder stops or the process exits:
  ``{"end": true, "watermark": w, "dropped": n}``.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

FORMAT = "poolviz-recording"
#: Fields of an event in a batch: those of :class:`~poolviz.events.Event`.
EVENT_FIELDS = 13
VERSION = 1
SUFFIX = ".pvrec"
#: What a recording's name may be: it is part of every file name.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_FILE = re.compile(r"(?P<name>.+)\.(?P<pid>\d+)\.(?P<segment>\d+)" + re.escape(SUFFIX))


class RecordingVersionError(ValueError):
    """A recording written in a format version this poolviz does not read."""


class StreamFile(NamedTuple):
    """One segment file of one stream, as its name tells."""

    name: str
    pid: int
    segment: int
    path: Path


def file_name(name: str, pid: int, segment: int) -> str:
    """The file of ``segment`` of the stream of process ``pid`` of recording ``name``."""
    return f"{name}.{pid}.{segment:06d}{SUFFIX}"


def parse_file(path: Path) -> StreamFile | None:
    """What a recording file's name says, or None for any other file."""
    match = _FILE.fullmatch(path.name)
    if match is None:
        return None
    return StreamFile(match["name"], int(match["pid"]), int(match["segment"]), path)


def stream_files(directory: Path) -> list[StreamFile]:
    """Every recording file in ``directory`` (none when it cannot be listed), by name, pid and segment."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    found = [f for f in map(parse_file, entries) if f is not None]
    return sorted(found, key=lambda f: (f.name, f.pid, f.segment))


def header(name: str, pid: int, started: float, t0: float, segment: int, meta: dict[str, Any]) -> dict[str, Any]:
    """The first line of every segment."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "pid": pid,
        "host": socket.gethostname(),
        "started": started,
        "t0": t0,
        "segment": segment,
        "meta": meta,
    }


def check_header(line: dict[str, Any], path: Path) -> dict[str, Any]:
    """``line`` if it is a header this poolviz reads, else an error naming the file and what it found."""
    if not isinstance(line, dict) or line.get("format") != FORMAT:
        raise ValueError(f"{path} is not a poolviz recording: its first line is not a {FORMAT!r} header")
    if line.get("version") != VERSION:
        raise RecordingVersionError(
            f"{path} is a poolviz recording in format version {line.get('version')!r}; "
            f"this poolviz reads version {VERSION} only (record again, or read it with the poolviz that wrote it)"
        )
    return line


def encode(line: dict[str, Any]) -> bytes:
    """One JSON line, newline included."""
    return (json.dumps(line, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def batch(events: Sequence[tuple[Any, ...]], watermark: float, dropped: int) -> bytes:
    """A batch line: the events (13 fields each), the writer's watermark and its running drop count."""
    rows = base64.b64encode(pickle.dumps(events, protocol=4)).decode("ascii")
    return encode({"rows": rows, "watermark": watermark, "dropped": dropped})


def batch_events(line: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The events of a batch line, each a tuple of the 13 Event fields; ``ValueError`` if they are not."""
    if "rows" in line:
        try:
            events = _DataOnly(io.BytesIO(base64.b64decode(line["rows"], validate=True))).load()
        except Exception as exc:
            raise ValueError(f"a batch whose rows cannot be read: {exc}") from None
    else:
        events = line.get("events", ())
    if not isinstance(events, (list, tuple)):
        raise ValueError(f"a batch whose events are a {type(events).__name__}, not a list")
    rows = [tuple(e) for e in events if isinstance(e, (list, tuple))]
    if len(rows) != len(events) or any(len(row) != EVENT_FIELDS for row in rows):
        raise ValueError(f"a batch whose events are not lists of {EVENT_FIELDS} fields")
    return rows


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data only: every global (a class, a function: a way to run code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a recording holds data only, not {module}.{name}")


def end(watermark: float, dropped: int) -> bytes:
    """The stream's last line: its recorder stopped, or its process exited."""
    return encode({"end": True, "watermark": watermark, "dropped": dropped})


def decode(raw: bytes) -> dict[str, Any] | None:
    """A line's object, or None when it is not (yet) a whole JSON object."""
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None
