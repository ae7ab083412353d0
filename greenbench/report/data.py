"""The tables the report's views are drawn from, derived from the records frame.

Every label that comes from user data is escaped here, once, before it reaches a figure or the
page: Plotly renders a subset of HTML in its labels, and the page embeds them in markup.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from greenbench.check import leave_out_invalid, with_group_verdicts
from greenbench.compare import quality_change
from greenbench.stats import (
    CELL_KEYS,
    SUMMARY_COLUMNS,
    in_catalogue_order,
    phase_order,
    ratio,
    summarize_frame,
    summary_of,
)
from greenbench.sweep import varying_params
from greenbench.variants import BASELINE

LABEL_COLUMNS = [
    "workload",
    "phase",
    "variant",
    "device",
    "suite",
    "run_id",
    "cell_id",
    "error",
    "unit",
    "zone",
    "carbon_source",
    "params",
    "quality_metric",
    # free text and labels that reach the validity verdicts' reasons
    "validity",
    "method_cpu",
    "method_gpu",
    "method_ram",
]


def escape(value: Any) -> str:
    return html.escape("" if value is None or value is pd.NA else str(value), quote=True)


def escaped(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose user-data label columns are HTML-escaped strings (missing stays missing)."""
    out = frame.copy(deep=False)  # only the label columns are new (a year of history: 5 GB)
    for column in LABEL_COLUMNS:
        if column in out:
            out[column] = _escaped_column(out[column])
    return out


def _escaped_column(values: pd.Series) -> pd.Series:
    """values.map(_escaped_value), escaping each distinct text once: a label column holds a
    few distinct values over many rows. Columns of other values (numbers, NaT...) are mapped
    value by value, as factorize would merge values that escape apart (1 and 1.0)."""
    if not _plain_text(values):
        return values.map(_escaped_value)
    codes = pd.factorize(values)[0]  # -1 marks a missing value
    first = pd.Series(codes).drop_duplicates().index.to_numpy()  # a row per distinct value
    position = np.zeros(len(first) + 1, dtype=np.intp)
    position[codes[first] + 1] = np.arange(len(first))  # code (-1 first) -> its row in `first`
    return values.iloc[first].map(_escaped_value).iloc[position[codes + 1]].set_axis(values.index)


def _plain_text(values: pd.Series) -> bool:
    """Text where present, and missing only as _missing reads it (None, pd.NA, float NaN)."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return False
    absent = set(map(type, values[values.isna()]))
    return all(t is type(None) or t is type(pd.NA) or issubclass(t, float) for t in absent)


def _escaped_value(value: Any) -> str | None:
    return None if _missing(value) else escape(value)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def cell_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per workload x phase x variant x device (ok records).

    `panel` groups rows that share a phase and a unit (training is per token for language
    models and per image for CNNs), so one chart never mixes units. `cell_valid` and
    `cell_reasons` carry greenbench check's verdict (a row is invalid when any of its cells is);
    `validity` is the reasons as one line of markup, "" for a valid row.
    """
    summary = with_group_verdicts(summarize_frame(frame), frame)
    if summary.empty:
        return summary
    summary["sweep"] = swept_values(summary)
    swept = summary["sweep"].map(sweep_text)
    summary["validity"] = ["<br>".join(r) for r in summary["cell_reasons"]]
    summary["label"] = summary["workload"] + " / " + summary["variant"] + " / " + summary["device"]
    summary["label"] += swept.map(lambda text: f" / {text}" if text else "")
    summary["case"] = summary["workload"] + swept.map(lambda text: f" {text}" if text else "")
    summary["panel"] = summary["phase"] + ": J per " + summary["unit"]
    summary["sweep_order"] = summary["sweep"].map(sweep_order)
    return in_catalogue_order(summary, ["workload", "phase", "variant", "device", "sweep_order"])


SWEEP_GROUP = ["workload", "phase", "device"]


