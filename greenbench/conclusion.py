"""The end of `greenbench run` in plain sentences: each variant's energy against the baseline's.

Nothing is derived here: the ratios and their 95 % intervals are compare.compare's (stats.ratio),
the verdicts check.py's; this module only words them. Fidelity is a property of the model (the
variant's outputs on fixed inputs against fp32's), the same for every phase, so it is said once
per variant, not once per phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from greenbench.compare import compare
from greenbench.formatting import fmt_kl, fmt_pct, missing
from greenbench.stats import in_catalogue_order, param_columns

DEFAULT_BASELINE = "fp32"


@dataclass(frozen=True)
class VariantConclusion:
    """One variant of one workload on one device (at one value of each swept parameter): a
    heading, then a sentence per phase."""

    heading: str
    phases: tuple[str, ...]


def fmt_ratio(value: float) -> str:
    """`0.60`: two decimals, or two significant digits below 0.1 (0.0031, not 0.00)."""
    if missing(value):
        return "-"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.2g}"


def conclusions(frame: pd.DataFrame, baseline: str = DEFAULT_BASELINE) -> list[VariantConclusion]:
    """For every variant other than `baseline` that ran beside it, its ratio per phase.

    Invalid cells (check.py: among its rules, windows too short for the meter, which makes a
    cell unreliable) are kept and named as such, with their first reason: a conclusion that
    silently dropped them would overstate what the run shows.
    """
    ok = frame[frame["status"] == "ok"]
    if ok.empty or baseline not in set(ok["variant"]):
        return []
    table = compare(ok, "variant", baseline, include_invalid=True)
    found = []
    # machines and GPU power limits are named only where one workload ran on several;
    # parameters by the values that differ (a sweep's batch=4), one heading per value
    apart = [
        k
        for k in ("node", "power_limit_w")
        if k in table and table.groupby(["workload", "device"])[k].nunique().max() > 1
    ]
    table, swept = param_columns(table)
    order = ["workload", "device", *apart, *swept, "variant", "phase"]
    table = in_catalogue_order(table, order, numeric=swept)  # batch 1, 4, 16: not as text
    groups = table.groupby(
        ["workload", "device", *apart, "params", "variant"], sort=False, dropna=False
    )
    for keys, part in groups:
        workload, device, *rest = keys
        variant = rest[-1]
        if variant == baseline:
            continue
        where = "".join(f", {k} {v}" for k, v in zip(apart, rest[:-2], strict=True))
        row = part.iloc[0]
        where += "".join(f", {k}={row[k]}" for k in swept if row[k] is not None)
        heading = f"{workload} on {device}{where}, {variant}{_fidelity(part, baseline)}"
        sentences = tuple(_phase_sentence(row, table, baseline) for _, row in part.iterrows())
        found.append(VariantConclusion(heading, sentences))
    return found


def _fidelity(part: pd.DataFrame, baseline: str) -> str:
    """`: 81.0% top-1 agreement with fp32, KL 0.012 (the model's, all phases)` or nothing."""
    top1 = part["fidelity_top1"].dropna()
    if top1.empty:
        return ""
    kl = part["fidelity_kl"].dropna()
    kl_text = f", KL {fmt_kl(kl.iloc[0])}" if not kl.empty else ""
    return (
        f": {fmt_pct(top1.iloc[0])} top-1 agreement with {baseline}{kl_text} "
        "(the model's outputs on fixed inputs: one score for all its phases)"
    )


def _phase_sentence(row: pd.Series, table: pd.DataFrame, baseline: str) -> str:
    """`decode: 0.60x fp32 energy per token [0.55, 0.66], a saving of 40 % beyond the noise`."""
    phase, unit = row["phase"], row["unit"]
    same = (table["variant"] == baseline) & (table["phase"] == phase)
    for key in ("workload", "device", "node", "params"):  # the row's own baseline cell
        if key in table:
            same &= table[key] == row[key]
    base = table[same]
    if not row["cell_valid"]:
        return f"{phase}: INVALID, no conclusion ({_first_reason(row)})"
    if base.empty:
        return f"{phase}: no {baseline} cell to compare with"
    if not base["cell_valid"].iloc[0]:
        reason = _first_reason(base.iloc[0])
        return f"{phase}: no conclusion, the {baseline} cell is INVALID ({reason})"
    value = row["ratio"]
    if missing(value):
        return f"{phase}: no ratio (no energy figure on one side)"
    text = f"{phase}: {fmt_ratio(value)}x {baseline} energy per {unit}"
    if math.isfinite(row["ratio_low"]):
        text += f" [{fmt_ratio(row['ratio_low'])}, {fmt_ratio(row['ratio_high'])}]"
        text += f", {_verdict(value, bool(row['significant']))}"
    else:
        text += ", no interval (fewer than 2 windows on one side)"
    return text


def _verdict(value: float, significant: bool) -> str:
    if not significant:
        return "no difference beyond the noise"
    change = abs(1 - value) * 100
    return f"a saving of {change:.0f} %" if value < 1 else f"{change:.0f} % more energy"


def _first_reason(row: pd.Series) -> str:
    reasons = row["cell_reasons"]
    return reasons[0] if len(reasons) else "see greenbench check"
