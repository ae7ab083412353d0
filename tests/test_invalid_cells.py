"""Cells `greenbench check` judges invalid: left out of comparisons and ratio views unless asked,
marked wherever they are shown, never a regression or an improvement (issue 14, item 11)."""

from __future__ import annotations

import contextlib
import json
import shutil

import pandas as pd
import pytest
from rich.console import Console
from test_compare import frame, rows
from test_report import CHROMIUM

from greenbench.call_energy import find_regressions, summarize_calls
from greenbench.cli import main
from greenbench.compare import LEFT_OUT, compare
from greenbench.protocol import Phase, ProtocolSettings, run_protocol
from greenbench.pytest_plugin import summary_lines
from greenbench.records import build_record
from greenbench.report import data, figures
from greenbench.report.page import build_report
from greenbench.report.sample import synthetic_frame
from greenbench.store import RunStore
from greenbench.terminal import results_tables

NOISY = "J per unit varies 43% over its windows (at most 10%)"


def cells():
    """fp32 steady; int8 half the energy but noisy (CV 43 %): an invalid cell by check's rules."""
    return frame(rows("fp32", [1.0, 1.02, 0.98]), rows("int8", [0.25, 0.5, 0.25]))


def test_compare_leaves_an_invalid_cell_out_and_counts_it():
    table = compare(cells(), "variant")
    assert list(table["variant"]) == ["fp32"]
    assert table.attrs[LEFT_OUT] == 1


def test_compare_keeps_an_invalid_cell_when_asked_but_claims_nothing_about_it():
    table = compare(cells(), "variant", include_invalid=True).set_index("variant")
    assert table.attrs[LEFT_OUT] == 0
    int8 = table.loc["int8"]
    assert not int8["cell_valid"] and int8["cell_reasons"][0].startswith("J per unit varies")
    assert int8["ratio"] < 1 and not int8["significant"]
    assert table.loc["fp32", "cell_valid"]


def test_an_invalid_baseline_makes_no_ratio_significant():
    data_ = frame(rows("fp32", [1.0, 2.0, 1.0]), rows("int8", [0.1, 0.1, 0.1]))
    alone = compare(data_, "variant")
    assert list(alone["variant"]) == ["int8"] and alone.attrs[LEFT_OUT] == 1
    kept = compare(data_, "variant", include_invalid=True).set_index("variant")
    assert kept.loc["int8", "ratio_high"] < 1 and not kept.loc["int8", "significant"]


def stored(tmp_path, groups):
    store = RunStore.create(tmp_path, {"status": "complete"})
    store.append([build_record(r, {"run_id": store.run_id}) for g in groups for r in g])
    return str(store.path)


def test_the_compare_command_says_what_it_left_out_and_marks_what_it_kept(tmp_path, capsys):
    path = stored(tmp_path, [rows("fp32", [1.0, 1.02, 0.98]), rows("int8", [0.25, 0.5, 0.25])])
    assert main(["compare", path]) == 0
    out = capsys.readouterr().out
    assert "int8" not in out.split("invalid cell")[0]
    assert "1 invalid cell(s) left out (see greenbench check); --include-invalid keeps them" in out
    assert main(["compare", path, "--include-invalid"]) == 0
    out = capsys.readouterr().out
    assert f"INVALID decode (token) int8: {NOISY}" in " ".join(out.split())
    assert "left out" not in out


