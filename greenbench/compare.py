"""Compare groups of results along one axis (variant, device, workload or run), with ratios."""

from __future__ import annotations

import math

import pandas as pd

from greenbench.check import leave_out_invalid, with_group_verdicts
from greenbench.errors import GreenbenchError
from greenbench.quality import change
from greenbench.records import COMPARE_AXES as AXES
from greenbench.stats import (
    CELL_KEYS,
    SUMMARY_KEYS,
    in_catalogue_order,
    ratio,
    summarize_frame,
    summary_of,
)


def default_baseline(axis: str, values: list[str]) -> str:
    if axis == "variant" and "fp32" in values:
        return "fp32"
    if axis == "power_limit_w":  # the GPU as it was (no limit set), else its highest limit
        return "" if "" in values else max(values, key=float)
    return sorted(values)[0]


def quality_change(row: pd.Series, base: pd.Series) -> float:
    """A row's task quality against its baseline's (quality.change), NaN unless both have the
    same metric."""
    metric, value, reference = row.get("quality_metric"), row.get("quality"), base.get("quality")
    if not isinstance(metric, str) or metric != base.get("quality_metric"):
        return math.nan
    if not (pd.notna(value) and pd.notna(reference)):
        return math.nan
    return change(str(metric), float(value), float(reference))


LEFT_OUT = "invalid_cells_left_out"  # the result's attrs key: how many invalid cells were left out


def compare(
    frame: pd.DataFrame, by: str, baseline: str | None = None, include_invalid: bool = False
) -> pd.DataFrame:
    """Stats per group, with each group's J/unit ratio (and 95% CI) to the baseline's.

    Groups are matched on every identity column except `by`: comparing variants, the fp32 and
    int8 rows of the same workload, phase and device face each other. Cells that `greenbench
    check` judges invalid are left out (`attrs[LEFT_OUT]` counts them) unless
    `include_invalid`; then their rows say so (`cell_valid`, `cell_reasons`) and no ratio that
    involves one is called significant.
    """
    if by not in AXES:
        raise GreenbenchError(f"--by: unknown axis '{by}'; use one of {', '.join(AXES)}")
    column = AXES[by]
    # runs may come from different machines: comparing runs, the run stands for its machine
    keys = SUMMARY_KEYS if by != "run" else [*CELL_KEYS, "run_id"]
    match = [k for k in keys if k != column]
    left_out = 0
    if not include_invalid:
        frame, left_out = leave_out_invalid(frame)
    summary = with_group_verdicts(summarize_frame(frame, keys), frame, keys)
    summary.attrs[LEFT_OUT] = left_out
    if summary.empty:
        return summary
    values = sorted(summary[column].astype(str).unique())
    if baseline is None:
        baseline = default_baseline(by, values)
    elif baseline not in values:
        raise GreenbenchError(
            f"--baseline: no {by} '{baseline}' in these results; have {', '.join(values)}"
        )
    summary["baseline"] = baseline
    ratios, lows, highs, flags, quality_changes = [], [], [], [], []
    for _, row in summary.iterrows():
        same = summary
        for k in match:
            same = same[same[k] == row[k]]
        base = same[same[column].astype(str) == baseline]
        r = None if base.empty else ratio(summary_of(row), summary_of(base.iloc[0]))
        ratios.append(r.value if r else float("nan"))
        lows.append(r.low if r else float("nan"))
        highs.append(r.high if r else float("nan"))
        # an invalid cell's figures carry no claim beyond the noise, on either side of a ratio
        both_valid = bool(row["cell_valid"]) and not base.empty and bool(base["cell_valid"].iloc[0])
        flags.append(bool(r and r.significant) and both_valid)
        quality_changes.append(math.nan if base.empty else quality_change(row, base.iloc[0]))
    summary["ratio"] = ratios
    summary["ratio_low"] = lows
    summary["ratio_high"] = highs
    summary["significant"] = flags
    summary["quality_change"] = quality_changes
    ordered = in_catalogue_order(summary, [*match, column])
    ordered.attrs[LEFT_OUT] = left_out
    return ordered
