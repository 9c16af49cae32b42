"""The command line's value types: each turns one option's text into a value or says what is allowed."""

from __future__ import annotations

import argparse
import math


class UsageError(Exception):
    """Bad input from the command line: reported as one line on stderr, exit code 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def number(text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        wanted = "a number > 0" if positive else "a number >= 0"
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def non_negative(text: str) -> float:
    return number(text)


def positive(text: str) -> float:
    return number(text, positive=True)


def seconds_or_none(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 or 'none', got {text!r}") from None


def sizes(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        parsed = [positive_int(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of positive integers like 1,2,4,8, got {text!r}"
        ) from None
    return parsed


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or str(value) != text.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value
