"""Choose when to run: the cleanest window for a job, or the cleanest slots for a suite of cells.

Contiguous: the mean intensity of a window of fixed length is piecewise linear in its start, with
breaks where the start or the end crosses a slot boundary; so the minimum lies at one of those
breaks (or at the first or last feasible start), and checking them all is exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from greenbench.carbon.intensity import IntensitySeries
from greenbench.errors import GreenbenchError

TIE_TOLERANCE = 1e-9  # relative: means this close count as equal


@dataclass(frozen=True)
class Plan:
    """A contiguous window: every start with the lowest mean, and what it saves."""

    starts: list[dt.datetime]  # all tied optima, earliest first
    duration: dt.timedelta
    chosen_g_per_kwh: float
    now_g_per_kwh: float | None  # starting at the earliest allowed time, if known

    @property
    def start(self) -> dt.datetime:
        return self.starts[0]

    @property
    def saving(self) -> float | None:
        """Fraction of emissions saved against starting at the earliest time."""
        if not self.now_g_per_kwh:
            return None
        return 1 - self.chosen_g_per_kwh / self.now_g_per_kwh


@dataclass(frozen=True)
class InterruptiblePlan:
    """Pieces of time (start, end), in time order, that together last the job's duration."""

    pieces: list[tuple[dt.datetime, dt.datetime]]
    chosen_g_per_kwh: float
    now_g_per_kwh: float | None

    @property
    def saving(self) -> float | None:
        if not self.now_g_per_kwh:
            return None
        return 1 - self.chosen_g_per_kwh / self.now_g_per_kwh


def _check_bounds(duration: dt.timedelta, earliest: dt.datetime, latest: dt.datetime) -> None:
    if duration <= dt.timedelta(0):
        raise GreenbenchError("the job's duration must be positive")
    if latest - earliest < duration:
        raise GreenbenchError(
            f"the window from {earliest.isoformat()} to {latest.isoformat()} is shorter than the "
            f"job ({duration}); allow more time"
        )


def _mean_or_none(series: IntensitySeries, start: dt.datetime, end: dt.datetime) -> float | None:
    try:
        return series.mean(start, end)
    except ValueError:
        return None


def candidate_starts(
    series: IntensitySeries, duration: dt.timedelta, earliest: dt.datetime, latest: dt.datetime
) -> list[dt.datetime]:
    """Every start where the window's mean can change slope, within the feasible range."""
    last = latest - duration
    edges = series.boundaries(earliest - duration, latest)
    edges += [p.end for p in series.slots_between(earliest, latest)]
    found = {earliest, last}
    for edge in edges:
        for start in (edge, edge - duration):
            if earliest <= start <= last:
                found.add(start)
    return sorted(found)


def plan_window(
    series: IntensitySeries,
    duration: dt.timedelta,
    earliest: dt.datetime,
    latest: dt.datetime,
) -> Plan:
    """The start(s) in [earliest, latest - duration] with the lowest time-weighted mean."""
    _check_bounds(duration, earliest, latest)
    scored = []
    for start in candidate_starts(series, duration, earliest, latest):
        mean = _mean_or_none(series, start, start + duration)
        if mean is not None:
            scored.append((mean, start))
    if not scored:
        raise GreenbenchError(
            f"no intensity known for any {duration} window between {earliest.isoformat()} and "
            f"{latest.isoformat()}; fetch a forecast that covers it"
        )
    best = min(mean for mean, _ in scored)
    tied = sorted(s for m, s in scored if m - best <= TIE_TOLERANCE * max(abs(best), 1.0))
    now = _mean_or_none(series, earliest, earliest + duration)
    return Plan(tied, duration, best, now)


def plan_interruptible(
    series: IntensitySeries,
    duration: dt.timedelta,
    earliest: dt.datetime,
    latest: dt.datetime,
) -> InterruptiblePlan:
    """The cleanest pieces of [earliest, latest] that add up to `duration`.

    Slots are taken cleanest first (earlier first among equals); the last one is cut to fit.
    """
    _check_bounds(duration, earliest, latest)
    pieces = []
    for p in series.slots_between(earliest, latest):
        start, end = max(p.start, earliest), min(p.end, latest)
        if end > start:
            pieces.append((p.g_per_kwh, start, end))
    pieces.sort(key=lambda piece: (piece[0], piece[1]))
    chosen, remaining, weighted = [], duration, 0.0
    for value, start, end in pieces:
        if remaining <= dt.timedelta(0):
            break
        end = min(end, start + remaining)
        chosen.append((start, end))
        remaining -= end - start
        weighted += value * (end - start).total_seconds()
    if remaining > dt.timedelta(0):
        raise GreenbenchError(
            f"intensity is known for less than {duration} between {earliest.isoformat()} and "
            f"{latest.isoformat()}; fetch a forecast that covers it"
        )
    mean = weighted / duration.total_seconds()
    now = _mean_or_none(series, earliest, earliest + duration)
    return InterruptiblePlan(sorted(chosen), mean, now)
