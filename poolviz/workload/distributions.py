"""Distributions of durations (hold and think times) for the workloads."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DISTRIBUTIONS = ("fixed", "exp", "uniform")
_ALIASES = {"fixed": "fixed", "exp": "exp", "exponential": "exp", "uniform": "uniform"}


@dataclass(frozen=True)
class Distribution:
    """A distribution of durations in seconds: ``fixed``, ``exp`` (exponential) or ``uniform``.

    Build one with :meth:`parse` from ``"fixed:0.01"``, ``"exp:0.01"`` (mean
    0.01 s), ``"uniform:0.005,0.02"`` or a plain number (fixed).
    """

    kind: str
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {self.kind!r}")
        wanted = 2 if self.kind == "uniform" else 1
        if len(self.params) != wanted:
            raise ValueError(
                f"the {self.kind} distribution takes {wanted} number{'s' if wanted > 1 else ''}, got {self.params!r}"
            )
        for value in self.params:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"distribution parameters must be finite numbers, got {value!r}")
            if value < 0:
                raise ValueError(f"durations must be >= 0 seconds, got {value!r}")
        if self.kind == "uniform" and self.params[0] > self.params[1]:
            low, high = self.params
            raise ValueError(f"uniform needs low <= high, got low={low!r}, high={high!r}")

    @classmethod
    def parse(cls, spec: Distribution | str | float, name: str = "duration") -> Distribution:
        """A distribution from a spec string, a number of seconds (fixed) or a Distribution.

        ``name`` is the parameter being parsed, used in error messages.
        """
        if isinstance(spec, Distribution):
            return spec
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            if not math.isfinite(spec) or spec < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {spec!r}")
            return cls("fixed", (float(spec),))
        if not isinstance(spec, str):
            raise ValueError(f"{name} must be seconds or a spec like 'exp:0.01' or 'uniform:0.005,0.02', got {spec!r}")
        text = spec.strip()
        kind, sep, rest = text.partition(":")
        if not sep:
            try:
                return cls.parse(float(text), name)
            except ValueError:
                pass
            rest, kind = "", text
        canonical = _ALIASES.get(kind.strip().lower())
        if canonical is None:
            raise ValueError(
                f"unknown {name} distribution {kind.strip()!r} in {spec!r}; use one of "
                f"{', '.join(DISTRIBUTIONS)} (e.g. 'exp:0.01')"
            )
        try:
            params = tuple(float(part) for part in rest.split(",")) if rest.strip() else ()
        except ValueError:
            raise ValueError(f"{name} distribution {spec!r} has a parameter that is not a number") from None
        try:
            return cls(canonical, params)
        except ValueError as exc:
            raise ValueError(f"{name} {spec!r}: {exc}") from None

    @classmethod
    def with_mean(cls, kind: str, mean: float) -> Distribution:
        """A distribution of the given shape and mean; ``uniform`` spans 0 to twice the mean."""
        canonical = _ALIASES.get(kind.lower())
        if canonical is None:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {kind!r}")
        if canonical == "uniform":
            return cls("uniform", (0.0, 2.0 * mean))
        return cls(canonical, (float(mean),))

    @property
    def mean(self) -> float:
        """The mean duration in seconds."""
        if self.kind == "uniform":
            return (self.params[0] + self.params[1]) / 2.0
        return self.params[0]

    def sample(self, rng: random.Random) -> float:
        """One draw, in seconds, from ``rng`` (so a seeded generator repeats its draws)."""
        if self.kind == "fixed":
            return self.params[0]
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.params[0]) if self.params[0] > 0 else 0.0
        return rng.uniform(self.params[0], self.params[1])

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(repr(p) for p in self.params)}"
