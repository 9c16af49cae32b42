"""Events to numbers: holds, occupancy, waits, throughput and Little's law (pandas).

Every function takes the frame that :meth:`poolviz.EventLog.to_frame` returns
(one row per event, the columns of :data:`poolviz.FIELDS`) and works on whole
columns at once, so a trace of a million events takes well under a second.

Two conventions run through the module:

* **Where a trace starts.** A trace that holds the log's very first event
  (``seq == 0``) and whose first event shows an empty pool (a ``connect`` or
  ``error`` with nothing in use, idle or waiting) started from an empty pool at
  ``t = 0``: its time span, and the :func:`occupancy` series, begin at 0. Any
  other trace (events dropped by a bounded log, a slice of a longer one, a pool
  passed to ``instrument()`` while busy) begins at its first event, because the
  state before it is not known.
* **Holds still open at the end.** A checkout with no later ``checkin`` or
  ``close`` of its connection has ``end`` and ``duration`` NaN and ``open``
  True in :func:`hold_intervals`, so means over ``duration`` count finished
  holds only. :func:`littles_law` counts such a hold up to the end of the trace,
  which is the time it has spent in the system so far.

Summary keys
------------
One vocabulary for the numbers a trace is summed up in: :func:`summarize`
(S, the CLI's ``summary.json``), :func:`poolviz.live.shared.frame_stats` (F,
the live widgets' strip) and :meth:`poolviz.EventLog.get_stats` (G, psycopg_pool
style). Where two of them give the same number it has one name, and
``get_stats``' name wins. Counts over the trace keep their own names: G's
counters (``requests_num``, ``connections_num``, ...) count every event since
the log began or since ``pop_stats()``, dropped events included, while S and F
count the events in the frame they are given.

=====================  ================================================  =======  =====
key                    meaning                                           unit     in
=====================  ================================================  =======  =====
``events``             events in the trace                               count    S F
``events_dropped``     events the bounded log dropped (frame.attrs)      count    S F G
``pool_max``           the pool's limit, ``max_connections``             conns    S F G
``pool_size``          connections open after the last event             conns    S F G
``pool_available``     of those, idle in the pool                        conns    S F G
``in_use``             of those, checked out (size - available)          conns    S F
``requests_waiting``   callers the pool counted waiting, last event      count    S F G
``waiting_now``        callers whose wait had not ended at ``now``       count    S F
``oldest_wait_s``      age of the oldest wait still going at ``now``     s        S F
``requests``           requests finished: checkouts + timeouts           count    S F
``checkouts``          requests that got a connection                    count    S
``timeouts``           requests that got ``MaxConnectionsExceeded``      count    S F
``throughput_rps``     checkouts per second of :func:`span`              1/s      S F
``span_s``             seconds the trace covers                          s        S
``utilisation``        time-weighted in_use / pool_max                   0..1     S
``waited``             requests that waited at all                       count    S
``wait_<stat>_s``      mean, p50, p95, p99, max of the waits             s        S F
``fair_<key>``         :func:`fairness_stats` of the workers             various  S
``workers`` ...        F's subset of them, unprefixed (see frame_stats)  various  F
``hold_mean_s``        mean of the finished holds                        s        S
``holds_open``         checkouts with no checkin yet                     count    S
``connections_opened`` ``connect`` events                                count    S F
``connections_closed`` ``close`` events (G: the same, all events)        count    S F G
``closed_by_reason``   ``close`` events per reason                       counts   S
``connect_errors``     ``error`` events (failed connects)                count    S
``leaks``              leak reports                                      count    S
``littles_<key>``      :func:`littles_law`                               various  S
=====================  ================================================  =======  =====

``waiting_now`` and ``requests_waiting`` agree on a whole live trace; they
part where the frame is a slice (a wait that began before it is not seen) or
``now`` is later than the last event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .. import checks
from ..events.vocabulary import KINDS, NO_CONN

#: The columns of the table :func:`poolviz.workload.sweep` returns, one row per pool size.
SWEEP_COLUMNS = (
    "max_connections",
    "workers",
    "requests",
    "throughput_rps",
    "wait_mean_s",
    "wait_p95_s",
    "wait_p99_s",
    "wait_max_s",
    "checkouts_per_worker_min",
    "checkouts_per_worker_max",
    "timeouts",
    "utilisation",
    "predicted_wait_p95_s",
    "predicted_wait_prob",
    "arrival_rate_rps",
    "mean_hold_s",
    "requests_failed",
)

HOLD_COLUMNS = ("conn", "thread", "start", "end", "duration", "wait_s", "end_kind", "end_reason", "open")
OCCUPANCY_COLUMNS = ("t", "in_use", "idle", "waiting")
LIFETIME_COLUMNS = ("conn", "opened", "closed", "lifetime", "checkouts", "close_reason")
WAITING_COLUMNS = ("thread", "since", "age_s")
FAIRNESS_COLUMNS = ("thread", "checkouts", "timeouts", "waits", "wait_max_s", "wait_total_s", "waiting_now")

_CONNECT = KINDS.index("connect")
_CHECKOUT = KINDS.index("checkout")
_CHECKIN = KINDS.index("checkin")
_WAIT = KINDS.index("wait")
_TIMEOUT = KINDS.index("timeout")
_CLOSE = KINDS.index("close")
_ERROR = KINDS.index("error")
_LEAK = KINDS.index("leak")


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in ``seq`` order (``to_frame`` already is; hand-built frames may not be)."""
    if frame["seq"].is_monotonic_increasing:
        return frame
    return frame.sort_values("seq", kind="stable")


