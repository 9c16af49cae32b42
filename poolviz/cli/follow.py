"""``poolviz follow DIR``: a top-like summary of a recording (:func:`poolviz.record`) while the application runs.

One row per process (its pool's counts now, checkouts per second, waits,
timeouts, events dropped) and who holds each connection right now, longest
first, with the site in the application's code where it was taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..recording import RecordingReader
from ..units import duration
from .values import UsageError, positive

#: The window, in seconds of the recording, over which checkouts per second are counted.
RATE_WINDOW_S = 5.0
#: Holders listed at most (the longest held); the rest are counted.
MAX_HOLDERS = 15
_CLEAR = "\x1b[H\x1b[2J"
_COLUMNS = ("process", "state", "in use", "idle", "waiting", "checkouts/s", "waits", "timeouts", "dropped")


def add_follow_command(commands: Any) -> None:
    """Add the ``follow`` command and its options to ``commands`` (the parser's subparsers)."""
    follow = commands.add_parser(
        "follow",
        help="follow a recording (poolviz.record) live: pools per process and who holds each connection",
        description="Read the recording an application writes with poolviz.record(pool, DIR) and print, every "
        "--interval seconds, one row per process (in use, idle, waiting, checkouts/s, waits, timeouts, dropped) "
        "and the connections held right now, longest first, with the site where each was taken. Ctrl-C ends it.",
    )
    follow.add_argument("directory", type=Path, help="the recording's directory, as given to poolviz.record")
    follow.add_argument("--interval", type=positive, default=1.0, help="seconds between two summaries (default: 1)")
    follow.add_argument("--once", action="store_true", help="print one summary of what is recorded so far and exit")
    follow.add_argument("--name", help="the application to follow, when the directory holds several recordings")


def follow(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print summaries of the recording in ``args.directory`` until Ctrl-C (or once, with ``--once``)."""
    out = sys.stdout if out is None else out
    try:
        reader = RecordingReader(args.directory, args.name)
        reader.poll()
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.once:
        if not reader.processes:
            raise UsageError(
                f"no recording in {str(args.directory)!r} yet "
                f"(poolviz.record(pool, {str(args.directory)!r}) writes one)"
            )
        out.write(summary(reader) + "\n")
        return 0
    clear = _CLEAR if out.isatty() else ""
    try:
        while True:
            out.write(clear + summary(reader) + "\n\n")
            out.flush()
            time.sleep(args.interval)
            try:
                reader.poll()
            except (OSError, ValueError) as exc:
                raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        return 0


def summary(reader: RecordingReader, now: float | None = None) -> str:
    """The text of one summary: a header line, a row per process, then who holds each connection now."""
    now = time.perf_counter() if now is None else now
    streams = reader.processes
    if not streams:
        return f"{reader.directory}: waiting for a recording (no stream yet)"
    live = sum(1 for s in streams.values() if not s.ended)
    events = sum(s.events for s in streams.values())
    lines = [
        f"{reader.directory}: {reader.name!r}, {_plural(len(streams), 'process', 'processes')} ({live} live), "
        f"{events} events read",
        "",
    ]
    rows = [list(_COLUMNS)]
    for pid, s in sorted(streams.items()):
        # A stream that ended is summed up over its last seconds.
        at = now if not s.ended else s.last
        rows.append(
            [
                str(pid),
                s.ended or "live",
                *map(str, s.counts),
                f"{s.checkouts_per_s(RATE_WINDOW_S, at):.1f}",
                str(s.kinds["wait"]),
                str(s.kinds["timeout"]),
                str(s.dropped),
            ]
        )
    lines += _table(rows)
    held = reader.holders(now)
    lines += ["", f"holders now, longest first ({_plural(len(held), 'connection', 'connections')} held)"]
    if held:
        table = [["conn", "thread", "site", "held for"]]
        for holder, seconds in held[:MAX_HOLDERS]:
            table.append([f"p{holder.process}:{holder.conn}", holder.thread, holder.site or "-", duration(seconds)])
        lines += _table(table)
        if len(held) > MAX_HOLDERS:
            lines.append(f"... and {len(held) - MAX_HOLDERS} more")
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
