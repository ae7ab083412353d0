"""The carbon-aware savings table in docs/benchmarks.md (issue 6).

    python benchmarks/backtest_table.py ../shared/data/grid/{gb,de}-2020.csv

A 30-minute job that would start at 01:00 UTC every day of 2020, moved by up to ±1, 4 or 8 h;
perfect foresight and a forecast with 10 % autocorrelated error (seed 0); contiguous and
interruptible. Prints a markdown table. Same as `greenbench backtest ... --json` per row.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from greenbench.carbon.backtest import Forecast, backtest
from greenbench.carbon.sources.file import load_series

FLEX_H = (1, 4, 8)
FORECASTS = (Forecast(), Forecast(error_pct=10))


def main(paths: list[str]) -> None:
    print("| trace | flex | forecast | contiguous | interruptible | oracle (contiguous) |")
    print("|---|---|---|---|---|---|")
    started = time.perf_counter()
    for path in paths:
        series = load_series(path)
        for flex in FLEX_H:
            for forecast in FORECASTS:
                results = [
                    backtest(
                        series,
                        dt.timedelta(minutes=30),
                        dt.time(1, 0),
                        dt.timedelta(hours=flex),
                        forecast,
                        interruptible,
                        dt.date(2020, 1, 1),
                        dt.date(2020, 12, 31),
                    )
                    for interruptible in (False, True)
                ]
                whole, split = results
                print(
                    f"| {path.rsplit('/', 1)[-1]} | ±{flex} h | {forecast.name} | "
                    f"{whole.saving_pct:.2f} % | {split.saving_pct:.2f} % | "
                    f"{whole.oracle_saving_pct:.2f} % |"
                )
    print(f"\n{time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
