"""Emissions from the grid's intensity over each window's actual time, beside CodeCarbon's.

CodeCarbon's offline figure uses one annual average per country. With an intensity source, each
measured window is also charged at the time-weighted mean intensity of its own minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from greenbench.carbon.intensity import IntensitySeries
from greenbench.energy.meter import KWH_TO_J


def account(records: Iterable[dict[str, Any]], series: IntensitySeries, source: str) -> None:
    """Fill the emissions_series_* columns of measured records the series covers (in place)."""
    for record in records:
        if record.get("status") != "ok" or not record.get("window_start"):
            continue
        start = dt.datetime.fromisoformat(record["window_start"])
        end = start + dt.timedelta(seconds=float(record["duration_s"]))
        try:
            intensity = series.mean(start, end)
        except ValueError:  # the window is outside what the source knows
            continue
        record["carbon_intensity_series_g_per_kwh"] = intensity
        record["emissions_series_g"] = record["energy_j"] / KWH_TO_J * intensity
        record["carbon_series_source"] = source
