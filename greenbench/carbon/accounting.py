"""Emissions from the grid's intensity over each window's actual time, beside CodeCarbon's.

CodeCarbon's offline figure uses one annual average per country. With an intensity source, each
measured window is also charged at the time-weighted mean intensity of its own minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from greenbench.carbon.intensity import IntensitySeries
from greenbench.energy.meter import KWH_TO_J
from greenbench.records import Record


def account(records: Iterable[Record], series: IntensitySeries, source: str) -> None:
    """Fill the emissions_series_* columns of measured records the series covers (in place)."""
    for record in records:
        window_start, duration, energy = (
            record.get("window_start"), record.get("duration_s"), record.get("energy_j")
        )  # fmt: skip
        if record.get("status") != "ok" or not window_start or duration is None or energy is None:
            continue
        start = dt.datetime.fromisoformat(window_start)
        end = start + dt.timedelta(seconds=float(duration))
        try:
            intensity = series.mean(start, end)
        except ValueError:  # the window is outside what the source knows
            continue
        record["carbon_intensity_series_g_per_kwh"] = intensity
        record["emissions_series_g"] = energy / KWH_TO_J * intensity
        record["carbon_series_source"] = source
