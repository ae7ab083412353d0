"""GET JSON with a timeout, retrying 429 and 5xx with backoff; errors never show credentials."""

from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SourceError(Exception):
    """One source could not give a usable answer; the message says why, in one line."""


def _retry_after(error: urllib.error.HTTPError, default: float) -> float:
    value = error.headers.get("Retry-After") if error.headers else None
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else default


def safe_url(url: str) -> str:
    """The URL without its query string, which may carry keys."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def get_json(
    url: str,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    max_wait_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """The decoded JSON body of a GET; SourceError after the retries are spent."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    where = safe_url(url)
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as e:
            if e.code in RETRY_STATUSES and attempt < retries:
                sleep(min(_retry_after(e, backoff_s * 2**attempt), max_wait_s))
                continue
            hint = " (check the token)" if e.code in (401, 403) else ""
            raise SourceError(f"{where} answered HTTP {e.code}{hint}") from None
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if attempt < retries:
                sleep(min(backoff_s * 2**attempt, max_wait_s))
                continue
            raise SourceError(f"{where} could not be reached ({reason})") from None
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SourceError(f"{where} answered with malformed JSON") from None
    raise SourceError(f"{where}: no answer")  # not reached: the loop returns or raises
