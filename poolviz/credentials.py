"""Masking passwords out of URLs and messages, so events, logs and plots never show them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_KEYS = ("password", "passwd")

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s,;)]+)", re.I)


def mask_url(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``; other text is kept."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], url)


def secrets_of(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The password values among a driver's connect parameters."""
    return tuple(str(params[k]) for k in SECRET_KEYS if params.get(k))


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, ``password=...`` pairs and every known secret value in ``text``."""
    text = mask_url(text)
    text = _KEYWORD_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