def cell_params(text: Any) -> dict[str, Any]:
    """A row's workload parameters (the records' `params` JSON, escaped here), {} if none."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        params = json.loads(html.unescape(text))
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def swept_values(summary: pd.DataFrame) -> pd.Series:
    """Per row: {key: value} of the parameters that are swept, i.e. take several values among
    the rows of its workload x phase x device ({} where nothing is swept)."""
    empty: dict[Any, dict[str, Any]] = {i: {} for i in summary.index}
    if "params" not in summary:
        return pd.Series(empty, index=summary.index, dtype=object)
    params = summary["params"].map(cell_params)
    for _, rows in summary.groupby(SWEEP_GROUP, sort=False):
        found = params[rows.index]
        swept = sorted(varying_params((None, p) for p in found))
        empty.update({i: {k: params[i].get(k) for k in swept} for i in rows.index})
    return pd.Series(empty, index=summary.index, dtype=object)


def sweep_order(values: dict[str, Any]) -> tuple[tuple[int, float, str], ...]:
    """A sort key for swept values: numbers by size (1, 4, 16, not 1, 16, 4), then text."""
    return tuple((0, float(v), "") if _is_number(v) else (1, 0.0, str(v)) for v in values.values())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sweep_text(values: dict[str, Any]) -> str:
    """ "batch=4 prompt_tokens=128": a row's swept values, escaped."""
    return " ".join(f"{escape(k)}={escape(v)}" for k, v in values.items())


def panels(summary: pd.DataFrame) -> list[str]:
    """The summary's panels, prefill before decode before forward before train."""
    firsts = summary.drop_duplicates("panel")
    keyed = sorted(
        zip(firsts["phase"], firsts["panel"], strict=True), key=lambda p: (phase_order(p[0]), p[1])
    )
    return [panel for _, panel in keyed]


def unfinished_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Failed and skipped cells, one row each, with the reason."""
    bad = frame[frame["status"].isin(["failed", "skipped"])]
    if bad.empty:
        return pd.DataFrame(columns=["cell_id", "run_id", "status", "error"])
    return bad.drop_duplicates(["run_id", "cell_id"])[["cell_id", "run_id", "status", "error"]]


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows not beaten by another on both J/unit (lower) and throughput (higher)."""
    energy = _numbers(points["j_per_unit"])
    speed = _numbers(points["throughput"])
    dominated = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), PARETO_BLOCK):  # a block of rows against every row
        e, s = energy[start : start + PARETO_BLOCK, None], speed[start : start + PARETO_BLOCK, None]
        beaten = (energy <= e) & (speed >= s) & ((energy < e) | (speed > s))
        dominated[start : start + PARETO_BLOCK] = beaten.any(axis=1)
    return points[~dominated].sort_values("throughput")


PARETO_BLOCK = 512  # rows compared at once: 512 x rows booleans


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def valid_cells(frame: pd.DataFrame, include_invalid: bool = False) -> tuple[pd.DataFrame, int]:
    """What a ratio view is drawn from: the records without greenbench check's invalid cells
    (unless `include_invalid`), and how many cells were left out."""
    if include_invalid:
        return frame, 0
    return leave_out_invalid(frame)


TRADEOFF_KEYS = ["workload", "phase", "device"]  # what a variant is held against fp32 on


