"""A figure as plotly.js takes it: traces and layout as plain JSON values.

For views too large for plotly's graph objects, which validate and copy every array of every
trace (seconds for a year of nightly runs); the page draws it as it draws any figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass
class RawFigure:
    data: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)

    def traces(self, name: str) -> list[dict[str, Any]]:
        """The traces called `name`."""
        return [t for t in self.data if t.get("name") == name]


def epoch_ms(times: pd.Series) -> list[int]:
    """UTC timestamps as milliseconds since 1970 (a date axis reads them as UTC), whatever
    the column's resolution."""
    return ((times - EPOCH) // pd.Timedelta(milliseconds=1)).astype("int64").tolist()


def rounded(values: Any, digits: int = 6) -> list[float | None]:
    """Floats to `digits` significant digits (the page carries every point), NaN as null."""
    return [None if v != v else float(f"{v:.{digits}g}") for v in map(float, values)]
