"""Keeping secrets out of everything erb writes or prints."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|token|access_token|secret|password)=)[^&#\s]+"
)
#: Environment variables whose values are always treated as secrets.
SECRET_ENV_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def redact_url(url: str) -> str:
    """Drop credentials from a URL (user:password@ and secret-looking query values)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    cleaned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, cleaned)


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Values of secret-looking environment variables, longest first (8+ characters)."""
    values = {v for k, v in os.environ.items() if any(h in k.upper() for h in SECRET_ENV_HINTS)}
    values.update(extra)
    return sorted((v for v in values if v and len(v) >= 8), key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace known secret values and credentials inside URLs."""
    for value in secret_values() if secrets is None else secrets:
        if value:
            text = text.replace(value, REDACTED)
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
