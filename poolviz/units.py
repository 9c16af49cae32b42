"""Durations and rates in the units a person reads: "850 µs", "42.0 ms", "1.55 s", "2 min 05 s"."""

from __future__ import annotations

import math


def duration(seconds: float | None) -> str:
    """``seconds`` with the unit that keeps three significant figures readable; "-" for None or NaN.

    Below a millisecond in µs, below a second in ms, below two minutes in s,
    then minutes and seconds; never scientific notation.
    """
    if seconds is None or not math.isfinite(seconds):
        return "-" if seconds is None or math.isnan(seconds) else ("∞" if seconds > 0 else "-∞")
    size = abs(seconds)
    if size == 0:
        return "0 ms"
    if size < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if size < 1.0:
        value = seconds * 1e3
        return f"{value:.3g} ms" if size < 0.01 else f"{value:.0f} ms" if size >= 0.1 else f"{value:.1f} ms"
    if size < 120.0:
        return f"{seconds:.3g} s" if size < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(size), 60)
    return f"{'-' if seconds < 0 else ''}{minutes} min {rest:02d} s"