def test_compare_help_says_invalid_cells_are_left_out(capsys):
    with contextlib.suppress(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "judges invalid are left out unless --include-invalid" in text


def table_lines(table):
    console = Console(record=True, width=250)
    console.print(table)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_the_run_tables_mark_an_invalid_cell_with_its_first_reason():
    (table,) = results_tables(cells())
    lines = table_lines(table)
    int8 = next(i for i, line in enumerate(lines) if " int8 " in line)
    fp32 = next(i for i, line in enumerate(lines) if " fp32 " in line)
    assert "INVALID" in lines[int8 + 1] and "INVALID" not in lines[fp32 + 1]
    assert f"INVALID w/int8/cpu: {NOISY}" in lines
    assert sum("INVALID" in line for line in lines) == 2


def test_short_windows_stay_apart_from_invalid_ones_in_the_tables():
    short = rows("fp32", [1.0, 1.0])
    for row in short:
        row["reliable"] = False
    (table,) = results_tables(frame(short))
    text = "\n".join(table_lines(table))
    assert "INVALID w/fp32/cpu: 2 window(s) shorter than 5 s" in text
    assert "invalid)" not in text  # its windows are valid: `n` reads 2, not 0 (+2 invalid)


def report_frame():
    """Synthetic cells, with the cnn int8-dynamic cell made invalid (a window of 0 J net)."""
    records = synthetic_frame({"cnn": ["forward"], "slm": ["decode"]}, ["fp32", "int8-dynamic"])
    bad = (records["workload"] == "cnn") & (records["variant"] == "int8-dynamic")
    first = records.index[bad][0]
    records.loc[first, ["valid", "validity"]] = [False, "net energy 0 J <= 0: <b>idle</b>"]
    return records


def test_report_data_marks_the_invalid_cell_and_escapes_its_reasons():
    summary = data.cell_summary(data.escaped(report_frame()))
    marked = summary.set_index(["workload", "variant"])["validity"]
    reason = "repetition 1: net energy 0 J &lt;= 0: &lt;b&gt;idle&lt;/b&gt;"
    assert reason in marked["cnn", "int8-dynamic"]
    assert marked["slm", "int8-dynamic"] == "" and marked["cnn", "fp32"] == ""


def test_report_ratio_views_leave_the_invalid_cell_out_unless_asked():
    safe = data.escaped(report_frame())
    summary = data.cell_summary(safe)
    kept, left_out = data.valid_cells(safe)
    assert left_out == 1
    trade = data.tradeoffs(data.cell_summary(kept))
    assert list(trade["workload"]) == ["slm"]
    assert list(data.tradeoffs(summary)["workload"]) == ["slm"]  # the invalid row is skipped too
    kept_too = data.tradeoffs(summary, include_invalid=True).set_index("workload")
    assert not kept_too.loc["cnn", "cell_valid"] and kept_too.loc["slm", "cell_valid"]


def test_report_comparison_never_calls_an_invalid_cell_a_regression():
    before = synthetic_frame({"cnn": ["forward"], "slm": ["decode"]}, ["fp32", "int8-dynamic"])
    now = report_frame()
    now["energy_per_unit_j"] *= 1.5  # every cell got worse
    ratios = data.comparison(now, before)
    assert "cnn / forward / int8-dynamic / cpu" not in set(ratios["label"])
    assert ratios["regression"].all()
    kept = data.comparison(now, before, include_invalid=True).set_index("label")
    invalid = kept.loc["cnn / forward / int8-dynamic / cpu"]
    assert not invalid["cell_valid"] and not invalid["regression"] and not invalid["improvement"]
    fig = figures.comparison(kept.reset_index(), "before")
    faded = next(t for t in fig.data if t.name.startswith("INVALID"))
    assert list(faded.y) == ["cnn / forward / int8-dynamic / cpu"]


def test_report_charts_draw_invalid_cells_apart_with_the_reasons_in_the_hover():
    summary = data.cell_summary(data.escaped(report_frame()))
    fig = figures.energy_per_unit(summary)
    faded = [t for t in fig.data if t.name.endswith("(INVALID)")]
    assert [t.name for t in faded] == ["int8-dynamic (INVALID)"]
    assert faded[0].marker.opacity < 1 and faded[0].showlegend is False
    assert "INVALID (greenbench check)" in faded[0].customdata[0][3]
    assert list(faded[0].customdata[0][:3]) == ["cnn", "int8-dynamic", "cpu"]
    frontier = figures.efficiency_frontier(summary)
    fronts = [t for t in frontier.data if t.name == "Pareto frontier (per workload)"]
    on_front = {tuple(c[:2]) for t in fronts for c in t.customdata}
    assert ("cnn", "int8-dynamic") not in on_front and ("cnn", "fp32") in on_front


def test_the_page_marks_invalid_cells_and_says_what_the_ratio_views_left_out():
    page = build_report(report_frame(), ["synthetic"])
    assert page.count('<td class="invalid"') == 1
    assert "1 invalid cell(s) (greenbench check) left out of this view" in page
    assert "left out of the ratio views (--include-invalid keeps them)" in page
    kept = build_report(report_frame(), ["synthetic"], include_invalid=True)
    assert "left out of this view" not in kept and "kept in the ratio views" in kept
    assert "<b>idle</b>" not in page  # reasons are escaped


def test_the_report_command_takes_include_invalid(tmp_path, capsys):
    path = stored(tmp_path, [rows("fp32", [1.0, 1.02, 0.98]), rows("int8", [0.25, 0.5, 0.25])])
    out = tmp_path / "r.html"
    assert main(["report", path, "-o", str(out), "--include-invalid"]) == 0
    assert "kept in the ratio views" in out.read_text()


def energy_info(mean, std, valid=True, reasons=()):
    return {
        "energy_j_per_call": mean, "energy_j_per_call_std": std, "energy_n": 5,
        "energy_j_per_call_ci95": std, "energy_estimated": False, "energy_methods": "cpu:rapl",
        "energy_gco2e_per_call": 0.0, "energy_zone": "GB", "energy_valid": valid,
        "energy_validity": list(reasons),
    }  # fmt: skip


def test_the_gate_never_judges_an_invalid_benchmark_and_says_so():
    before = {"a": energy_info(1.0, 0.05), "b": energy_info(1.0, 0.05)}
    now = {
        "a": energy_info(2.0, 0.1, valid=False, reasons=["J per unit varies 40%"]),
        "b": energy_info(0.5, 0.01),
    }
    assert find_regressions(now, before, pct=20) == []
    worse = {"b": energy_info(2.0, 0.1)}
    invalid_before = {"b": energy_info(1.0, 0.05, valid=False, reasons=["1 valid window(s)"])}
    assert find_regressions(worse, invalid_before, pct=20) == []
    assert [r.name for r in find_regressions(worse, before, pct=20)] == ["b"]
    lines = dict(summary_lines(now, before, []))
    (a_line,) = [line for line in lines if line.startswith("a:")]
    assert "INVALID, not compared: J per unit varies 40%" in a_line and "x2" not in a_line
    (b_line,) = [line for line in summary_lines(worse, invalid_before, [])]
    assert "not compared: the compared run's figure is INVALID (1 valid window(s))" in b_line[0]


def calls(clock, meter, seconds_per_call):
    """Three windows of calls drawing 30 W over a 12 W idle, at least 1 s each."""
    meter.power = {"cpu": 10.0, "ram": 2.0}
    settings = ProtocolSettings(repetitions=3, min_window_s=1.0, min_calls=2, idle_s=1.0)

    def step():
        meter.power = {"cpu": 28.0, "ram": 2.0}
        clock.sleep(seconds_per_call)
        meter.power = {"cpu": 10.0, "ram": 2.0}  # idle again between calls and after them

    phases = [Phase("call", "call", 1, step)]
    result = run_protocol(phases, meter, settings, clock=clock, sleep=clock.sleep)
    return json.loads(json.dumps(summarize_calls(result, "GB").extra_info()))


def test_a_benchmark_carries_check_s_verdict_on_its_windows(clock, meter):
    long = calls(clock, meter, 3.0)
    assert long["energy_valid"] is True and long["energy_validity"] == []
    short = calls(clock, meter, 0.25)
    assert short["energy_valid"] is False
    assert short["energy_validity"] == [
        "3 window(s) shorter than 5 s, the meter's resolution: raise --min-window"
    ]


def test_records_from_before_the_verdict_are_judged_as_before():
    plain = {k: v for k, v in energy_info(2.0, 0.1).items() if "valid" not in k}
    old = {k: v for k, v in energy_info(1.0, 0.05).items() if "valid" not in k}
    assert [r.name for r in find_regressions({"t": plain}, {"t": old}, pct=20)] == ["t"]


def test_a_frame_without_invalid_cells_is_kept_whole():
    whole = frame(rows("fp32", [1.0, 1.01]))
    kept, left_out = data.valid_cells(whole)
    assert left_out == 0 and len(kept) == len(whole)
    assert isinstance(kept, pd.DataFrame)


@pytest.mark.skipif(not CHROMIUM, reason="needs selenium and Debian's chromium and chromium-driver")
@pytest.mark.browser
def test_the_page_with_an_invalid_cell_draws_and_filters_in_chromium(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    page = tmp_path / "report.html"
    page.write_text(build_report(report_frame(), ["synthetic"]))
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1300,2400",
                f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.as_uri())
        assert "INVALID" in driver.execute_script(
            "return document.querySelector('td.invalid').innerText"
        )
        Select(
            driver.find_element("css selector", 'select[data-filter="workload"]')
        ).select_by_value("cnn")
        bars = driver.execute_script(
            "var d = document.querySelector('div.plot').data;"
            "return d.filter(t => t.y && t.y.length).map(t => [t.name, t.y.length])"
        )
        assert sorted(bars) == [["fp32", 1], ["int8-dynamic (INVALID)", 1]]
        assert driver.save_screenshot(str(tmp_path / "report.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()


def test_an_invalid_window_does_not_pull_a_benchmarks_mean(clock, meter):
    meter.power = {"cpu": 10.0, "ram": 2.0}
    settings = ProtocolSettings(repetitions=3, min_window_s=5.0, min_calls=2, idle_s=1.0)
    call = iter(range(10_000))

    def step():
        # calls 0-2 warm up, 3-4 are window 1, 5-6 window 2, 7-8 window 3: window 2's calls draw
        # nothing above idle, so its net energy is 0 and it is invalid
        meter.power = {"cpu": 10.0 if next(call) in (5, 6) else 28.0, "ram": 2.0}
        clock.sleep(2.5)
        meter.power = {"cpu": 10.0, "ram": 2.0}

    result = run_protocol(
        [Phase("call", "call", 1, step)], meter, settings, clock=clock, sleep=clock.sleep
    )
    energy = summarize_calls(result, "GB")
    assert [w["net_energy_j"] > 0 for w in energy.windows].count(False) >= 1
    assert energy.per_call.mean == pytest.approx(18.0 * 2.5)