def _kind_codes(frame: pd.DataFrame) -> np.ndarray:
    """The ``kind`` column as small integers indexing :data:`KINDS` (-1 for an unknown kind)."""
    kind = frame["kind"]
    # Unordered categoricals compare equal whatever their category order, so
    # check the order itself: the codes must index KINDS.
    if not (isinstance(kind.dtype, pd.CategoricalDtype) and tuple(kind.cat.categories) == KINDS):
        kind = kind.astype(pd.CategoricalDtype(KINDS))
    return kind.cat.codes.to_numpy()


def _starts_empty(frame: pd.DataFrame, codes: np.ndarray) -> bool:
    """True when the (ordered) frame begins with the log's first event, on an empty pool."""
    if frame.empty:
        return False
    first = frame.iloc[0]
    return bool(
        first["seq"] == 0
        and codes[0] in (_CONNECT, _ERROR)
        and first["in_use"] == 0
        and first["idle"] == 0
        and first["waiting"] == 0
    )


def _bounds(frame: pd.DataFrame, codes: np.ndarray) -> tuple[float, float]:
    """``(start, end)`` of the (ordered) frame's time span; NaNs for an empty frame."""
    if frame.empty:
        return math.nan, math.nan
    t = frame["t"].to_numpy(dtype=float)
    start = 0.0 if _starts_empty(frame, codes) else float(t[0])
    return start, float(t[-1])


def _time_mean(t: np.ndarray, values: np.ndarray) -> float:
    """Mean of a step series (each value holds until the next ``t``) over ``t[0]..t[-1]``."""
    if len(t) < 2 or t[-1] <= t[0]:
        return math.nan
    return float(np.dot(values[:-1], np.diff(t)) / (t[-1] - t[0]))


def hold_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per checkout: who held which connection, from when to when, and how it ended.

    Each checkout is paired with the next ``checkin`` or ``close`` of the same
    connection (``end_kind``; ``end_reason`` is the close reason, ``""`` for a
    check-in). ``wait_s`` is how long the caller waited before the checkout. A
    hold still open when the trace ends has ``end``/``duration`` NaN,
    ``end_kind``/``end_reason`` ``""`` and ``open`` True. Rows are in checkout order.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    conn = frame["conn"].to_numpy()
    rows = np.flatnonzero(np.isin(codes, (_CHECKOUT, _CHECKIN, _CLOSE)) & (conn != NO_CONN))
    # Group those rows by connection, keeping event order inside each group:
    # a checkout's end is then simply the row after it.
    rows = rows[np.argsort(conn[rows], kind="stable")]
    c, k = conn[rows], codes[rows]
    is_checkout = k == _CHECKOUT
    next_same_conn = np.append(c[1:] == c[:-1], False)
    next_kind = np.append(k[1:], -1)
    ended = is_checkout & next_same_conn & ((next_kind == _CHECKIN) | (next_kind == _CLOSE))

    start_rows = rows[is_checkout]
    end_rows = np.append(rows[1:], -1)[is_checkout]
    closed = ended[is_checkout]
    order = np.argsort(start_rows, kind="stable")
    start_rows, end_rows, closed = start_rows[order], end_rows[order], closed[order]

    t = frame["t"].to_numpy(dtype=float)
    end_at = np.where(closed, end_rows, start_rows)  # a valid row everywhere; masked below
    start = t[start_rows]
    end = np.where(closed, t[end_at], np.nan)
    by_close = closed & (codes[end_at] == _CLOSE)
    end_kind = np.where(closed, np.where(by_close, "close", "checkin"), "")
    end_reason = np.where(by_close, frame["reason"].to_numpy(dtype=object)[end_at], "")
    return pd.DataFrame(
        {
            "conn": conn[start_rows].astype("int64"),
            "thread": frame["thread"].to_numpy(dtype=object)[start_rows],
            "start": start,
            "end": end,
            "duration": end - start,
            "wait_s": frame["wait_s"].to_numpy(dtype=float)[start_rows],
            "end_kind": end_kind.astype(object),
            "end_reason": end_reason.astype(object),
            "open": ~closed,
        },
        columns=list(HOLD_COLUMNS),
    )


