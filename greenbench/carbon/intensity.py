"""Grid carbon intensity as a series of time slots, and time-weighted means over any interval.

Every source normalizes to IntensityPoint: a slot [start, start + duration) at a constant
intensity in gCO2/kWh. Times are timezone-aware UTC.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# average: the mix's mean intensity; marginal: that of the plant a change in demand moves
Signal = Literal["average", "marginal"]

# Bounds on what a source may say. No grid is above ~1,200 gCO2/kWh (lignite); a value past the
# bound is in other units, or garbage. Times and slot lengths outside them are not intensity data
# and would overflow datetime arithmetic.
MAX_G_PER_KWH = 10_000.0
MAX_SLOT = dt.timedelta(days=366)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class IntensityPoint:
    start: dt.datetime
    duration: dt.timedelta
    g_per_kwh: float
    signal: Signal = "average"
    is_forecast: bool = False
    fetched_at: dt.datetime | None = None

    @property
    def end(self) -> dt.datetime:
        return self.start + self.duration


def utc(moment: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def shown(raw: object, limit: int = 40) -> str:
    """A value as one short line, for an error message."""
    text = " ".join(str(raw).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_intensity(value: float) -> float:
    """`value` if it is a plausible gCO2/kWh; ValueError saying why not."""
    if not (math.isfinite(value) and 0 <= value <= MAX_G_PER_KWH):
        raise ValueError(
            f"intensity {shown(value)} is not between 0 and {MAX_G_PER_KWH:g} gCO2/kWh "
            "(check the units)"
        )
    return value


def checked_slot(seconds: float) -> dt.timedelta:
    """A slot length from seconds: positive and at most MAX_SLOT; ValueError otherwise."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SLOT.total_seconds()):
        raise ValueError(
            f"slot length {shown(seconds)} s is not between 0 and {MAX_SLOT.days} days"
        )
    return dt.timedelta(seconds=seconds)


def parse_time(raw: object) -> dt.datetime:
    """An ISO 8601 time as aware UTC (a naive one is UTC) within EARLIEST-LATEST; ValueError."""
    try:
        moment = utc(dt.datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ValueError(f"'{shown(raw)}' is not an ISO 8601 time") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"'{shown(raw)}' is not between {EARLIEST.year} and {LATEST.year}")
    return moment


class IntensitySeries:
    """Sorted, non-overlapping slots with fast time-weighted means (prefix sums)."""

    def __init__(self, points: Iterable[IntensityPoint]) -> None:
        self.points: list[IntensityPoint] = sorted(points, key=lambda p: p.start)
        if not self.points:
            raise ValueError("an intensity series needs at least one point")
        for before, after in zip(self.points, self.points[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"intensity slots overlap at {after.start.isoformat()}")
        self._starts = [p.start.timestamp() for p in self.points]
        self._ends = [p.end.timestamp() for p in self.points]
        # prefix[i]: integral of intensity x seconds over slots 0..i-1
        self._prefix = [0.0]
        for p in self.points:
            self._prefix.append(self._prefix[-1] + p.g_per_kwh * p.duration.total_seconds())

    @property
    def start(self) -> dt.datetime:
        return self.points[0].start

    @property
    def end(self) -> dt.datetime:
        return self.points[-1].end

    def boundaries(self, earliest: dt.datetime, latest: dt.datetime) -> list[dt.datetime]:
        """Slot starts within [earliest, latest], plus `earliest` itself."""
        lo = bisect.bisect_left(self._starts, earliest.timestamp())
        hi = bisect.bisect_right(self._starts, latest.timestamp())
        found = [p.start for p in self.points[lo:hi]]
        return sorted({earliest, *found})

    def mean(self, start: dt.datetime, end: dt.datetime) -> float:
        """Time-weighted mean intensity over [start, end), slots cut at the edges.

        Raises ValueError when the interval is not fully covered by the series.
        """
        a, b = start.timestamp(), end.timestamp()
        if b <= a:
            raise ValueError("the interval must have a positive length")
        if not self.covers(a, b):
            raise ValueError(
                f"intensity is not known for all of {start.isoformat()} to {end.isoformat()}"
            )
        return (self._area(b) - self._area(a)) / (b - a)

    def _area(self, t: float) -> float:
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        inside = min(t, self._ends[i]) - self._starts[i]
        return self._prefix[i] + self.points[i].g_per_kwh * inside

    def covers(self, a: float, b: float) -> bool:
        """Whether slots cover every instant of [a, b) (Unix seconds), with no gap."""
        i = bisect.bisect_right(self._starts, a) - 1
        if i < 0:
            return False
        t = a
        while t < b:
            if i >= len(self.points) or self._starts[i] > t or self._ends[i] <= t:
                return False
            t = self._ends[i]
            i += 1
        return True

    def slots_between(self, start: dt.datetime, end: dt.datetime) -> Sequence[IntensityPoint]:
        lo = max(bisect.bisect_right(self._starts, start.timestamp()) - 1, 0)
        hi = bisect.bisect_left(self._starts, end.timestamp())
        return [p for p in self.points[lo:hi] if p.end > start]
