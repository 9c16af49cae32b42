"""Who holds every connection right now: each connection checked out, its holder, where it was taken, for how long.

The answer to "who is holding my connections?" when a pool runs dry, read
from the events alone, so it works as well on a live pool as on a saved or
merged multi-process trace: a connection is held from its latest
``checkout`` until a ``checkin``, a ``close`` or a ``dispose`` follows. A
connection checked out before the events start (instrumented while in use, or
its checkout dropped by the log's capacity) is not known to be held, and is
not listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..events import EventLog

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported when holders() is called: poolviz.data's package imports this module, and
# `import poolviz` must not load pandas.

#: The columns of :func:`holders` (a merged trace adds ``process``).
HOLDER_COLUMNS = ("conn", "thread", "site", "held_s")
_HOLD_KINDS = ("checkout", "checkin", "close")


def holders(source: Any, now: float | None = None) -> pd.DataFrame:
    """One row per connection held at ``now``: ``conn``, ``thread`` (the holder), ``site``, ``held_s``; longest first.

    ``source`` is anything :func:`poolviz.data.traces.as_frame` reads (a
    frame, an :class:`~poolviz.events.EventLog`, a trace path, a workload
    result) or an instrumented pool, database or engine of any library.
    ``now`` is on the events' clock (``t``, seconds since the log started);
    by default the log's present for a live log or pool, and the last event's
    ``t`` for a frame. ``thread`` is the holding thread or asyncio task,
    ``site`` where it checked the connection out (see
    :mod:`poolviz.pools.sites`; ``""`` when sites are off). A merged
    multi-process trace adds ``process``, and connections are told apart by
    ``(process, process_conn)``. ``frame.attrs["now"]`` is the ``now`` used.
    """
    import pandas as pd

    from .frames import SITE, add_site

    frame, log = _events(source)
    frame = frame.reset_index(drop=True)
    if now is None:
        now = log.now() if log is not None else (float(frame["t"].max()) if len(frame) else 0.0)
    elif isinstance(now, bool) or not isinstance(now, (int, float)):
        raise TypeError(f"now must be a number of seconds on the events' clock (t) or None, got {now!r}")
    merged = "process" in frame.columns and "process_conn" in frame.columns
    columns = [*HOLDER_COLUMNS, "process"] if merged else list(HOLDER_COLUMNS)
    if SITE not in frame.columns:
        frame = add_site(frame.copy())
    upto = frame.loc[frame["t"] <= now] if len(frame) else frame
    kinds = upto["kind"].astype(str)
    disposed = upto.index[kinds == "dispose"]
    if len(disposed):  # dispose() forgets every connection: nobody holds one from before it
        upto, kinds = upto.loc[disposed[-1] :], kinds.loc[disposed[-1] :]
    moves = upto.loc[kinds.isin(_HOLD_KINDS) & (upto["conn"] != 0)]
    keys = ["process", "process_conn"] if merged else ["conn"]
    latest = moves.drop_duplicates(subset=keys, keep="last")
    held = latest.loc[latest["kind"].astype(str) == "checkout"]
    out = pd.DataFrame(
        {
            "conn": held["conn"].astype("int64"),
            "thread": held["thread"].astype("object"),
            "site": held[SITE].astype("object"),
            "held_s": (float(now) - held["t"]).astype("float64"),
        }
    )
    if merged:
        out["process"] = held["process"].astype("int64")
    out = out.sort_values(["held_s", "conn"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out = out.loc[:, columns]
    out.attrs["now"] = float(now)
    return out


def _events(source: Any) -> tuple[pd.DataFrame, EventLog | None]:
    """The events of ``source`` as a frame, and its live log when it has one (for the present time)."""
    from .traces import as_frame

    log: Any = source if isinstance(source, EventLog) else getattr(source, "events", None)
    if not isinstance(log, EventLog):
        log = None
    try:
        frame = as_frame(source)
    except TypeError as not_events:
        from ..pools import events_of  # an instrumented SQLAlchemy engine or psycopg_pool pool

        try:
            log = events_of(source)
        except TypeError:
            raise not_events from None
        frame = log.to_frame()
    return frame, log