def occupancy(frame: pd.DataFrame) -> pd.DataFrame:
    """The pool's counts as a step series: each row's values hold until the next row's ``t``.

    One row per event, in event order, with the counts right after it. A trace
    that starts from an empty pool (see the module docstring) gets one extra
    row of zeros at ``t = 0`` first, so time averages cover the whole log.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    occ = frame.loc[:, list(OCCUPANCY_COLUMNS)].reset_index(drop=True)
    if _starts_empty(frame, codes):
        zero = pd.DataFrame({"t": [0.0], "in_use": [0], "idle": [0], "waiting": [0]})
        occ = pd.concat([zero.astype(occ.dtypes.to_dict()), occ], ignore_index=True)
    return occ


def _request_waits(frame: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """``wait_s`` of every request that finished, whether it got a connection or timed out."""
    mask = (codes == _CHECKOUT) | (codes == _TIMEOUT)
    return frame["wait_s"].to_numpy(dtype=float)[mask]


def _now(frame: pd.DataFrame, now: float | None) -> float:
    """The moment "still waiting" is judged at: ``now`` if given, else the trace's last event."""
    if now is not None:
        return checks.number("now", now)
    return float(frame["t"].iloc[-1]) if len(frame) else math.nan


def waits_in_progress(frame: pd.DataFrame, now: float | None = None) -> pd.DataFrame:
    """The callers still waiting for a connection at ``now`` (default: the trace's last event).

    One row per waiting thread (``thread``, ``since``, ``age_s``), oldest first:
    a ``wait`` event with no later ``checkout``, ``timeout`` or ``error`` by the
    same thread. These are the waits :func:`wait_stats` would otherwise miss,
    because a wait's length is only written down when it ends: under barging a
    worker can wait for the whole run and never appear in the finished waits.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    mask = np.isin(codes, (_WAIT, _CHECKOUT, _TIMEOUT, _ERROR))
    calls = pd.DataFrame(
        {
            "thread": frame["thread"].to_numpy(dtype=object)[mask],
            "code": codes[mask],
            "t": frame["t"].to_numpy(dtype=float)[mask],
        }
    )
    last = calls.groupby("thread", sort=False).tail(1)
    waiting = last.loc[last["code"] == _WAIT].sort_values("t", kind="stable")
    at = _now(frame, now)
    return pd.DataFrame(
        {
            "thread": waiting["thread"].to_numpy(dtype=object),
            "since": waiting["t"].to_numpy(dtype=float),
            "age_s": np.maximum(at - waiting["t"].to_numpy(dtype=float), 0.0),
        },
        columns=list(WAITING_COLUMNS),
    )


def wait_stats(frame: pd.DataFrame, now: float | None = None) -> dict[str, Any]:
    """How long requests waited, the waits still going counted at their age so far.

    Every finished request counts (checkouts and timeouts, those that did not
    wait as 0), and so does every caller still waiting at ``now`` (see
    :func:`waits_in_progress`), at the age its wait has reached: the figures
    never read 0 while somebody has been waiting for seconds.

    Keys: ``count`` (requests, finished and waiting), ``waited`` (those that
    waited at all), ``mean_s``, ``p50_s``, ``p95_s``, ``p99_s``, ``max_s`` (NaN
    with no requests), ``in_progress`` (callers waiting at ``now``) and
    ``oldest_wait_s`` (the age of the oldest of them, 0.0 when none).
    Percentiles interpolate linearly between observations, as ``numpy.quantile`` does.
    """
    frame = _ordered(frame)
    ongoing = waits_in_progress(frame, now)["age_s"].to_numpy(dtype=float)
    waits = np.concatenate([_request_waits(frame, _kind_codes(frame)), ongoing])
    progress = {"in_progress": len(ongoing), "oldest_wait_s": float(ongoing.max()) if len(ongoing) else 0.0}
    if not len(waits):
        return {
            "count": 0,
            "waited": 0,
            **dict.fromkeys(("mean_s", "p50_s", "p95_s", "p99_s", "max_s"), math.nan),
            **progress,
        }
    p50, p95, p99 = np.quantile(waits, (0.5, 0.95, 0.99))
    return {
        "count": len(waits),
        "waited": int(np.count_nonzero(waits > 0)),
        "mean_s": float(waits.mean()),
        "p50_s": float(p50),
        "p95_s": float(p95),
        "p99_s": float(p99),
        "max_s": float(waits.max()),
        **progress,
    }


def fairness(frame: pd.DataFrame, threads: Iterable[str] | None = None, now: float | None = None) -> pd.DataFrame:
    """Who the pool served: one row per caller thread, busiest first.

    Columns: ``thread``, ``checkouts``, ``timeouts``, ``waits`` (requests that
    waited at all, the one still waiting included), ``wait_max_s`` (its longest
    single wait, one still going counted at its age at ``now``),
    ``wait_total_s`` and ``waiting_now``. ``threads`` names the workers to
    report: a worker that never got a connection (or never reached the pool)
    still gets its row of zeros. By default every thread that made a request.
    A fair pool gives every worker about the same checkouts; peewee's pool lets
    a thread that releases and asks again at once take its connection straight
    back, so with no think time a few workers take nearly all of them.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    done = (codes == _CHECKOUT) | (codes == _TIMEOUT)
    finished = pd.DataFrame(
        {
            "thread": frame["thread"].to_numpy(dtype=object)[done],
            "checkouts": (codes[done] == _CHECKOUT).astype("int64"),
            "timeouts": (codes[done] == _TIMEOUT).astype("int64"),
            "wait_s": frame["wait_s"].to_numpy(dtype=float)[done],
        }
    )
    ongoing = waits_in_progress(frame, now)
    rows = pd.concat(
        [
            finished,
            pd.DataFrame({"thread": ongoing["thread"], "checkouts": 0, "timeouts": 0, "wait_s": ongoing["age_s"]}),
        ],
        ignore_index=True,
    )
    rows["waited"] = (rows["wait_s"] > 0).astype("int64")
    by = rows.groupby("thread", sort=False)
    table = pd.DataFrame(
        {
            "checkouts": by["checkouts"].sum(),
            "timeouts": by["timeouts"].sum(),
            "waits": by["waited"].sum(),
            "wait_max_s": by["wait_s"].max(),
            "wait_total_s": by["wait_s"].sum(),
        }
    )
    table["waiting_now"] = table.index.isin(ongoing["thread"])
    if threads is not None:
        names = [str(name) for name in threads]
        table = table.reindex(names).fillna(
            {"checkouts": 0, "timeouts": 0, "waits": 0, "wait_max_s": 0.0, "wait_total_s": 0.0, "waiting_now": False}
        )
    table = table.astype({"checkouts": "int64", "timeouts": "int64", "waits": "int64", "waiting_now": bool})
    table = table.rename_axis("thread").reset_index()
    table = table.sort_values(["checkouts", "thread"], ascending=[False, True], kind="stable", ignore_index=True)
    return table.loc[:, list(FAIRNESS_COLUMNS)]


