"""How often `greenbench history` flags a planted regression, and how often it flags drift.

    python benchmarks/regression_detection.py [--cells 200] [--seed 0] [--noise 1,2,3]

Pure computation: each simulated cell is a year (365 nightly runs) of J/unit from
greenbench.report.sample.nightly_levels (a slow wander of at most +-3 % plus between-run noise
of standard deviation NOISE %), each run with a 95% CI half-width of 1.5 % (the within-run CI
is smaller than the between-run spread, as measured). greenbench.drift.judge, the rule the
command applies to the newest run, is applied night by night to the runs so far.

- drift-only: no shift; every flag on any night is a false alarm (per cell-year, and per
  judged night);
- shifts of 5/10/20 %: a step up on a random night between 120 and 364; detected on the night
  when that night is flagged a regression, and within 3 nights when one of it and the next
  two is (the step persists).
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from greenbench.drift import DEFAULT_PCT, FLOOR_K, MIN_RUNS, judge
from greenbench.report.sample import nightly_levels

NIGHTS = 365
CI = 0.015  # each run's own 95% CI half-width, relative
SHIFTS = (0.05, 0.10, 0.20)


def cis(levels: list[float]) -> list[float]:
    return [CI * level for level in levels]


def false_alarms(cells: int, seed: int, noise: float, k: float) -> tuple[int, int, int]:
    """(flags, judged nights, cell-years with any flag) over drift-only cells."""
    flags = nights = cells_flagged = 0
    for cell in range(cells):
        levels = nightly_levels(NIGHTS, seed * 100_003 + cell, noise=noise)
        ci = cis(levels)
        flagged = 0
        for night in range(MIN_RUNS, NIGHTS + 1):
            flagged += judge(levels[:night], ci[:night], DEFAULT_PCT, k).flagged
            nights += 1
        flags += flagged
        cells_flagged += flagged > 0
    return flags, nights, cells_flagged


def detection(cells: int, seed: int, noise: float, shift: float, k: float) -> tuple[int, int]:
    """(cells flagged on the step's night, cells flagged within 3 nights of it)."""
    on_night = within = 0
    rng = random.Random(seed)
    for cell in range(cells):
        at = rng.randrange(120, NIGHTS - 2)
        levels = nightly_levels(NIGHTS, seed * 100_003 + cell, noise=noise, step=shift, step_at=at)
        ci = cis(levels)
        hits = [judge(levels[: at + 1 + j], ci[: at + 1 + j], DEFAULT_PCT, k).status == "regression"
                for j in range(3)]  # fmt: skip
        on_night += hits[0]
        within += any(hits)
    return on_night, within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200, help="cell-years per setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=float, default=FLOOR_K, help="noise floors a flag needs")
    parser.add_argument("--noise", default="1,2,3", help="between-run noise sd, %% (1,2,3)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.cells} cell-years of {NIGHTS} nightly runs per row; flag rule: "
          f"greenbench.drift.judge at PCT {DEFAULT_PCT:g}, {args.k:g} noise floors")  # fmt: skip
    print()
    print(
        "| between-run noise (sd) | planted shift | flagged on the night | within 3 nights |"
        " false alarms per cell-year | per judged night | cell-years with any false alarm |"
    )
    print("|---|---|---|---|---|---|---|")
    for noise in (float(n) / 100 for n in args.noise.split(",")):
        flags, nights, flagged_cells = false_alarms(args.cells, args.seed, noise, args.k)
        print(f"| {noise:.0%} | none (drift only) | - | - | {flags / args.cells:.2f} | "
              f"{flags / nights:.2%} | {flagged_cells / args.cells:.0%} |")  # fmt: skip
        for shift in SHIFTS:
            on_night, within = detection(args.cells, args.seed + 1, noise, shift, args.k)
            print(f"| {noise:.0%} | +{shift:.0%} | {on_night / args.cells:.0%} | "
                  f"{within / args.cells:.0%} | | | |")  # fmt: skip
    print()
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
