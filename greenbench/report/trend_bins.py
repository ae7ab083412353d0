"""The Trends view's points within a size budget.

A year of nightly runs from ten machines is half a million series x run points: more than one
page can carry (about 75 bytes a point) or a browser can draw in seconds. Up to POINT_BUDGET
points every run is its own point, with its 95% CI. Past it, the runs before each series'
newest are binned by the shortest calendar period (UTC day, week, month, quarter) that fits the
budget: a binned point is the median J/unit of the period's runs, at their mean start, and its
bar spans their lowest to highest (a period of one run is that run, with its CI). The newest
run of every series stays its own point with its CI, since it is the one greenbench history
judges.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from greenbench.history import SERIES_KEYS

POINT_BUDGET = 30_000
PERIODS = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}
COLUMNS = [*SERIES_KEYS, "unit", "x", "y", "up", "down", "runs", "first", "last", "run_id", "n"]


@dataclass(frozen=True)
class TrendPoints:
    """What the Trends view draws: one row per point (COLUMNS), in series then time order."""

    points: pd.DataFrame
    period: str | None  # None: one point per run; else "day", "week", ...

    @property
    def binned(self) -> bool:
        return self.period is not None


def within_budget(points: pd.DataFrame, budget: int = POINT_BUDGET) -> TrendPoints:
    """history.History.points as the view's points: per run, or binned as the module says."""
    series = pd.Series(points.groupby(SERIES_KEYS, sort=False).ngroup(), index=points.index)
    newest = ~series.duplicated(keep="last")  # points are in time order within a series
    if len(points) <= budget:
        return TrendPoints(_per_run(points, series), None)
    starts = points["started_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    older = ~newest
    chosen, bins = "quarter", starts.dt.to_period("Q")
    for name, code in PERIODS.items():
        bins = starts.dt.to_period(code)
        count = int(newest.sum()) + len(pd.DataFrame({"s": series[older], "b": bins[older]})
                                        .drop_duplicates())  # fmt: skip
        if count <= budget:
            chosen = name
            break
    binned = _binned(points[older], series[older], bins[older])
    latest = _per_run(points[newest], series[newest])
    both = pd.concat([binned, latest], ignore_index=True)
    both = both.sort_values(["_series", "x"], kind="stable").reset_index(drop=True)
    return TrendPoints(both[COLUMNS], chosen)


def _per_run(points: pd.DataFrame, series: pd.Series) -> pd.DataFrame:
    ci = points["j_per_unit_ci95"].astype(float).fillna(0.0)
    out = points[[*SERIES_KEYS, "unit", "run_id", "n"]].assign(
        x=points["started_at"],
        y=points["j_per_unit"].astype(float),
        up=ci,
        down=ci,
        runs=1,
        first=points["started_at"],
        last=points["started_at"],
        _series=series,
    )
    return out[[*COLUMNS, "_series"]].reset_index(drop=True)


def _binned(points: pd.DataFrame, series: pd.Series, bins: pd.Series) -> pd.DataFrame:
    if points.empty:
        return pd.DataFrame(columns=[*COLUMNS, "_series"])
    grouped = points.assign(_series=series, _bin=bins).groupby(["_series", "_bin"], sort=True)
    out = grouped.agg(
        **{key: (key, "first") for key in [*SERIES_KEYS, "unit"]},
        x=("started_at", "mean"),
        y=("j_per_unit", "median"),
        low=("j_per_unit", "min"),
        high=("j_per_unit", "max"),
        runs=("run_id", "size"),
        first=("started_at", "min"),
        last=("started_at", "max"),
        n=("n", "sum"),
        run_id=("run_id", "first"),
        ci=("j_per_unit_ci95", "first"),
    ).reset_index()
    alone = out["runs"] == 1  # a period of one run is that run: its id and its CI
    ci = out["ci"].astype(float).fillna(0.0)
    out["up"] = (out["high"] - out["y"]).where(~alone, ci)
    out["down"] = (out["y"] - out["low"]).where(~alone, ci)
    out["run_id"] = out["run_id"].where(alone, None)
    return out[[*COLUMNS, "_series"]]
