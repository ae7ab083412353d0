"""Calibration of greenbench's statistics by Monte Carlo (issue 14, item 10).

    python benchmarks/stats_calibration.py [--cells 500] [--seed 0] [--docs docs/benchmarks.md]

Every simulated cell has a known true J/unit. It is measured as the protocol measures a cell:
an idle baseline (taken once, in sub-windows, and subtracted from every window), then n windows.
Three sources of error, each relative to the cell's net (work) power:

- window noise: each window's net energy off by an independent N(0, window_cv) share;
- idle error: the baseline's mean power off by N(0, idle_sd), common to every window of the
  cell (it is the mean of the sub-windows' readings, each off by idle_sd * sqrt(sub-windows));
- between-run variance: the cell's level in one run off by N(0, run_sd), common to its windows.

`simulate_cell` builds the protocol's own objects (Measurement, IdleBaseline,
    IdleSample, Window,
ProtocolResult) and the runner's code (records.measured_records) makes the records. Cells come
in pairs with the same truth (the same cell in two runs, each with its own idle baseline and
run level), and go through the code a user's figures go through:

- coverage: `summarize_frame`'s J/unit CI95 (through `compare`) against the truth, every cell;
- "beyond the noise": `compare(frame, by="run")`'s `significant` flag, per equal pair;
- report regression: `report.data.comparison(now, before)`'s `regression` flag, per pair;
- pytest gate: `call_energy.summarize_calls` -> `extra_info` -> `find_regressions` (J per call)
  with --energy-fail-on-regression 0 and 10, per pair.

Targets: coverage 93-97 % for the nominal 95 %, false positives on equal cells at most 5 %.
With --docs, the table replaces the block between this script's markers in that markdown file
(or is inserted before its "On a CUDA GPU" section the first time).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import re
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenbench.call_energy import find_regressions, summarize_calls
from greenbench.compare import compare
from greenbench.energy.meter import KWH_TO_J, Measurement
from greenbench.protocol import IdleBaseline, IdleSample, ProtocolResult, Window
from greenbench.records import Record, measured_records
from greenbench.report.data import comparison

REPETITIONS = (2, 3, 5)
IDLE_SUB_WINDOWS = 6  # a 3 s idle baseline read in 0.5 s pieces
IDLE_S = 3.0
MIN_WINDOW_S = 5.0
UNITS_PER_CALL = 8
GATE_PCTS = (0.0, 10.0)  # --energy-fail-on-regression values tried
ZONE = "GB"
INTENSITY = 200.0  # g/kWh
BEGIN = "<!-- stats_calibration: begin (written by benchmarks/stats_calibration.py) -->"
END = "<!-- stats_calibration: end -->"


@dataclass(frozen=True)
class Scenario:
    name: str
    window_cv: float = 0.02  # per-window noise of net energy
    idle_sd: float = 0.0  # error of the idle baseline's mean power, share of the net power
    run_sd: float = 0.0  # the cell's level in one run, share of the truth


SCENARIOS = (
    Scenario("window noise only"),
    Scenario("idle error", idle_sd=0.02),
    Scenario("between-run variance", run_sd=0.03),
)


@dataclass(frozen=True)
class CellTruth:
    j_per_unit: float
    units_per_s: float
    idle_power_w: float

    @property
    def net_power_w(self) -> float:
        return self.j_per_unit * self.units_per_s


def draw_truth(rng: np.random.Generator) -> CellTruth:
    """A cell's true figures: 5-50 W of net power at 10-1,000 units/s over 5-40 W of idle."""
    units_per_s = float(10 ** rng.uniform(1, 3))
    net_w = float(rng.uniform(5, 50))
    return CellTruth(net_w / units_per_s, units_per_s, float(rng.uniform(5, 40)))


def _measurement(cpu_j: float) -> Measurement:
    """One meter reading, all of it on a CPU counter (the split does not matter here)."""
    return Measurement(
        energy_j={"cpu": cpu_j, "gpu": 0.0, "ram": 0.0},
        methods={"cpu": "rapl", "gpu": "none", "ram": "none"},
        emissions_g=cpu_j / KWH_TO_J * INTENSITY,
        carbon_intensity_g_per_kwh=INTENSITY,
        carbon_source="simulated",
    )


def idle_baseline(sub_windows: Sequence[Measurement], sub_window_s: float) -> IdleBaseline:
    """An IdleBaseline of idle read in sub-windows, as the protocol takes it: the samples one
    by one (their spread is the idle's standard error)."""
    return IdleBaseline(
        samples=tuple(IdleSample(sub_window_s, m) for m in sub_windows),
        samples_before=len(sub_windows),
    )


