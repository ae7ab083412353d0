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


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt(value: Any, digits: int = 3) -> str:
    if missing(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_pct(value: Any) -> str:
    return "-" if missing(value) else f"{value * 100:.1f}%"


def fmt_kl(value: Any) -> str:
    if missing(value):
        return "-"
    return "0" if value == 0 else f"{value:.2g}"


def fmt_cosine(value: Any) -> str:
    """A cosine similarity near 1: enough digits to tell 0.99998 from 1."""
    return "-" if missing(value) else f"{value:.5f}"


def energy_scale(values: Iterable[float]) -> tuple[float, str]:
    """The unit (J, mJ, ...) that puts the typical value between 1 and 1000.

    Typical is the median magnitude, NaN and None left out; with none left, the smallest unit.
    """
    magnitudes = [abs(v) for v in values if v is not None and not math.isnan(v)]
    typical = statistics.median(magnitudes) if magnitudes else math.nan
    for factor, name in SCALES:
        if typical >= factor:
            return factor, name
    return SCALES[-1]


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
    return text


def fidelity_cells(row: Any) -> list[str]:
    """Top-1 agreement and KL divergence to fp32; blank for fp32 itself and for training."""
    return [fmt_pct(row["fidelity_top1"]), fmt_kl(row["fidelity_kl"])]


def window_count(n: int, invalid: int = 0) -> str:
    """A summary's window count, with the invalid windows it left out."""
    return f"{n} (+{invalid} invalid)" if invalid else str(n)