def fairness_stats(
    frame: pd.DataFrame, threads: Iterable[str] | None = None, now: float | None = None
) -> dict[str, Any]:
    """:func:`fairness` in a few numbers: how evenly the workers were served.

    Keys: ``workers``, ``checkouts_min``, ``checkouts_median``,
    ``checkouts_max``, ``starved`` (workers with no checkout at all),
    ``top_share`` (the busiest worker's share of all checkouts),
    ``jain_index`` (Jain's index of the checkouts, ``(Σx)² / (n·Σx²)``: 1 when
    every worker got the same, ``1/n`` when one got everything),
    ``longest_wait_s`` and ``longest_wait_thread`` (one still waiting counts at
    its age). NaN (and ``""``) with no workers.
    """
    table = fairness(frame, threads, now)
    x = table["checkouts"].to_numpy(dtype=float)
    if not len(x):
        return {
            "workers": 0,
            "starved": 0,
            "longest_wait_thread": "",
            **dict.fromkeys(
                ("checkouts_min", "checkouts_median", "checkouts_max", "top_share", "jain_index", "longest_wait_s"),
                math.nan,
            ),
        }
    total = x.sum()
    longest = int(table["wait_max_s"].to_numpy(dtype=float).argmax())
    return {
        "workers": len(x),
        "checkouts_min": int(x.min()),
        "checkouts_median": float(np.median(x)),
        "checkouts_max": int(x.max()),
        "starved": int(np.count_nonzero(x == 0)),
        "top_share": float(x.max() / total) if total else math.nan,
        "jain_index": float(total**2 / (len(x) * np.dot(x, x))) if total else math.nan,
        "longest_wait_s": float(table["wait_max_s"].iloc[longest]),
        "longest_wait_thread": str(table["thread"].iloc[longest]),
    }