def tradeoffs(summary: pd.DataFrame, include_invalid: bool = False) -> pd.DataFrame:
    """Each non-fp32 inference variant: energy saved against fp32, beside its fidelity and,
    on labelled real inputs, its quality change against fp32 (compare.quality_change).

    A variant is held against the first fp32 row of its workload, phase and device. Rows whose
    variant or fp32 baseline is invalid are left out unless `include_invalid`; kept, they say
    so (`cell_valid`, `validity`)."""
    if summary.empty:
        return pd.DataFrame()
    scored = summary[summary["fidelity_top1"].notna()]
    fp32 = summary[summary["variant"] == BASELINE].dropna(subset=TRADEOFF_KEYS)
    bases = fp32.drop_duplicates(TRADEOFF_KEYS)  # the first, as the views always took
    # row positions of each scored row's baseline (a merge on the keys), -1 where it has none
    at = scored[TRADEOFF_KEYS].merge(
        bases[TRADEOFF_KEYS].assign(_base=range(len(bases))), how="left", on=TRADEOFF_KEYS
    )["_base"]
    base_rows = bases.to_dict("records")
    rows = []
    for row, position in zip(scored.to_dict("records"), at, strict=True):
        if pd.isna(position):
            continue
        base = base_rows[int(position)]
        valid, validity = _pair_verdict(row, base)
        if not (valid or include_invalid):
            continue
        r = ratio(summary_of(row), summary_of(base))
        rows.append(
            {
                **{k: row[k] for k in ("workload", "phase", "variant", "device", "label")},
                "saving": 1 - r.value,
                "saving_low": 1 - r.high,
                "saving_high": 1 - r.low,
                "fidelity_top1": row["fidelity_top1"],
                "fidelity_kl": row["fidelity_kl"],
                "quality_metric": row.get("quality_metric"),
                "quality_change": _quality_change(row, base),
                "quantized_share": row.get("quantized_share", float("nan")),
                "cell_valid": valid,
                "validity": validity,
            }
        )
    return pd.DataFrame(rows)


def _quality_change(row: dict[str, Any], base: dict[str, Any]) -> float:
    """compare.quality_change of two summary rows, NaN at once where the row has no metric
    (most rows: building their Series would cost more than the rest of the view)."""
    if not isinstance(row.get("quality_metric"), str):
        return math.nan
    return quality_change(pd.Series(row), pd.Series(base))


def _pair_verdict(
    row: Mapping[str, Any], base: Mapping[str, Any], base_name: str = "fp32"
) -> tuple[bool, str]:
    """Whether a ratio of `row` to `base` rests on valid cells only, and if not, why (markup)."""
    reasons = [*row.get("cell_reasons", ())]
    reasons += [f"{base_name}: {r}" for r in base.get("cell_reasons", ())]
    valid = bool(row.get("cell_valid", True)) and bool(base.get("cell_valid", True))
    return valid, "<br>".join(reasons)


def comparison(
    now: pd.DataFrame, before: pd.DataFrame, include_invalid: bool = False
) -> pd.DataFrame:
    """J/unit ratios of `now` to `before` for every cell both have, with 95% CIs.

    Invalid cells (greenbench check), on either side, are left out unless `include_invalid`;
    kept, they are never called a regression or an improvement, and `validity` says why."""
    now, _ = valid_cells(now, include_invalid)
    before, _ = valid_cells(before, include_invalid)
    # a baseline run may come from another machine: cells are matched across machines
    a = with_group_verdicts(summarize_frame(now, CELL_KEYS), now, CELL_KEYS)
    b = with_group_verdicts(summarize_frame(before, CELL_KEYS), before, CELL_KEYS)
    if a.empty or b.empty:
        return pd.DataFrame()
    joined = a.merge(b, on=CELL_KEYS, suffixes=("", "_before"))
    earlier_columns = (*SUMMARY_COLUMNS, "cell_valid", "cell_reasons")
    rows = []
    for row in joined.to_dict("records"):
        earlier = {k: row[f"{k}_before"] for k in earlier_columns}
        valid, validity = _pair_verdict(row, earlier, "baseline")
        r = ratio(summary_of(row), summary_of(earlier))
        rows.append(
            {
                **{k: row[k] for k in CELL_KEYS},
                "label": f"{row['workload']} / {row['phase']} / {row['variant']} / {row['device']}",
                "ratio": r.value,
                "low": r.low,
                "high": r.high,
                "regression": valid and math.isfinite(r.low) and r.low > 1,
                "improvement": valid and math.isfinite(r.high) and r.high < 1,
                "cell_valid": valid,
                "validity": validity,
            }
        )
    return pd.DataFrame(rows)