def simulate_cell(
    rng: np.random.Generator, truth: CellTruth, scenario: Scenario, repetitions: int
) -> ProtocolResult:
    """One cell measured in one run: its idle baseline and `repetitions` windows of one phase."""
    net_w = truth.net_power_w
    sub_window_s = IDLE_S / IDLE_SUB_WINDOWS
    # each sub-window's power off by idle_sd * sqrt(k), so the baseline's mean is off by idle_sd
    sub_sd_w = scenario.idle_sd * net_w * math.sqrt(IDLE_SUB_WINDOWS)
    idle = idle_baseline(
        [
            _measurement((truth.idle_power_w + sub_sd_w * rng.standard_normal()) * sub_window_s)
            for _ in range(IDLE_SUB_WINDOWS)
        ],
        sub_window_s,
    )
    level = 1 + scenario.run_sd * rng.standard_normal()  # this run's level of the cell
    call_s = UNITS_PER_CALL / truth.units_per_s
    windows = []
    for repetition in range(1, repetitions + 1):
        # a window runs whole calls until it has lasted MIN_WINDOW_S; calls vary a little
        calls = max(2, math.ceil(MIN_WINDOW_S / call_s))
        duration = calls * call_s * float(rng.uniform(1.0, 1.02))
        units = calls * UNITS_PER_CALL
        net_j = truth.j_per_unit * units * level * (1 + scenario.window_cv * rng.standard_normal())
        windows.append(
            Window(
                phase="forward",
                unit="image",
                repetition=repetition,
                calls=calls,
                unit_count=units,
                duration_s=duration,
                measurement=_measurement(truth.idle_power_w * duration + net_j),
            )
        )
    return ProtocolResult(idle=idle, windows=windows)


def cell_records(result: ProtocolResult, workload: str, run_id: str) -> list[Record]:
    """The records the runner would write for this cell."""
    context = {
        "run_id": run_id,
        "cell_id": f"{workload}/fp32/cpu",
        "attempt": 1,
        "suite": "calibration",
        "workload": workload,
        "architecture": None,
        "task": "inference",
        "variant": "fp32",
        "device": "cpu",
        "params": "{}",
        "zone": ZONE,
        "node": "simulated",
    }
    return measured_records(context, result)


def covers(mean: float, ci95: float, truth: float) -> bool:
    """True when [mean - ci95, mean + ci95] holds the truth; a NaN interval holds nothing."""
    return math.isfinite(ci95) and abs(mean - truth) <= ci95


@dataclass
class Tally:
    """Counts of one scenario at one n."""

    cells: int = 0
    covered: int = 0
    pairs: int = 0
    beyond_noise: int = 0
    report_regressions: int = 0
    gate: dict[float, int] = field(default_factory=lambda: dict.fromkeys(GATE_PCTS, 0))

    @property
    def coverage(self) -> float:
        return self.covered / self.cells if self.cells else math.nan

    def flag_rates(self) -> dict[str, float]:
        """Share of pairs flagged, per path, in the table's column order."""
        counts = {
            "beyond the noise": self.beyond_noise,
            "report regression": self.report_regressions,
            **{f"gate {pct:g} %": n for pct, n in self.gate.items()},
        }
        return {k: n / self.pairs if self.pairs else math.nan for k, n in counts.items()}


def count_covered(summary: pd.DataFrame, truth: Mapping[tuple[str, str], float]) -> int:
    """Rows of a `compare --by run` table whose J/unit CI95 holds the (workload, run) truth."""
    return sum(
        covers(row.j_per_unit, row.j_per_unit_ci95, truth[(row.workload, row.run_id)])
        for row in summary.itertuples()
    )


def run_pairs(
    rng: np.random.Generator,
    scenario: Scenario,
    repetitions: int,
    pairs: int,
    true_ratio: float = 1.0,
    batch: int = 50,
) -> Tally:
    """Simulate `pairs` pairs (run-b's truth `true_ratio` times run-a's: 1 for equal cells) and
    count coverage and flags through the real code."""
    tally = Tally()
    for start in range(0, pairs, batch):
        names = [f"cell-{i}" for i in range(start, min(start + batch, pairs))]
        truth: dict[tuple[str, str], float] = {}
        records: dict[str, list[Record]] = {"run-a": [], "run-b": []}
        infos: dict[str, dict[str, dict[str, Any]]] = {"run-a": {}, "run-b": {}}
        for name in names:
            a = draw_truth(rng)
            b = dataclasses.replace(a, j_per_unit=a.j_per_unit * true_ratio)
            for run, cell in (("run-a", a), ("run-b", b)):
                result = simulate_cell(rng, cell, scenario, repetitions)
                truth[(name, run)] = cell.j_per_unit
                records[run] += cell_records(result, name, run)
                infos[run][name] = summarize_calls(result, ZONE).extra_info()
        before, now = pd.DataFrame(records["run-a"]), pd.DataFrame(records["run-b"])
        table = compare(pd.concat([before, now], ignore_index=True), by="run", baseline="run-a")
        tally.cells += len(table)
        tally.covered += count_covered(table, truth)
        tally.pairs += len(names)
        tally.beyond_noise += int(table.loc[table["run_id"] == "run-b", "significant"].sum())
        tally.report_regressions += int(comparison(now, before)["regression"].sum())
        for pct in GATE_PCTS:
            tally.gate[pct] += len(find_regressions(infos["run-b"], infos["run-a"], pct))
    return tally


