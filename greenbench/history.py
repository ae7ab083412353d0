"""Each cell's J/unit across runs, per machine: the trends, their environment changes, and the
newest run's verdict (drift.judge).

A series is one summary row's keys (stats.SUMMARY_KEYS: workload, phase, variant, device,
node, params) over runs; a point is one run: its start (run.json), and the J/unit mean and 95%
CI of its valid windows (stats.summarize_frame). Each run's environment comes from its
run.json; a marker is where one of ENVIRONMENT_FIELDS differs from the previous run on that
node (both known: a run without the field is not a change).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from greenbench.drift import BASELINE_RUNS, DEFAULT_PCT, MIN_RUNS, judge
from greenbench.errors import GreenbenchError
from greenbench.results import load_results
from greenbench.stats import (
    SUMMARY_KEYS,
    in_catalogue_order,
    key_column,
    summarize_groups,
    valid_mask,
)
from greenbench.store import RUN_FILE, RunStore, find_record_files

# what a marker watches: run.json's environment, and the zone the records were charged in
ENVIRONMENT_FIELDS = ("greenbench", "torch", "driver", "cuda", "hardware", "zone")
SERIES_KEYS = list(SUMMARY_KEYS)


@dataclass(frozen=True)
class History:
    """The trends under some paths, and the verdict on each series' newest run."""

    points: pd.DataFrame  # one row per series x run, in time order
    verdicts: pd.DataFrame  # one row per series
    changes: pd.DataFrame  # node, run_id, started_at, what (one row per environment change)
    carbon: pd.DataFrame  # node, run_id, started_at, emissions_g (per run and node)
    pct: float

    @property
    def runs(self) -> int:
        return int(self.points["run_id"].nunique()) if not self.points.empty else 0


