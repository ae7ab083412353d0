"""Durations and clock times as users type them: `30m`, `1h30m`, `8h`, `01:00`."""

from __future__ import annotations

import datetime as dt
import math
import re

from greenbench.errors import GreenbenchError

_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DURATION = dt.timedelta(days=365)  # no job, plan or backtest flex is longer


def parse_duration(text: str, flag: str) -> dt.timedelta:
    """`90s`, `30m`, `1h30m`, `2d`: a positive timedelta up to MAX_DURATION, or GreenbenchError
    naming the flag."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(a + b for a, b in parts) != compact:
        raise GreenbenchError(f"{flag}: '{text}' is not a duration; write e.g. 30m, 1h30m or 8h")
    seconds = sum(float(n) * _SECONDS[unit] for n, unit in parts)
    if seconds <= 0:
        raise GreenbenchError(f"{flag}: the duration must be positive")
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise GreenbenchError(
            f"{flag}: '{text}' is longer than {MAX_DURATION.days} days; give a shorter duration"
        )
    return dt.timedelta(seconds=seconds)


def parse_clock(text: str, flag: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        raise GreenbenchError(f"{flag}: '{text}' is not a time of day; write e.g. 01:00") from None
