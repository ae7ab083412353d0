"""How figures read as text: numbers, percentages, joules in the unit that suits them.

Shared by the terminal tables, the HTML report and the pytest plugin, so it imports nothing
beyond the standard library: the pytest plugin loads it into every pytest session.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

ESTIMATE_MARK = "~"
SCALES = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"))
MASS_SCALES = ((1.0, "g"), (1e-3, "mg"), (1e-6, "µg"), (1e-9, "ng"))
WIDE_MARK = "!"  # after a figure whose 95 % CI is wider than the figure itself


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt(value: Any, digits: int = 3) -> str:
    """`digits` significant digits, thousands with commas; never scientific notation (a table
    column reads down its digits, and 1.2e-05 beside 0.0031 does not)."""
    if missing(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}g}"
    if "e" in text:  # below 1e-4, or above 10**digits: written out in full
        decimals = digits - 1 - math.floor(math.log10(abs(value)))
        text = f"{value:.{max(decimals, 0)}f}"
    return text


def fmt_ms(seconds: Any) -> str:
    """A latency in seconds as milliseconds (fmt's digits): `12.3`, `0.0451`, `1,250`."""
    return "-" if missing(seconds) else fmt(seconds * 1e3)


def fmt_pct(value: Any) -> str:
    return "-" if missing(value) else f"{value * 100:.1f}%"


def fmt_kl(value: Any) -> str:
    if missing(value):
        return "-"
    return "0" if value == 0 else fmt(value, 2)


def fmt_cosine(value: Any) -> str:
    """A cosine similarity near 1: enough digits to tell 0.99998 from 1."""
    return "-" if missing(value) else f"{value:.5f}"


def energy_scale(values: Iterable[float]) -> tuple[float, str]:
    """The unit (J, mJ, ...) that puts the typical value between 1 and 1000.

    Typical is the median magnitude, NaN and None left out; with none left, the smallest unit.
    """
    return column_scale(values, SCALES)


def column_scale(
    values: Iterable[float], scales: tuple[tuple[float, str], ...]
) -> tuple[float, str]:
    """The one unit of `scales` (largest first) for a whole column: the one that puts the
    column's median magnitude between 1 and 1000, so every row of the column reads alike."""
    magnitudes = [abs(v) for v in values if v is not None and not math.isnan(v)]
    typical = statistics.median(magnitudes) if magnitudes else math.nan
    for factor, name in scales:
        if typical >= factor:
            return factor, name
    return scales[-1]


def fmt_joules(value: float, ci95: float | None = None) -> str:
    """`63.5 ± 1.8 µJ`: one value (and its CI) in the unit that suits it."""
    factor, name = energy_scale([value])
    text = fmt(value / factor)
    if ci95 is not None and math.isfinite(ci95):
        text += f" ± {fmt(ci95 / factor, 2)}"
    return f"{text} {name}"


def energy_text(mean: float, ci95: float, estimated: bool, factor: float = 1.0) -> str:
    """`~63.5 ± 1.8`: a mean and its CI in units of `factor`, marked when estimated."""
    mark = ESTIMATE_MARK if estimated else ""
    text = f"{mark}{fmt(mean / factor)}"
    if math.isfinite(ci95):
        text += f" ± {fmt(ci95 / factor, 2)}"
        if ci_wider_than_mean(mean, ci95):
            text += f" {WIDE_MARK}"
    return text


def ci_wider_than_mean(mean: float, ci95: float) -> bool:
    """The interval reaches past zero: the figure's sign, let alone its size, is not known."""
    return math.isfinite(mean) and math.isfinite(ci95) and ci95 > abs(mean)


def fidelity_cells(row: Any) -> list[str]:
    """Top-1 agreement and KL divergence to fp32; blank for fp32 itself and for training."""
    return [fmt_pct(row["fidelity_top1"]), fmt_kl(row["fidelity_kl"])]


def window_count(n: int, invalid: int = 0) -> str:
    """A summary's window count, with the invalid windows it left out."""
    return f"{n} (+{invalid} invalid)" if invalid else str(n)


# how a quality metric reads in tables (quality.py names them)
QUALITY_LABELS = {
    "perplexity": "ppl",
    "top1_accuracy": "top-1 acc",
    "accuracy": "acc",
    "wer": "WER",
}


def quality_text(metric: Any, value: Any) -> str:
    """`ppl 12.4`, `top-1 acc 87.5%`: a cell's task quality; `-` without one."""
    if missing(value) or not isinstance(metric, str) or not metric:
        return "-"
    label = QUALITY_LABELS.get(metric, metric)
    return f"{label} {fmt(value)}" if metric == "perplexity" else f"{label} {fmt_pct(value)}"


def quality_change_text(metric: Any, value: Any) -> str:
    """A quality change against the baseline: `+3.1%` of perplexity, `-2.0 pts` of a rate."""
    if missing(value) or not isinstance(metric, str):
        return "-"
    if metric == "perplexity":
        return f"{value * 100:+.1f}%"
    return f"{value * 100:+.1f} pts"


def quality_cells(row: Any) -> list[str]:
    """A compare row's task quality and its change against the baseline."""
    metric = row["quality_metric"]
    return [
        quality_text(metric, row["quality"]),
        quality_change_text(metric, row["quality_change"]),
    ]