def run_environments(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """run_id, started_at and the environment fields of every run under `paths` that has a
    run.json (an unreadable one gives a run without them)."""
    rows = []
    for records in find_record_files(paths):
        folder = records.parent
        meta: dict[str, Any] = {}
        if (folder / RUN_FILE).is_file():
            try:
                meta = RunStore(folder).read_meta()
            except GreenbenchError:
                meta = {}
        rows.append({"run_id": str(meta.get("run_id", folder.name)), **environment_fields(meta)})
    columns = ["run_id", "started_at", *ENVIRONMENT_FIELDS[:-1]]
    return pd.DataFrame(rows, columns=columns).drop_duplicates("run_id", keep="last")


def environment_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A run.json's start and the environment fields a marker watches (zone: in the records)."""
    found = meta.get("environment")
    env: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    listed = env.get("versions")
    versions: Mapping[str, Any] = listed if isinstance(listed, Mapping) else {}
    listed = env.get("gpus")
    gpus: list[Any] = listed if isinstance(listed, list) else []
    names = [str(g.get("name")) for g in gpus if isinstance(g, Mapping)]
    hardware = " + ".join(([str(env["cpu_model"])] if env.get("cpu_model") else []) + names)
    return {
        "started_at": meta.get("started_at"),
        "greenbench": versions.get("greenbench"),
        "torch": versions.get("torch"),
        "driver": env.get("gpu_driver"),
        "cuda": env.get("cuda"),
        "hardware": hardware or None,
    }


def run_summaries(ok: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """keys, n, unit, j_per_unit, j_per_unit_ci95 per group of the `ok` records' valid windows:
    the figures stats.summarize_frame gives, from the same all-groups-at-once core
    (stats.summarize_groups), since a year of nightly runs makes thousands of groups."""
    columns = [*keys, "n", "unit", "j_per_unit", "j_per_unit_ci95"]
    valid = ok[valid_mask(ok)].reset_index(drop=True)
    if valid.empty:
        return pd.DataFrame(columns=columns)
    for key in keys:
        valid[key] = key_column(valid[key])
    groups = pd.Series(valid.groupby(keys, sort=False, dropna=False).ngroup(), index=valid.index)
    count = int(groups.max()) + 1
    figures = summarize_groups(valid, groups, count)
    first = ~groups.duplicated()
    out = valid.loc[first, keys].set_axis(groups[first].to_numpy()).sort_index()
    out["n"] = figures["n"]
    out["unit"] = valid["unit"].groupby(groups).first().reindex(range(count))
    out["j_per_unit"] = figures["mean"]
    out["j_per_unit_ci95"] = figures["ci95"]
    return out[columns].reset_index(drop=True)


def trend_points(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per series x run with valid windows: SERIES_KEYS, run_id, started_at, unit, n,
    j_per_unit, j_per_unit_ci95, the environment fields; in time order."""
    columns = [*SERIES_KEYS, "run_id", "started_at", "unit", "n", "j_per_unit", "j_per_unit_ci95"]
    ok = frame[frame["status"] == "ok"] if not frame.empty else frame
    if ok.empty:
        return pd.DataFrame(columns=[*columns, *ENVIRONMENT_FIELDS])
    summary = run_summaries(ok, [*SERIES_KEYS, "run_id"])
    summary = summary[summary["n"] > 0]
    first = pd.DataFrame(
        {
            "run_id": ok["run_id"],
            "node": key_column(ok["node"]),
            "zone": key_column(ok["zone"]),
            "start": pd.to_datetime(
                ok["window_start"].fillna(ok["recorded_at"]), utc=True, format="ISO8601"
            ),
        }
    )
    per_run = first.groupby(["run_id", "node"]).agg(start=("start", "min"), zone=("zone", "first"))
    points = summary.merge(per_run.reset_index(), on=["run_id", "node"], how="left")
    points = points.merge(runs, on="run_id", how="left") if not runs.empty else points
    # run.json's start where there is one (a records file alone has none): the first window's
    stated = pd.to_datetime(
        points.get("started_at", pd.Series(None, index=points.index, dtype=object)),
        utc=True, format="ISO8601", errors="coerce",
    )  # fmt: skip
    points["started_at"] = stated.fillna(points["start"])
    for field in ENVIRONMENT_FIELDS:
        if field not in points:
            points[field] = None
    points["zone"] = points["zone"].replace("", None)
    points = points.sort_values([*SERIES_KEYS, "started_at", "run_id"], kind="stable")
    return points[[*columns, *ENVIRONMENT_FIELDS]].reset_index(drop=True)


def environment_changes(points: pd.DataFrame) -> pd.DataFrame:
    """node, run_id, started_at, what: where a run's environment differs from the previous run
    on the same node ("torch 2.5.1 -> 2.6.0"), both values known."""
    rows = []
    runs = points.drop_duplicates(["node", "run_id"]).sort_values(["node", "started_at"])
    for node, part in runs.groupby("node", sort=True):
        previous: Mapping[str, Any] | None = None
        for _, run in part.iterrows():
            if previous is not None:
                what = [
                    f"{field} {previous[field]} -> {run[field]}"
                    for field in ENVIRONMENT_FIELDS
                    if _known(previous[field]) and _known(run[field])
                    and previous[field] != run[field]
                ]  # fmt: skip
                if what:
                    rows.append(
                        {"node": node, "run_id": run["run_id"],
                         "started_at": run["started_at"], "what": "; ".join(what)}
                    )  # fmt: skip
            previous = run
    return pd.DataFrame(rows, columns=["node", "run_id", "started_at", "what"])


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def run_carbon(frame: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """Gross emissions of each run's measured windows, per node, with the run's start."""
    ok = frame[frame["status"] == "ok"] if not frame.empty else frame
    if ok.empty or points.empty:
        return pd.DataFrame(columns=["node", "run_id", "started_at", "emissions_g"])
    ok = pd.DataFrame(
        {"node": key_column(ok["node"]), "run_id": ok["run_id"], "emissions_g": ok["emissions_g"]}
    )  # the three columns it sums by, not a copy of every record
    carbon = ok.groupby(["node", "run_id"])["emissions_g"].sum(min_count=1).reset_index()
    starts = points.drop_duplicates(["node", "run_id"])[["node", "run_id", "started_at"]]
    return carbon.merge(starts, on=["node", "run_id"]).sort_values(["node", "started_at"])


def judge_points(points: pd.DataFrame, pct: float = DEFAULT_PCT) -> pd.DataFrame:
    """One row per series: its keys, unit, runs, the newest run (id, start, J/unit, CI) and
    drift.judge's verdict on it (status, change, baseline, floor, threshold)."""
    rows = []
    for keys, series in points.groupby(SERIES_KEYS, sort=False):
        verdict = judge(list(series["j_per_unit"]), list(series["j_per_unit_ci95"]), pct)
        newest = series.iloc[-1]
        rows.append(
            {
                **dict(zip(SERIES_KEYS, keys, strict=True)),
                "unit": newest["unit"],
                "runs": verdict.runs,
                "run_id": newest["run_id"],
                "started_at": newest["started_at"],
                "j_per_unit": newest["j_per_unit"],
                "j_per_unit_ci95": newest["j_per_unit_ci95"],
                "status": verdict.status,
                "change": verdict.change,
                "baseline": verdict.baseline,
                "floor": verdict.floor,
                "threshold": verdict.threshold,
            }
        )
    columns = [*SERIES_KEYS, "unit", "runs", "run_id", "started_at", "j_per_unit",
               "j_per_unit_ci95", "status", "change", "baseline", "floor", "threshold"]  # fmt: skip
    verdicts = pd.DataFrame(rows, columns=columns)
    return in_catalogue_order(verdicts, SERIES_KEYS) if not verdicts.empty else verdicts


def build_history(frame: pd.DataFrame, runs: pd.DataFrame, pct: float = DEFAULT_PCT) -> History:
    """The history of the records `frame`, with the runs' environments `runs`."""
    points = trend_points(frame, runs)
    changes = environment_changes(points)
    verdicts = judge_points(points, pct)
    verdicts["recent_changes"] = recent_changes(points, changes, verdicts)
    return History(points, verdicts, changes, run_carbon(frame, points), pct)


def recent_changes(
    points: pd.DataFrame, changes: pd.DataFrame, verdicts: pd.DataFrame
) -> list[str]:
    """Per verdict row: the environment changes on its series' node within its baseline window
    and newest run (what may explain a flag), as one line in the changes' order; "" when none.

    All series at once (a merge): a year of nightly runs has thousands of series."""
    if verdicts.empty or changes.empty or points.empty:
        return [""] * len(verdicts)
    # the newest run and the runs before it: points are in time order within a series
    window = points.groupby(SERIES_KEYS, sort=False).tail(BASELINE_RUNS)[[*SERIES_KEYS, "run_id"]]
    listed = changes.assign(order=range(len(changes)))[["node", "run_id", "order", "what"]]
    hits = window.merge(listed, on=["node", "run_id"]).sort_values("order", kind="stable")
    if hits.empty:
        return [""] * len(verdicts)
    hits["line"] = hits["what"] + " (run " + hits["run_id"].astype(str) + ")"
    lines = hits.groupby(SERIES_KEYS, sort=False)["line"].agg("; ".join).rename("recent")
    found = verdicts[SERIES_KEYS].merge(
        lines.reset_index(), on=SERIES_KEYS, how="left"
    )  # how="left" keeps the verdicts' order
    return [str(v) if isinstance(v, str) else "" for v in found["recent"]]


def load_history(
    paths: Iterable[str | os.PathLike[str]], workload: str | None = None, pct: float = DEFAULT_PCT
) -> History:
    """The history of every run under `paths` (one workload's cells with `workload`)."""
    paths = list(paths)
    frame = load_results(paths)
    if workload is not None:
        known = sorted(frame["workload"].dropna().unique()) if not frame.empty else []
        if workload not in known:
            raise GreenbenchError(
                f"--workload {workload}: no records of it under {', '.join(map(str, paths))}; "
                f"give one of: {', '.join(known) or '(none: run greenbench run first)'}"
            )
        frame = frame[frame["workload"] == workload].reset_index(drop=True)
    return build_history(frame, run_environments(paths), pct)


def enough_history(history: History) -> bool:
    """Whether any series has the MIN_RUNS a verdict needs."""
    return (
        bool((history.verdicts["runs"] >= MIN_RUNS).any()) if not history.verdicts.empty else False
    )
