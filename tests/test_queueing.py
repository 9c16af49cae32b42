"""Specifications for poolviz.data.queueing: Erlang C, M/M/c waits, pool sizing, Little's law."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from poolviz.data import queueing


def textbook_erlang_c(servers: int, load: Fraction) -> float:
    """Erlang C from its closed form, in exact rational arithmetic (slow, but no rounding)."""
    head = sum(load**k / math.factorial(k) for k in range(servers))
    tail = load**servers / math.factorial(servers) * servers / (servers - load)
    return float(tail / (head + tail))


def test_two_servers_at_one_erlang_wait_a_third_of_the_time() -> None:
    """erlang_c(2, 1) is 1/3."""
    assert queueing.erlang_c(2, 1) == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("load", [0.05, 0.3, 0.5, 0.9, 0.999])
def test_one_server_waits_with_probability_equal_to_its_load(load: float) -> None:
    """For M/M/1 the probability of waiting is the utilisation: erlang_c(1, a) == a."""
    assert queueing.erlang_c(1, load) == pytest.approx(load, rel=1e-12)


def test_published_table_value() -> None:
    """Ten servers offered eight Erlangs: about 40.9 % of arrivals wait."""
    assert queueing.erlang_c(10, 8) == pytest.approx(0.409, abs=5e-4)


@pytest.mark.parametrize(("servers", "load"), [(3, "2.5"), (20, "15"), (50, "45.5"), (300, "280")])
def test_agrees_with_the_exact_closed_form(servers: int, load: str) -> None:
    """The Erlang B recursion matches the closed form computed exactly."""
    assert queueing.erlang_c(servers, float(load)) == pytest.approx(
        textbook_erlang_c(servers, Fraction(load)), rel=1e-9
    )


def test_stays_finite_for_a_thousand_servers() -> None:
    """At c = 1000, where A**c / c! overflows a float, the result is still a probability."""
    value = queueing.erlang_c(1000, 990.0)
    assert 0.0 < value < 1.0
    assert queueing.erlang_c(1000, 999.999) < 1.0


def test_limits() -> None:
    """No load never waits; a load at or over the pool size always waits."""
    assert queueing.erlang_c(5, 0) == 0.0
    assert queueing.erlang_c(5, 5) == 1.0
    assert queueing.erlang_c(5, 50) == 1.0


def test_waiting_grows_with_load_and_shrinks_with_servers() -> None:
    """More load means more waiting; more servers for the same load means less."""
    by_load = [queueing.erlang_c(8, a) for a in np.linspace(0.0, 7.99, 50)]
    assert all(b > a for a, b in itertools.pairwise(by_load))
    by_servers = [queueing.erlang_c(c, 6.0) for c in range(7, 30)]
    assert all(b < a for a, b in itertools.pairwise(by_servers))


@pytest.mark.parametrize(
    ("pool_size", "load", "message"),
    [
        (0, 1.0, "pool_size must be a positive integer, got 0"),
        (-2, 1.0, "pool_size must be a positive integer, got -2"),
        (2.5, 1.0, "pool_size must be a positive integer, got 2.5"),
        (True, 0.5, "pool_size must be a positive integer, got True"),
        (2, -1, "offered_load must be a finite number >= 0, got -1"),
        (2, float("nan"), "offered_load must be a finite number >= 0, got nan"),
        (2, "one", "offered_load must be a finite number >= 0, got 'one'"),
    ],
)
def test_bad_input_is_refused_by_name(pool_size: object, load: object, message: str) -> None:
    """A bad argument raises ValueError naming the argument and the value given."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        queueing.erlang_c(pool_size, load)  # type: ignore[arg-type]


def test_mean_wait_of_mm1() -> None:
    """M/M/1 at half load with unit service time waits 1.0 on average (ρ·s / (1 - ρ))."""
    assert queueing.mean_wait(1, 0.5, 1.0) == pytest.approx(1.0)
    assert queueing.mean_wait(1, 0.0, 1.0) == 0.0


def test_mean_wait_of_an_overloaded_pool_is_infinite() -> None:
    """When arrivals outpace the pool, the wait grows without bound."""
    assert queueing.mean_wait(2, 20.0, 0.1) == math.inf
    assert queueing.mean_wait(2, 30.0, 0.1) == math.inf


def test_wait_percentile_of_mm1() -> None:
    """M/M/1 at half load: the median arrival does not wait; p95 is ln(0.5 / 0.05) / 0.5."""
    assert queueing.wait_percentile(1, 0.5, 1.0, 0.5) == 0.0
    assert queueing.wait_percentile(1, 0.5, 1.0, 0.95) == pytest.approx(2 * math.log(10))
    assert queueing.wait_percentile(1, 0.5, 1.0, 1.0) == math.inf
    assert queueing.wait_percentile(1, 2.0, 1.0, 0.5) == math.inf


def test_wait_percentile_inverts_the_tail() -> None:
    """At the q-quantile t, C·exp(-(cμ - λ)t) equals 1 - q."""
    c, lam, s = 10, 80.0, 0.1
    t = queueing.wait_percentile(c, lam, s, 0.99)
    assert queueing.erlang_c(c, lam * s) * math.exp(-(c / s - lam) * t) == pytest.approx(0.01)


def test_wait_percentile_refuses_a_percent_for_a_fraction() -> None:
    """q is a fraction: 95 instead of 0.95 is refused with a hint."""
    with pytest.raises(ValueError, match=r"q must be a fraction between 0 and 1 \(0.95 for p95\), got 95"):
        queueing.wait_percentile(2, 1.0, 0.1, 95)


def test_recommend_pool_size_is_the_smallest_that_meets_the_target() -> None:
    """The recommended size meets the mean-wait target and one fewer does not."""
    lam, s, target = 100.0, 0.05, 0.001
    c = queueing.recommend_pool_size(lam, s, target)
    assert queueing.mean_wait(c, lam, s) <= target
    assert queueing.mean_wait(c - 1, lam, s) > target
    assert c == 10


def test_recommend_pool_size_without_traffic_is_one() -> None:
    """No arrivals need one connection."""
    assert queueing.recommend_pool_size(0.0, 0.05, 0.0) == 1


def test_recommend_pool_size_says_when_no_size_fits() -> None:
    """A target no pool up to max_pool_size can meet is an error, not a silent cap."""
    with pytest.raises(ValueError, match="no pool size up to max_pool_size=5"):
        queueing.recommend_pool_size(100.0, 0.05, 0.001, max_pool_size=5)
    with pytest.raises(ValueError, match="target_wait must be a finite number >= 0, got -1"):
        queueing.recommend_pool_size(1.0, 0.05, -1)
    with pytest.raises(ValueError, match="service_time must be a positive number, got 0"):
        queueing.recommend_pool_size(1.0, 0, 0.1)


def test_mean_in_system_is_littles_law() -> None:
    """L = λ·W: 2 requests/s each spending 3 s in the system keep 6 in it."""
    assert queueing.mean_in_system(2.0, 3.0) == 6.0
    with pytest.raises(ValueError, match="arrival_rate must be a finite number >= 0, got -1"):
        queueing.mean_in_system(-1, 3.0)
