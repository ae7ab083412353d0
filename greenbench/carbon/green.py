"""Plan a start from live intensity: `greenbench forecast` and `greenbench run --when-green`."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.carbon.planner import Plan, plan_window
from greenbench.carbon.sources.chain import (
    ForecastResult,
    Source,
    Store,
    build_source,
    credentials,
    default_sources,
    fetch_forecast,
)


@dataclass(frozen=True)
class GreenPlan:
    plan: Plan
    forecast: ForecastResult
    zone: str

    def as_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "zone": self.zone,
            "source": self.forecast.source,
            "fetched_at": self.forecast.fetched_at.isoformat(),
            "from_cache": self.forecast.from_cache,
            "duration_min": p.duration.total_seconds() / 60,
            "starts": [s.isoformat() for s in p.starts],
            "chosen_g_per_kwh": p.chosen_g_per_kwh,
            "now_g_per_kwh": p.now_g_per_kwh,
            "saving_pct": None if p.saving is None else 100 * p.saving,
            "failures": self.forecast.failures,
        }

    def describe(self) -> str:
        p = self.plan
        local = p.start.astimezone()
        text = (
            f"cleanest start {p.start:%Y-%m-%d %H:%M} UTC ({local:%H:%M} local): "
            f"{p.chosen_g_per_kwh:.0f} gCO2/kWh over {_short(p.duration)}"
        )
        saving = p.saving
        if p.now_g_per_kwh is not None and saving is not None:
            text += f", against {p.now_g_per_kwh:.0f} if started now ({100 * saving:.1f} % less)"
        cached = ", cached" if self.forecast.from_cache else ""
        text += f"; source {self.forecast.source}{cached}"
        if len(p.starts) > 1:
            text += f"; {len(p.starts) - 1} other start(s) as clean"
        return text


def _short(duration: dt.timedelta) -> str:
    minutes = round(duration.total_seconds() / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def build_sources(zone: str, names: Sequence[str] | None) -> list[Source]:
    """The named sources, or the zone's default chain, with their credentials;
    GreenbenchError naming the fix for an unknown name or a missing credential."""
    settings = credentials()
    chosen = list(names) if names else default_sources(zone, settings)
    return [build_source(name, zone, settings) for name in chosen]


def carbon_store(root: str | Path) -> Store:
    """The cache and archive of fetched intensity under a results folder."""
    return Store(Path(root) / "carbon")


def plan_green(
    zone: str,
    duration: dt.timedelta,
    within: dt.timedelta,
    source_names: Sequence[str] | None,
    store_root: str | Path,
    now: dt.datetime | None = None,
) -> GreenPlan:
    """The cleanest start in [now, now + within]; NoUsableSource when no source answers."""
    now = now or dt.datetime.now(dt.UTC)
    latest = now + within
    result = fetch_forecast(
        build_sources(zone, source_names), now, latest, carbon_store(store_root)
    )
    earliest = max(now, result.series.start)
    plan = plan_window(result.series, duration, earliest, min(latest, result.series.end))
    return GreenPlan(plan, result, zone)


def estimate_duration(out: str | Path, suite_name: str) -> dt.timedelta | None:
    """The median wall time of earlier complete runs of this suite under `out`."""
    times = []
    for meta_path in Path(out).glob("*/run.json"):
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("status") != "complete" or meta["suite"]["name"] != suite_name:
                continue
            began = dt.datetime.fromisoformat(meta["started_at"])
            ended = dt.datetime.fromisoformat(meta["ended_at"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not a run's meta
            continue
        if ended > began:
            times.append((ended - began).total_seconds())
    return dt.timedelta(seconds=statistics.median(times)) if times else None


def wait_until(
    moment: dt.datetime,
    tick: Callable[[dt.timedelta], None],
    sleep: Callable[[float], None],
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> None:
    """Sleep until `moment`, calling tick(remaining) about once a second."""
    while True:
        remaining = moment - clock()
        if remaining <= dt.timedelta(0):
            return
        tick(remaining)
        sleep(min(1.0, remaining.total_seconds()))
