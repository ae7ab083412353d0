"""Emissions from the grid's intensity over each window's actual time, beside CodeCarbon's.

CodeCarbon's offline figure uses one annual average per country. With an intensity source, each
measured window is also charged at the time-weighted mean intensity of its own minutes. This is
an extra: no failure of a source may stop a run or cost it a record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from greenbench.carbon.intensity import IntensitySeries
from greenbench.carbon.sources.chain import NoUsableSource, Source, Store, fetch_forecast
from greenbench.energy.meter import KWH_TO_J
from greenbench.errors import one_line
from greenbench.records import Record

AROUND = dt.timedelta(hours=48)  # the intensity asked for, either side of now


class RunCarbon:
    """A run's accounting from a chain of sources, asked after each cell. A source that fails is
    not asked again for the rest of the run; when none is left, `error` says why."""

    def __init__(self, sources: Sequence[Source], store: Store) -> None:
        self.sources = list(sources)
        self.store = store
        self.error: str | None = None
        self.dropped: list[str] = []  # why each source dropped before one answered failed

    def charge(self, records: Iterable[Record]) -> None:
        """Fill the records' emissions_series_* columns if a source answers; never raises."""
        if not self.sources:
            return
        now = dt.datetime.now(dt.UTC)
        try:
            result = fetch_forecast(self.sources, now - AROUND, now + AROUND, self.store)
            account(records, result.series, result.source)
        except NoUsableSource as e:
            self.sources, self.error = [], str(e)
            return
        except Exception as e:  # e.g. the cache folder cannot be written
            self.sources, self.error = [], f"carbon accounting failed ({one_line(e)})"
            return
        self.dropped += result.failures[: result.position]
        self.sources = self.sources[result.position :]  # the failed ones are dropped


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
