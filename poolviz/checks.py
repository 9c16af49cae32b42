"""Argument checks, one per kind of value, used everywhere a value comes in.

Each check returns the value in its one canonical form or raises a
``ValueError`` that names the argument, says what is allowed and shows what
was given: ``max_connections must be a positive integer, got -3``.

Accepted spellings, the same in the pools, the workloads, the widgets and the
command line:

* **counts** (``max_connections``, ``workers``, ``requests``,
  ``event_capacity``…): an ``int`` (numpy integers too) or a string of
  decimal digits such as ``"8"`` (URL query strings and config files give
  strings). Floats are refused, ``8.0`` included: a fractional count is a
  mistake, not a spelling. ``True``/``False`` are refused.
* **seconds** (``timeout``, ``stale_timeout``, ``leak_threshold``,
  ``duration``…): an ``int`` or ``float`` (numpy numbers too) or a numeric
  string such as ``"0.5"``; finite, never ``True``/``False``.
* **integers** (``seed``): an ``int``, any sign.
* **choices**: exactly one of the listed strings.
* ``None`` only where the argument says what it means (``max_connections``:
  no limit; ``timeout``: fail at once; ``stale_timeout``: never stale).

Only the standard library is used: this module is part of the core.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any, TypeVar

T = TypeVar("T")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Real):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def count(name: str, value: Any, *, none_means: str | None = None) -> Any:
    """``value`` as a positive ``int``; ``None`` passes only when ``none_means`` says what it means."""
    if value is None and none_means is not None:
        return None
    number = _as_int(value)
    if number is None or number < 1:
        allowed = "a positive integer" + (f" (or None for {none_means})" if none_means else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def seconds(name: str, value: Any, *, positive: bool = False, none_allowed: bool = False) -> Any:
    """``value`` as a finite ``float`` of seconds, ``>= 0`` (or ``> 0`` when ``positive``)."""
    if value is None and none_allowed:
        return None
    number = _as_float(value)
    if number is None or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        prefix = "None or " if none_allowed else ""
        raise ValueError(f"{name} must be {prefix}a number of seconds {bound}, got {value!r}")
    return number


def number(name: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite ``float >= 0`` (``> 0`` when ``positive``): a rate, a load, a fraction."""
    result = _as_float(value)
    if result is None or result < 0 or (positive and result == 0):
        allowed = "a positive number" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return result


def integer(name: str, value: Any) -> int:
    """``value`` as an ``int`` of any sign (a seed, an offset)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def choice(name: str, value: Any, allowed: Iterable[T]) -> T:
    """``value`` if it is one of ``allowed``."""
    options = tuple(allowed)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")
    return value  # type: ignore[no-any-return]


def pool_args(max_connections: Any, stale_timeout: Any, timeout: Any) -> tuple[Any, Any, Any]:
    """peewee's three pool settings, checked, in canonical form.

    peewee reads ``max_connections=0`` as "no limit", a trap for a slider that
    reaches zero, so only ``None`` means unlimited here.
    """
    return (
        count("max_connections", max_connections, none_means="no limit"),
        seconds("stale_timeout", stale_timeout, none_allowed=True),
        seconds("timeout", timeout, none_allowed=True),
    )


def leak_threshold(value: Any) -> float | None:
    """``leak_threshold``: ``None`` (off) or a positive number of seconds."""
    return seconds("leak_threshold", value, positive=True, none_allowed=True)  # type: ignore[no-any-return]
