"""Compare groups of results along one axis (variant, device, workload or run), with ratios."""

from __future__ import annotations

import pandas as pd

from greenbench.errors import GreenbenchError
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
    return sorted(values)[0]


def compare(frame: pd.DataFrame, by: str, baseline: str | None = None) -> pd.DataFrame:
    """Stats per group, with each group's J/unit ratio (and 95% CI) to the baseline's.

    Groups are matched on every identity column except `by`: comparing variants, the fp32 and
    int8 rows of the same workload, phase and device face each other.
    """
    if by not in AXES:
        raise GreenbenchError(f"--by: unknown axis '{by}'; use one of {', '.join(AXES)}")
    column = AXES[by]
    # runs may come from different machines: comparing runs, the run stands for its machine
    keys = SUMMARY_KEYS if by != "run" else [*CELL_KEYS, "run_id"]
    match = [k for k in keys if k != column]
    summary = summarize_frame(frame, keys)
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
    ratios, lows, highs, flags = [], [], [], []
    for _, row in summary.iterrows():
        same = summary
        for k in match:
            same = same[same[k] == row[k]]
        base = same[same[column].astype(str) == baseline]
        r = None if base.empty else ratio(summary_of(row), summary_of(base.iloc[0]))
        ratios.append(r.value if r else float("nan"))
        lows.append(r.low if r else float("nan"))
        highs.append(r.high if r else float("nan"))
        flags.append(bool(r and r.significant))
    summary["ratio"] = ratios
    summary["ratio_low"] = lows
    summary["ratio_high"] = highs
    summary["significant"] = flags
    return in_catalogue_order(summary, [*match, column])
