"""Replay a trace day by day: what would the planner have saved, and what could it have saved?

Every day the job would start at `at` (UTC) and may move by up to ±flex. Three runs are compared
on the actual intensity: the usual start, the planner's choice made on a forecast, and the
oracle's choice made on the actual trace (perfect foresight). Savings are of total emissions over
all days, for a job that uses the same energy every day: 1 - sum(chosen) / sum(usual).

Noisy forecasts multiply the actual intensity by (1 + e), with e an AR(1) process (stationary
standard deviation PCT %, correlation time `correlation_h`): forecast errors persist for hours,
as real ones do, instead of averaging out slot by slot.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import asdict, dataclass

from greenbench.carbon.intensity import IntensityPoint, IntensitySeries
from greenbench.carbon.planner import plan_interruptible, plan_window
from greenbench.errors import GreenbenchError


@dataclass(frozen=True)
class Forecast:
    error_pct: float = 0.0  # 0: perfect foresight
    correlation_h: float = 3.0
    seed: int = 0

    @property
    def name(self) -> str:
        return "perfect" if self.error_pct == 0 else f"noisy:{self.error_pct:g}"


def parse_forecast(text: str, seed: int = 0) -> Forecast:
    """`perfect` or `noisy:PCT`."""
    if text == "perfect":
        return Forecast(seed=seed)
    kind, _, pct = text.partition(":")
    try:
        value = float(pct)
    except ValueError:
        value = -1.0
    if kind != "noisy" or not (0 < value < 100):
        raise GreenbenchError(
            f"--forecast: '{text}' is not perfect or noisy:PCT with 0 < PCT < 100 (e.g. noisy:10)"
        )
    return Forecast(error_pct=value, seed=seed)


@dataclass(frozen=True)
class BacktestResult:
    days: int
    duration_min: float
    at: str
    flex_h: float
    forecast: str
    interruptible: bool
    usual_g_per_kwh: float  # mean over days
    planned_g_per_kwh: float
    oracle_g_per_kwh: float
    saving_pct: float
    oracle_saving_pct: float
    first_day: str
    last_day: str

    def as_dict(self) -> dict:
        return asdict(self)


def noisy_forecast(
    series: IntensitySeries, start: dt.datetime, end: dt.datetime, forecast: Forecast, rng
) -> IntensitySeries:
    """The slots of [start, end] with autocorrelated multiplicative error."""
    sigma = forecast.error_pct / 100
    points, error = [], None
    for p in series.slots_between(start, end):
        phi = math.exp(-p.duration.total_seconds() / (forecast.correlation_h * 3600))
        if error is None:
            error = rng.gauss(0, sigma)
        else:
            error = phi * error + math.sqrt(1 - phi * phi) * rng.gauss(0, sigma)
        value = max(p.g_per_kwh * (1 + error), 0.0)
        points.append(IntensityPoint(p.start, p.duration, value, p.signal, True, p.fetched_at))
    return IntensitySeries(points)


def _actual(series: IntensitySeries, pieces: list[tuple[dt.datetime, dt.datetime]]) -> float:
    total = sum((b - a).total_seconds() for a, b in pieces)
    return sum(series.mean(a, b) * (b - a).total_seconds() for a, b in pieces) / total


def _pieces(series, duration, earliest, latest, interruptible):
    if interruptible:
        return plan_interruptible(series, duration, earliest, latest).pieces
    start = plan_window(series, duration, earliest, latest).start
    return [(start, start + duration)]


def backtest(
    series: IntensitySeries,
    duration: dt.timedelta,
    at: dt.time,
    flex: dt.timedelta,
    forecast: Forecast = Forecast(),
    interruptible: bool = False,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
) -> BacktestResult:
    """Replay every day whose whole window the trace covers (within first_day..last_day)."""
    rng = random.Random(forecast.seed)
    day = first_day or series.start.date()
    last_day = last_day or series.end.date()
    usual_sum = planned_sum = oracle_sum = 0.0
    days: list[dt.date] = []
    while day <= last_day:
        usual = dt.datetime.combine(day, at, dt.UTC)
        earliest, latest = usual - flex, usual + flex + duration
        day += dt.timedelta(days=1)
        if not series.covers(earliest.timestamp(), latest.timestamp()):
            continue
        usual_sum += series.mean(usual, usual + duration)
        oracle = _pieces(series, duration, earliest, latest, interruptible)
        oracle_sum += _actual(series, oracle)
        if forecast.error_pct:
            predicted = noisy_forecast(series, earliest, latest, forecast, rng)
            planned = _pieces(predicted, duration, earliest, latest, interruptible)
            planned_sum += _actual(series, planned)
        else:
            planned_sum += _actual(series, oracle)
        days.append(usual.date())
    if not days:
        raise GreenbenchError(
            "the trace covers no whole day's window; give a longer trace or less --flex"
        )
    n = len(days)
    return BacktestResult(
        days=n,
        duration_min=duration.total_seconds() / 60,
        at=at.strftime("%H:%M"),
        flex_h=flex.total_seconds() / 3600,
        forecast=forecast.name,
        interruptible=interruptible,
        usual_g_per_kwh=usual_sum / n,
        planned_g_per_kwh=planned_sum / n,
        oracle_g_per_kwh=oracle_sum / n,
        saving_pct=100 * (1 - planned_sum / usual_sum),
        oracle_saving_pct=100 * (1 - oracle_sum / usual_sum),
        first_day=days[0].isoformat(),
        last_day=days[-1].isoformat(),
    )
