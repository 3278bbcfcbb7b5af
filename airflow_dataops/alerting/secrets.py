"""Keep tokens, webhook URLs and passwords out of logs, audit rows and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATTERNS = (
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"(https?://[^\s'\"<>]*?/services/)[^\s'\"<>]+"),  # Slack incoming-webhook paths
    re.compile(r"(://)[^/\s:@'\"]+:[^@\s'\"]+@"),  # user:password@ in URLs
    # key=value DSNs (libpq, ODBC): password=..., pwd='...'
    re.compile(r"(?i)\b(password|passwd|pwd)(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s;,)]+)"),
)


def mask(*values: str | None) -> None:
    """Register values with Airflow's secrets masker (a no-op outside Airflow)."""
    try:
        from airflow.sdk.log import mask_secret
    except Exception:  # pragma: no cover
        return
    for value in values:
        if value:
            mask_secret(value)


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret and anything shaped like a token or webhook URL replaced."""
    result = str(text)
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        result = result.replace(secret, "***")
    result = _PATTERNS[0].sub("***", result)
    result = _PATTERNS[1].sub(r"\1***", result)
    result = _PATTERNS[2].sub(r"\1***@", result)
    result = _PATTERNS[3].sub(r"\1\2***", result)
    return result


def looks_like_secret(value: str) -> str | None:
    """What kind of secret ``value`` looks like, or None: the config validator's one pattern table."""
    from airflow_dataops.config.alerts import find_secret

    return find_secret(str(value))