def span(frame: pd.DataFrame) -> float:
    """Seconds the trace covers (from 0 when it starts from an empty pool); NaN when empty."""
    frame = _ordered(frame)
    start, end = _bounds(frame, _kind_codes(frame))
    return end - start


def throughput(frame: pd.DataFrame) -> float:
    """Checkouts per second over the trace's :func:`span` (NaN for a span of zero)."""
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    start, end = _bounds(frame, codes)
    if not end > start:
        return math.nan
    return float(np.count_nonzero(codes == _CHECKOUT) / (end - start))


def utilisation(frame: pd.DataFrame, max_connections: int) -> float:
    """Time-weighted mean of ``in_use / max_connections`` over the :func:`occupancy` series."""
    limit = checks.count("max_connections", max_connections)
    occ = occupancy(frame)
    return _time_mean(occ["t"].to_numpy(dtype=float), occ["in_use"].to_numpy(dtype=float)) / limit


def timeouts(frame: pd.DataFrame) -> int:
    """How many requests got ``MaxConnectionsExceeded``."""
    return int(np.count_nonzero(_kind_codes(frame) == _TIMEOUT))


def connection_lifetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per connection serial seen in the trace, in serial order.

    ``opened`` is the ``t`` of its ``connect`` (or, if that event was dropped,
    its close time minus the age the ``close`` reports), ``closed`` the ``t`` of
    its ``close`` (NaN while still open), ``lifetime`` the difference,
    ``checkouts`` how many checkouts the trace holds for it and ``close_reason``
    the close reason (``""`` while open).
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    has_conn = frame["conn"].to_numpy() != NO_CONN
    conns = pd.Index(np.unique(frame["conn"].to_numpy()[has_conn]), name="conn")
    opened = frame.loc[(codes == _CONNECT) & has_conn].groupby("conn")["t"].first()
    closes = frame.loc[(codes == _CLOSE) & has_conn].groupby("conn")[["t", "duration_s", "reason"]].last()
    checkouts = frame.loc[(codes == _CHECKOUT) & has_conn].groupby("conn").size()

    out = pd.DataFrame(index=conns)
    closed = closes["t"].reindex(conns).astype(float)
    out["opened"] = opened.reindex(conns).astype(float).fillna(closed - closes["duration_s"].reindex(conns))
    out["closed"] = closed
    out["lifetime"] = out["closed"] - out["opened"]
    out["checkouts"] = checkouts.reindex(conns, fill_value=0).astype("int64")
    out["close_reason"] = closes["reason"].reindex(conns).fillna("").astype(object)
    return out.reset_index().loc[:, list(LIFETIME_COLUMNS)]


