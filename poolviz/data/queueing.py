"""Queueing theory for pool sizing: Erlang C (the M/M/c queue) and Little's law.

A pool of ``c`` connections serving requests that arrive at random (Poisson,
rate λ per second) and hold a connection for a random (exponential) time of
mean ``service_time`` is an M/M/c queue. Its offered load ``A = λ·service_time``
(in Erlangs) is the mean number of connections the traffic keeps busy; the pool
is stable only while ``A < c``. Real holds are rarely exponential, so treat
these figures as a first estimate to check against a measured trace.

Pure Python and ``math``: no pandas, so the command line can size a pool cheaply.
"""

from __future__ import annotations

import math

from .. import checks


def _erlang_c(pool_size: int, load: float) -> float:
    """Erlang C from the Erlang B recursion ``B(k) = A·B(k-1) / (k + A·B(k-1))``.

    The recursion only ever divides numbers of similar size, so it stays
    accurate for pools of thousands of connections where the textbook sum of ``A**k / k!``
    overflows.
    """
    if load >= pool_size:
        return 1.0
    if load == 0:
        return 0.0
    b = 1.0
    for k in range(1, pool_size + 1):
        b = load * b / (k + load * b)
    return b / (1.0 - (load / pool_size) * (1.0 - b))


def erlang_c(pool_size: int, offered_load: float) -> float:
    """Probability that an arrival has to wait in an M/M/c queue (Erlang's C formula).

    ``pool_size`` is ``c``; ``offered_load`` is ``λ·service_time``
    in Erlangs. An overloaded pool (``offered_load >= pool_size``) makes
    everyone wait: the result is then 1.0.
    """
    return _erlang_c(checks.count("pool_size", pool_size), checks.number("offered_load", offered_load))


def mean_wait(pool_size: int, arrival_rate: float, service_time: float) -> float:
    """Mean time an M/M/c arrival waits for a server, in the units of ``service_time``.

    ``Wq = C(c, A) · service_time / (c - A)``; ``math.inf`` when the pool
    cannot keep up (``A >= c``).
    """
    c = checks.count("pool_size", pool_size)
    lam = checks.number("arrival_rate", arrival_rate)
    s = checks.number("service_time", service_time, positive=True)
    load = lam * s
    if load >= c:
        return math.inf
    return _erlang_c(c, load) * s / (c - load)


def wait_percentile(pool_size: int, arrival_rate: float, service_time: float, q: float) -> float:
    """The wait that a fraction ``q`` of M/M/c arrivals do not exceed (``q=0.95`` for p95).

    The wait has ``P(W > t) = C · exp(-(c·μ - λ)·t)`` with ``μ = 1/service_time``,
    so the quantile is 0 while ``1 - q >= C`` (that many arrivals do not wait)
    and ``ln(C / (1 - q)) / (c·μ - λ)`` beyond. ``math.inf`` for an unstable pool
    or for ``q = 1`` when some arrivals wait.
    """
    c = checks.count("pool_size", pool_size)
    lam = checks.number("arrival_rate", arrival_rate)
    s = checks.number("service_time", service_time, positive=True)
    fraction = checks.number("q", q)
    if fraction > 1:
        raise ValueError(f"q must be a fraction between 0 and 1 (0.95 for p95), got {q!r}")
    load = lam * s
    if load >= c:
        return math.inf
    waits = _erlang_c(c, load)
    tail = 1.0 - fraction
    if tail >= waits:
        return 0.0
    if tail == 0:
        return math.inf
    return math.log(waits / tail) * s / (c - load)


def recommend_pool_size(arrival_rate: float, service_time: float, target_wait: float, max_pool_size: int = 1000) -> int:
    """The smallest pool size whose M/M/c mean wait is at most ``target_wait``.

    Raises ``ValueError`` when even ``max_pool_size`` connections miss the target
    (a ``target_wait`` of 0 can only be met by traffic of zero).
    """
    lam = checks.number("arrival_rate", arrival_rate)
    s = checks.number("service_time", service_time, positive=True)
    target = checks.number("target_wait", target_wait)
    limit = checks.count("max_pool_size", max_pool_size)
    load = lam * s
    if load == 0:
        return 1
    # Walk the Erlang B recursion once, testing each stable size on the way,
    # rather than recomputing it from scratch for every candidate.
    b = 1.0
    for c in range(1, limit + 1):
        b = load * b / (c + load * b)
        if c > load:
            waits = b / (1.0 - (load / c) * (1.0 - b))
            if waits * s / (c - load) <= target:
                return c
    raise ValueError(
        f"no pool size up to max_pool_size={limit} gets the mean wait down to target_wait={target_wait!r} "
        f"(offered load {load:g} Erlangs)"
    )


def mean_in_system(arrival_rate: float, time_in_system: float) -> float:
    """Little's law ``L = λ·W``: the mean number of requests in the system.

    (:func:`poolviz.analysis.littles_law` checks the law on a measured trace.)
    """
    lam = checks.number("arrival_rate", arrival_rate)
    return lam * checks.number("time_in_system", time_in_system)
