"""Compare groups of results along one axis (variant, device, workload, run, or a swept workload
parameter such as batch), with ratios."""

from __future__ import annotations

import math

import pandas as pd

from greenbench.check import leave_out_invalid, with_group_verdicts
from greenbench.errors import GreenbenchError
from greenbench.quality import change
from greenbench.records import COMPARE_AXES as AXES
from greenbench.response_energy import with_responses
from greenbench.stats import (
    CELL_KEYS,
    SUMMARY_KEYS,
    in_catalogue_order,
    ratio,
    summarize_frame,
    summary_of,
)
from greenbench.sweep import is_number, param_value, varying_params, without_param

AXIS_COLUMN = "axis_column"  # the result's attrs key: the column holding the --by values


def default_baseline(axis: str, values: list[str]) -> str:
    if axis == "variant" and "fp32" in values:
        return "fp32"
    if axis == "power_limit_w":  # the GPU as it was (no limit set), else its highest limit
        return "" if "" in values else max(values, key=float)
    return sorted(values)[0]


def by_parameter(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """The rows whose params have `key`, with its value as a column of that name and `params`
    less it (so rows that differ only in `key` face each other). Raises, naming the axes,
    when no row has it."""
    values = frame["params"].map(lambda p: param_value(p, key)) if "params" in frame else None
    if values is None or values.isna().all():
        swept = (
            varying_params(zip(frame["workload"], frame["params"], strict=True))
            if "params" in frame and "workload" in frame
            else []
        )
        hint = f", or a workload parameter ({', '.join(swept)})" if swept else ""
        raise GreenbenchError(
            f"--by: unknown axis '{key}' (no result has a parameter of that name); use one of "
            f"{', '.join(AXES)}{hint}"
        )
    part = frame[values.notna()].copy()
    part[key] = pd.Series(list(values[values.notna()]), index=part.index, dtype=object)
    part["params"] = part["params"].map(lambda p: without_param(p, key))
    return part


def _parameter_baseline(key: str, values: list[object], baseline: str | None) -> object:
    """The value of parameter `key` ratios are taken against: the one `baseline` names
    (`--baseline 4` matches 4 and 4.0), by default the smallest."""
    if baseline is None:
        return min(values, key=lambda v: (not is_number(v), v if is_number(v) else str(v)))
    for value in values:
        if str(value) == baseline or (is_number(value) and _number(baseline) == value):
            return value
    have = ", ".join(str(v) for v in values)
    raise GreenbenchError(f"--baseline: no {key} '{baseline}' in these results; have {have}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


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
    frame: pd.DataFrame,
    by: str,
    baseline: str | None = None,
    include_invalid: bool = False,
    target_tokens: int | None = None,
) -> pd.DataFrame:
    """Stats per group, with each group's J/unit ratio (and 95% CI) to the baseline's.

    Groups are matched on every identity column except `by`: comparing variants, the fp32 and
    int8 rows of the same workload, phase and device face each other. Cells that `greenbench
    check` judges invalid are left out (`attrs[LEFT_OUT]` counts them) unless
    `include_invalid`; then their rows say so (`cell_valid`, `cell_reasons`) and no ratio that
    involves one is called significant. LM configurations with prefill and decode get a derived
    `response` row (J per response, response_energy.py), with `target_tokens` also J for that
    many generated tokens (`j_for_target`).
    """
    if target_tokens is not None and target_tokens < 1:
        raise GreenbenchError(f"--target-tokens must be a whole number >= 1, got {target_tokens}")
    parameter = by not in AXES
    if parameter:  # a workload parameter: its values are the axis
        frame = by_parameter(frame, by)
    column = by if parameter else AXES[by]
    # runs may come from different machines: comparing runs, the run stands for its machine
    keys = SUMMARY_KEYS if by != "run" else [*CELL_KEYS, "run_id"]
    if parameter:
        keys = [*keys, column]
    match = [k for k in keys if k != column]
    left_out = 0
    if not include_invalid:
        frame, left_out = leave_out_invalid(frame)
    summary = with_group_verdicts(summarize_frame(frame, keys), frame, keys)
    summary = with_responses(summary, keys, target_tokens)
    summary.attrs[LEFT_OUT] = left_out
    summary.attrs[AXIS_COLUMN] = column
    if summary.empty:
        return summary
    base_value: object
    if parameter:
        base_value = _parameter_baseline(by, list(summary[column].unique()), baseline)
        baseline = str(base_value)
        on_axis = summary[column] == base_value
    else:
        values = sorted(summary[column].astype(str).unique())
        if baseline is None:
            baseline = default_baseline(by, values)
        elif baseline not in values:
            raise GreenbenchError(
                f"--baseline: no {by} '{baseline}' in these results; have {', '.join(values)}"
            )
        on_axis = summary[column].astype(str) == baseline
    summary["baseline"] = baseline
    ratios, lows, highs, flags, quality_changes = [], [], [], [], []
    for _, row in summary.iterrows():
        same = on_axis
        for k in match:
            same = same & (summary[k] == row[k])
        base = summary[same]
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
    ordered.attrs[AXIS_COLUMN] = column
    return ordered