Results = list[tuple[Scenario, int, Tally]]


def calibrate(cells: int, seed: int) -> Results:
    """Every scenario at every n, `cells` cells each (cells / 2 equal pairs)."""
    rng = np.random.default_rng(seed)
    return [
        (scenario, n, run_pairs(rng, scenario, n, max(1, cells // 2)))
        for scenario in SCENARIOS
        for n in REPETITIONS
    ]


def _pct(share: float) -> str:
    return f"{share:.1%}".replace("%", " %")


def table(results: Results) -> list[str]:
    columns = ["scenario", "n", "CI95 coverage", *Tally().flag_rates()]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for scenario, n, t in results:
        cells = [scenario.name, str(n), _pct(t.coverage), *map(_pct, t.flag_rates().values())]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def misses(results: Results) -> list[str]:
    """Scenarios with rows outside the targets, each with the n of those rows."""
    off: dict[str, list[int]] = {}
    for scenario, n, t in results:
        flagged = max(t.flag_rates().values()) > 0.05
        if flagged or not 0.93 <= t.coverage <= 0.97:
            off.setdefault(scenario.name, []).append(n)
    return [f"{name} (n = {', '.join(map(str, ns))})" for name, ns in off.items()]


def _wrap(text: str) -> str:
    """Lines of at most 100 characters that never split "n = 3" or "4.2 %"."""
    keep = "\u00a0"  # textwrap breaks at ASCII whitespace only
    text = text.replace(" %", keep + "%").replace("n = ", f"n{keep}={keep}")
    return textwrap.fill(text, 100, break_on_hyphens=False).replace(keep, " ")


def _described(s: Scenario) -> str:
    return (
        f"- {s.name}: window noise {_pct(s.window_cv)}, idle error {_pct(s.idle_sd)}, "
        f"run level {_pct(s.run_sd)}"
    )


def section(results: Results, command: str, machine: str, wall_s: float, cpu_s: float) -> str:
    """The markdown section: what was simulated, the table, and what misses the targets."""
    cells, pairs = results[0][2].cells, results[0][2].pairs
    se = math.sqrt(0.95 * 0.05 / cells)
    off = misses(results)
    intro = (
        f"Command: `{command}` (run on {machine}, Python {platform.python_version()}, pandas "
        f"{pd.__version__}, numpy {np.__version__}; {wall_s:.0f} s, {cpu_s:.0f} s of CPU). "
        "Monte-Carlo cells with a known "
        "true J/unit, built as the protocol's Measurement, IdleBaseline and Window objects, made "
        "into records by `records.measured_records` and put through `summarize_frame` and "
        "`compare --by run` (CI95 coverage, the `significant` flag), the report's baseline "
        "comparison (`report.data.comparison`, its `regression` flag) and the pytest gate "
        "(`summarize_calls` -> `find_regressions` at `--energy-fail-on-regression` 0 and 10). "
        f"{cells} cells per row, {pairs} pairs of equal cells (the same cell in two runs, each "
        f"with its own idle baseline and run level); the coverage's binomial SE is {_pct(se)}. "
        "Errors, each a standard deviation as a share of the cell's net (work) power: window "
        "noise is independent per window; the idle error (the baseline's mean power, read in "
        f"{IDLE_SUB_WINDOWS} sub-windows) is common to every window of a cell; the run level is "
        "common to every window of a cell in one run."
    )
    targets = (
        "Targets: coverage 93-97 % for the nominal 95 %; every other column, the share of equal "
        "pairs flagged as different or regressed, at most 5 %. "
        + ("Outside them: " + "; ".join(off) + "." if off else "Every row is within them.")
    )
    return "\n".join(
        [
            "### Calibration of the statistics (issue 14, item 10)",
            "",
            _wrap(intro),
            "",
            *map(_described, SCENARIOS),
            "",
            *table(results),
            "",
            _wrap(targets),
        ]
    )


def write_docs(path: Path, text: str) -> None:
    """Replace this script's block in `path`, or put it before the CUDA section (or at the end)."""
    doc = path.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    elif "\n## On a CUDA GPU" in doc:
        doc = doc.replace("\n## On a CUDA GPU", f"\n{block}\n\n## On a CUDA GPU", 1)
    else:
        doc = doc.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(doc)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=500, help="cells per scenario and n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=Path, help="markdown file to write the section into")
    parser.add_argument("--machine", default=platform.node(), help="machine name for the docs")
    args = parser.parse_args(argv)
    if args.cells < 2:
        parser.error("--cells must be at least 2 (one pair of equal cells)")
    started, cpu_started = time.perf_counter(), time.process_time()
    results = calibrate(args.cells, args.seed)
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    command = " ".join(["python benchmarks/stats_calibration.py", *(argv or sys.argv[1:])])
    text = section(results, command, args.machine, wall_s, cpu_s)
    print(text)
    if args.docs is not None:
        write_docs(args.docs, text)


if __name__ == "__main__":
    main()
