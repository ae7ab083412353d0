"""Impossible figures are flagged where they are recorded and kept out of every mean and ratio."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from test_compare import frame, rows

from greenbench.call_energy import find_regressions
from greenbench.compare import compare
from greenbench.records import WindowFacts, window_figures
from greenbench.stats import summarize_frame
from greenbench.terminal import print_invalid_windows


def facts(energy_j: float, idle_w: float, split: dict[str, float] | None = None) -> WindowFacts:
    return WindowFacts(
        unit="token", unit_count=100, calls=10, duration_s=5.0, energy_j=energy_j,
        idle_power_w=idle_w, methods={"cpu": "rapl"}, carbon_intensity_g_per_kwh=200.0,
        carbon_source="test", energy_by_component_j=split,
    )  # fmt: skip


def test_a_window_whose_net_energy_is_not_positive_is_invalid_and_says_why():
    good = window_figures(facts(energy_j=60.0, idle_w=10.0))
    assert good["valid"] is True and good["validity"] is None
    bad = window_figures(facts(energy_j=45.0, idle_w=10.0))  # idle alone would be 50 J
    assert bad["valid"] is False and "net energy -5 J <= 0" in bad["validity"]


def test_a_counter_that_went_backwards_is_invalid():
    split = {"cpu": 80.0, "gpu": -20.0, "ram": 0.0}
    figures = window_figures(facts(energy_j=60.0, idle_w=1.0, split=split))
    assert figures["valid"] is False
    assert figures["validity"] == "gpu energy -20 J < 0: its counter went backwards"


def invalid(group: list[dict]) -> list[dict]:
    for row in group:
        if row["energy_per_unit_j"] <= 0:
            row.update(valid=False, validity="net energy <= 0")
    return group


def test_summaries_and_comparisons_leave_invalid_windows_out():
    data = frame(rows("fp32", [1.0, 1.1, 0.9]), invalid(rows("int8", [0.5, -3.0, 0.5])))
    summary = summarize_frame(data).set_index("variant")
    assert summary.loc["int8", "n"] == 2 and summary.loc["int8", "j_per_unit"] == 0.5
    assert summary.loc["int8", "invalid"] == 1 and summary.loc["fp32", "invalid"] == 0
    # the int8 cell is invalid (greenbench check): kept here, to see its valid windows' ratio
    table = compare(data, "variant", "fp32", include_invalid=True).set_index("variant")
    assert table.loc["int8", "ratio"] == 0.5  # not pulled below 0 by the impossible window


def test_a_cell_whose_windows_are_all_invalid_keeps_its_row_without_figures():
    summary = summarize_frame(frame(invalid(rows("int8", [-1.0, -2.0]))))
    row = summary.iloc[0]
    assert (row["n"], row["invalid"]) == (0, 2)
    assert pd.isna(row["j_per_unit"]) and pd.isna(row["power_w"])


def test_records_from_before_the_validity_column_count_as_valid():
    data = frame(rows("fp32", [1.0, 1.2]))  # `valid` is missing: NaN after reindexing
    assert summarize_frame(data)["n"].tolist() == [2]


def test_the_terminal_names_each_invalid_window():
    data = frame(invalid(rows("int8", [0.5, -3.0])))
    console = Console(record=True, width=200)
    print_invalid_windows(data, console)
    assert console.export_text().strip() == (
        "invalid, left out of the tables: w/int8/cpu decode repetition 2: net energy <= 0"
    )


def test_the_regression_gate_never_flags_on_an_interval_it_cannot_compute():
    one_window = {"energy_j_per_call": 3.0, "energy_n": 1}  # n = 1: no interval
    before = {"energy_j_per_call": 1.0, "energy_n": 1}
    assert find_regressions({"t": one_window}, {"t": before}, 10) == []
    negative = {"energy_j_per_call": -5.0, "energy_n": 3, "energy_j_per_call_std": 1.0}
    assert find_regressions({"t": negative}, {"t": before | {"energy_n": 3}}, 10) == []