def littles_law(frame: pd.DataFrame) -> dict[str, float]:
    """Little's law checked on the trace: is the mean number in the system equal to λ·W?

    ``L`` is the time-average of ``in_use + waiting`` over the :func:`occupancy`
    series; ``lambda_rps`` is requests (checkouts + timeouts) per second; ``W_s``
    is the mean time a request spends in the system, its wait plus its hold (a
    timeout holds nothing; an open hold counts up to the end of the trace).
    ``L_from_lambda_W`` is λ·W and ``relative_error`` is ``(λ·W - L) / L``. On
    a trace that starts and ends with an empty pool the two agree up to clock
    rounding; requests already in the system when a trace begins, or still
    waiting when it ends, show up as error.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    start, end = _bounds(frame, codes)
    occ = occupancy(frame)
    t = occ["t"].to_numpy(dtype=float)
    L = _time_mean(t, (occ["in_use"] + occ["waiting"]).to_numpy(dtype=float))
    requests = int(np.count_nonzero((codes == _CHECKOUT) | (codes == _TIMEOUT)))
    holds = hold_intervals(frame)
    held = float((holds["end"].fillna(end) - holds["start"]).sum())
    waited = float(_request_waits(frame, codes).sum())
    span_s = end - start
    lam = requests / span_s if span_s > 0 else math.nan
    W = (waited + held) / requests if requests else math.nan
    predicted = lam * W
    error = (predicted - L) / L if L else math.nan
    return {"L": L, "lambda_rps": lam, "W_s": W, "L_from_lambda_W": predicted, "relative_error": error}


def _plain(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars to Python ones, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def pool_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """The pool's state after the last event, named as :meth:`~poolviz.EventLog.get_stats` names it.

    ``pool_max`` (``frame.attrs``' ``max_connections``), ``pool_size``,
    ``pool_available``, ``in_use`` and ``requests_waiting``; zeros for an empty frame.
    """
    frame = _ordered(frame)
    last = frame.iloc[-1] if len(frame) else None
    in_use, idle, waiting = (int(last[c]) for c in ("in_use", "idle", "waiting")) if last is not None else (0, 0, 0)
    return {
        "pool_max": frame.attrs.get("max_connections"),
        "pool_size": in_use + idle,
        "pool_available": idle,
        "in_use": in_use,
        "requests_waiting": waiting,
    }


def summarize(
    frame: pd.DataFrame,
    max_connections: int | None = None,
    now: float | None = None,
    threads: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The trace in one JSON-ready dict of plain numbers (NaN becomes None).

    ``max_connections`` defaults to the one recorded in ``frame.attrs`` and is
    reported as ``pool_max``; without a limit, ``utilisation`` is None. The keys
    are those marked S in the module's table of summary keys; waits still going
    at ``now`` count at their age (see :func:`wait_stats`), ``fair_*`` are the
    :func:`fairness_stats` of ``threads``.
    """
    frame = _ordered(frame)
    codes = _kind_codes(frame)
    limit = max_connections if max_connections is not None else frame.attrs.get("max_connections")
    # peewee reads a limit of 0 (or None) as "no limit": there is nothing to utilise.
    limit = checks.count("max_connections", limit) if limit else None
    waits = wait_stats(frame, now)
    fair = fairness_stats(frame, threads, now)
    holds = hold_intervals(frame)
    closes = frame.loc[codes == _CLOSE, "reason"]
    little = littles_law(frame)
    summary = {
        "events": len(frame),
        "events_dropped": frame.attrs.get("dropped", 0),
        **pool_counts(frame),
        "pool_max": limit,
        "span_s": span(frame),
        "requests": waits["count"] - waits["in_progress"],
        "checkouts": np.count_nonzero(codes == _CHECKOUT),
        "timeouts": np.count_nonzero(codes == _TIMEOUT),
        "throughput_rps": throughput(frame),
        "utilisation": utilisation(frame, limit) if limit else None,
        "waited": waits["waited"],
        **{f"wait_{key}": waits[key] for key in ("mean_s", "p50_s", "p95_s", "p99_s", "max_s")},
        "waiting_now": waits["in_progress"],
        "oldest_wait_s": waits["oldest_wait_s"],
        **{f"fair_{key}": value for key, value in fair.items()},
        "hold_mean_s": holds["duration"].mean() if len(holds) else math.nan,
        "holds_open": holds["open"].sum(),
        "connections_opened": np.count_nonzero(codes == _CONNECT),
        "connections_closed": len(closes),
        "closed_by_reason": closes.value_counts().sort_index().to_dict(),
        "connect_errors": np.count_nonzero(codes == _ERROR),
        "leaks": np.count_nonzero(codes == _LEAK),
        **{f"littles_{key}": value for key, value in little.items()},
    }
    plain: dict[str, Any] = _plain(summary)
    return plain
