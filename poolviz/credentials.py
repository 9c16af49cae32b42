"""Masking passwords out of URLs and messages, so events, logs and plots never show them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_KEYS = ("password", "passwd")

# The password runs to the last "@" of the URL: a raw "@" inside it must not end the mask early.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>\S*)(?P<at>@)")
# peewee's URLs also take driver arguments in the query string: ?password=...
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd)=)(?P<pw>[^&;#\s'\"]*)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s,;)]+)", re.I)


def mask_url(url: str) -> str:
    """``scheme://user:secret@host/db?password=x`` → ``scheme://user:***@host/db?password=***``."""
    url = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], url)
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, url)


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
