"""The calibration benchmark's simulation and counting (benchmarks/stats_calibration.py)."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenbench.stats import summarize_frame

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "stats_calibration.py"


def _load():
    spec = importlib.util.spec_from_file_location("stats_calibration", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


sc = _load()
TRUTH = sc.CellTruth(j_per_unit=0.25, units_per_s=40.0, idle_power_w=20.0)


def _summary(scenario, repetitions=3, seed=0):
    result = sc.simulate_cell(np.random.default_rng(seed), TRUTH, scenario, repetitions)
    frame = pd.DataFrame(sc.cell_records(result, "cell-0", "run-a"))
    (row,) = summarize_frame(frame).to_dict("records")
    return frame, row


def test_without_noise_the_records_and_the_summary_give_the_true_j_per_unit():
    frame, row = _summary(sc.Scenario("exact", window_cv=0.0), repetitions=4)
    assert len(frame) == 4 and frame["valid"].all()
    assert frame["energy_per_unit_j"].tolist() == pytest.approx([0.25] * 4, rel=1e-12)
    # the gross energy holds the idle power: the records subtracted the baseline
    assert (frame["gross_energy_per_unit_j"] > 0.25 * 1.5).all()
    assert row["n"] == 4 and row["j_per_unit"] == pytest.approx(0.25, rel=1e-12)
    assert row["j_per_unit_ci95"] == pytest.approx(0.0, abs=1e-12)


def test_the_idle_error_is_common_to_every_window_of_a_cell():
    frame, row = _summary(sc.Scenario("idle only", window_cv=0.0, idle_sd=0.05))
    # the same idle power error in every window: J/unit off by that power x its own duration
    error_w = (frame["energy_per_unit_j"] - 0.25) * frame["unit_count"] / frame["duration_s"]
    assert error_w.max() - error_w.min() == pytest.approx(0.0, abs=1e-9)
    assert abs(error_w.iloc[0]) > 1e-3
    assert abs(row["j_per_unit"] / 0.25 - 1) > 1e-4


def test_window_noise_spreads_windows_around_the_truth():
    frame, row = _summary(sc.Scenario("noisy", window_cv=0.05), repetitions=5)
    assert frame["energy_per_unit_j"].std() > 0.001
    assert row["j_per_unit_ci95"] > 0


def test_covers_counts_an_interval_that_holds_the_truth_and_never_a_nan_one():
    assert sc.covers(1.0, 0.1, 1.05) and sc.covers(1.0, 0.1, 0.9)
    assert not sc.covers(1.0, 0.1, 1.2)
    assert not sc.covers(1.0, math.nan, 1.0)


def test_count_covered_matches_each_row_with_its_own_cell_and_run():
    table = pd.DataFrame(
        {
            "workload": ["a", "a", "b"],
            "run_id": ["run-a", "run-b", "run-a"],
            "j_per_unit": [1.0, 1.0, 2.0],
            "j_per_unit_ci95": [0.1, 0.1, 0.1],
        }
    )
    truth = {("a", "run-a"): 1.05, ("a", "run-b"): 1.5, ("b", "run-a"): 2.0}
    assert sc.count_covered(table, truth) == 2


def test_every_path_flags_a_true_doubling_and_counts_every_cell():
    scenario = sc.Scenario("clear", window_cv=0.01)
    tally = sc.run_pairs(np.random.default_rng(1), scenario, 3, pairs=6, true_ratio=2.0, batch=4)
    assert (tally.cells, tally.pairs) == (12, 6)
    assert tally.flag_rates() == {
        "beyond the noise": 1.0,
        "report regression": 1.0,
        "gate 0 %": 1.0,
        "gate 10 %": 1.0,
    }


def test_equal_pairs_without_noise_sources_are_not_flagged_by_a_threshold_gate():
    tally = sc.run_pairs(np.random.default_rng(2), sc.Scenario("plain"), 3, pairs=6)
    assert tally.gate[10.0] == 0 and tally.report_regressions == tally.gate[0.0]
    assert 0 <= tally.covered <= tally.cells == 12


def test_the_table_has_a_row_per_scenario_and_n_and_names_rows_off_target():
    good = sc.Tally(cells=100, covered=95, pairs=50)
    bad = sc.Tally(cells=100, covered=80, pairs=50, beyond_noise=10)
    rows = [(sc.Scenario("good"), 3, good), (sc.Scenario("bad"), 5, bad)]
    lines = sc.table(rows)
    assert lines[2].startswith("| good | 3 | 95.0 % | 0.0 % |")
    assert lines[3].startswith("| bad | 5 | 80.0 % | 20.0 % |")
    assert sc.misses(rows) == ["bad (n = 5)"]


def test_write_docs_inserts_the_block_once_then_replaces_it(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Machine\n\ntext\n\n## On a CUDA GPU\n\nlater\n")
    sc.write_docs(doc, "### Calibration\n\nfirst")
    sc.write_docs(doc, "### Calibration\n\nsecond")
    text = doc.read_text()
    assert text.count(sc.BEGIN) == 1 and "first" not in text and "second" in text
    assert text.index("text") < text.index("second") < text.index("## On a CUDA GPU")
