"""greenbench history: trends across runs, environment markers, and the newest run's verdict.

The histories are synthetic nightly runs in the real schema (report.sample.write_nightly_runs
writes run.json and records.jsonl as the store does), seeded: a slow wander of +-3 % plus
between-run noise of sd 2 % (a month of such nights spans 8-10 %, as measured between runs on
one VM), far beyond each run's own CI.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from greenbench import cli
from greenbench.drift import BASELINE_RUNS, MIN_RUNS, judge, noise_floor
from greenbench.exit_codes import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from greenbench.formatting import fmt_joules
from greenbench.history import (
    build_history,
    load_history,
    recent_changes,
    run_environments,
    run_summaries,
)
from greenbench.report import page as report_page
from greenbench.report import trends
from greenbench.report.page import build_report, trends_section
from greenbench.report.sample import (
    nightly_levels,
    sample_environment,
    synthetic_frame,
    write_nightly_runs,
)
from greenbench.report.trend_bins import within_budget
from greenbench.report.trends import trends_explanation, trends_figures
from greenbench.results import load_results
from greenbench.stats import SUMMARY_KEYS, summarize_frame

NIGHTS = 30
UPGRADE = 15  # the night torch was upgraded
STEP = ("tiny-lm", "prefill", "fp32")  # +10 % on the last night
DRIFT = ("tiny-lm", "decode", "fp32")  # drift only


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    environments = [
        sample_environment(torch="2.5.1" if night < UPGRADE else "2.6.0") for night in range(NIGHTS)
    ]
    levels = {
        STEP: nightly_levels(NIGHTS, seed=1, noise=0.02, step=0.10),
        DRIFT: nightly_levels(NIGHTS, seed=2, noise=0.02),
    }
    folders = write_nightly_runs(root, levels, environments=environments)
    return root, folders


@pytest.fixture(scope="module")
def history(nightly):
    return load_history([nightly[0]])


def verdict_of(history, cell):
    workload, phase, variant = cell
    v = history.verdicts
    return v[(v["workload"] == workload) & (v["phase"] == phase) & (v["variant"] == variant)].iloc[
        0
    ]


def test_a_planted_10_percent_step_in_the_newest_run_is_flagged_and_drift_is_not(nightly, history):
    assert history.runs == NIGHTS
    step, drift = verdict_of(history, STEP), verdict_of(history, DRIFT)
    assert step["status"] == "regression"
    assert step["change"] == pytest.approx(0.10, abs=0.04)
    assert step["run_id"] == nightly[1][-1].name
    assert drift["status"] == "steady"
    # the floor is the between-run spread (noise sd 2 %, with the wander's share)
    assert 0.01 < drift["floor"] < 0.04


DRIFT_SEEDS = range(100, 108)


def tight_ci(levels):
    """Each run's own CI (0.5 %) far inside the between-run spread, as measured."""
    return [0.005 * x for x in levels]


@pytest.mark.parametrize("seed", DRIFT_SEEDS)
def test_drift_alone_is_not_flagged_even_at_pct_0_and_a_step_beyond_the_floor_is(seed):
    drift = nightly_levels(40, seed=seed, noise=0.02)
    stepped = nightly_levels(40, seed=seed, noise=0.01, step=0.10)
    assert not judge(drift, tight_ci(drift), pct=0).flagged
    assert judge(stepped, tight_ci(stepped)).status == "regression"


def test_the_within_run_ci_alone_would_call_that_drift_a_regression():
    drifts = [nightly_levels(40, seed=seed, noise=0.02) for seed in DRIFT_SEEDS]
    flagged = sum(judge(d, tight_ci(d), pct=0, k=0).flagged for d in drifts)
    assert flagged >= len(drifts) // 2  # what the noise floor spares the drift-only runs


def test_a_step_down_is_an_improvement_and_a_short_history_is_not_judged():
    levels = nightly_levels(30, seed=3, noise=0.01, step=-0.2)
    assert judge(levels, [0.0] * 30).status == "improvement"
    short = judge(levels[-MIN_RUNS + 1 :], [0.0] * (MIN_RUNS - 1))
    assert short.status == "short" and not short.flagged


def test_a_wild_night_in_the_history_does_not_raise_the_noise_floor():
    levels = nightly_levels(40, seed=4, noise=0.02, wander=0.0)
    wild = [*levels[:20], levels[20] * 1.8, *levels[21:]]
    assert noise_floor(wild) == pytest.approx(noise_floor(levels), rel=0.25)
    assert math.isnan(noise_floor(levels[:6]))


def test_an_environment_change_is_a_marker_and_the_flag_a_ringed_point(nightly, history):
    changes = history.changes
    assert list(changes["run_id"]) == [nightly[1][UPGRADE].name]
    assert changes["what"].iloc[0] == "torch 2.5.1 -> 2.6.0"
    *panels, carbon = trends_figures(history)
    titles = [p.layout["title"]["text"] for p in panels]
    assert titles == [
        f"tiny-lm · {phase}: J per token, net of idle" for phase in ("prefill", "decode")
    ]
    for panel in panels:  # the node's change marked in each of its cells' panels
        assert [s["type"] for s in panel.layout["shapes"]] == ["line"]
        (marker,) = panel.traces("environment change")
        assert marker["text"] == ["nightly-a: torch 2.5.1 -&gt; 2.6.0"]
    (ring,) = panels[0].traces("newest run: regression")  # prefill's step, not decode's drift
    assert ring["y"] == [pytest.approx(verdict_of(history, STEP)["j_per_unit"], rel=1e-5)]
    assert panels[1].traces("newest run: regression") == []
    (bars,) = carbon.data
    assert len(bars["x"]) == NIGHTS and bars["type"] == "bar"
    assert bars["name"] == "carbon per run"
    ranges = {tuple(f.layout["xaxis"]["range"]) for f in [*panels, carbon]}
    assert len(ranges) == 1  # every panel over the same dates
    first, last = (pd.Timestamp(t, tz="UTC") for t in ranges.pop())
    starts = history.points["started_at"]
    assert first < starts.min() and starts.max() < last


def test_fail_on_regression_exits_1_and_writes_the_markdown_summary(nightly, tmp_path, capsys):
    target = tmp_path / "summary.md"
    argv = ["history", str(nightly[0]), "--markdown", str(target)]
    assert cli.main([*argv, "--fail-on-regression", "5"]) == EXIT_REGRESSION
    assert "REGRESSION" in capsys.readouterr().out
    text = target.read_text()
    newest = nightly[1][-1].name
    regressions, counts = text.index("## Regressions"), text.index("## Counts")
    assert regressions < counts and "## Improvements" not in text
    line = text[regressions:counts]
    assert "tiny-lm / prefill / fp32 / cpu" in line and "`nightly-a`" in line
    assert f"`{newest}`" in line and "2026-11-30" in line
    assert "decode" not in line
    assert "2 cell(s) on 1 node(s), 30 run(s)" in text and "1 steady" in text


def test_fail_on_regression_passes_below_its_percentage_and_refuses_a_negative(nightly, capsys):
    assert cli.main(["history", str(nightly[0]), "--fail-on-regression", "30"]) == EXIT_OK
    assert cli.main(["history", str(nightly[0]), "--fail-on-regression", "-1"]) == EXIT_USAGE
    assert "give a percentage >= 0" in capsys.readouterr().err


def test_too_few_runs_say_so_and_flag_nothing(nightly, capsys):
    few = [str(p) for p in nightly[1][-5:]]
    assert cli.main(["history", *few, "--fail-on-regression", "1"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "not enough history" in out and "REGRESSION" not in out
    assert cli.main(["history", *few, "--markdown", "-"]) == EXIT_OK
    summary = capsys.readouterr().out  # the summary alone: a CI step pipes it on
    assert summary.startswith("# greenbench history: 0 regression(s)")
    assert "2 with too little history (fewer than 15 runs)" in summary
    assert "not enough history" not in summary


def test_unknown_workload_is_one_line_naming_the_known_ones(nightly, capsys):
    assert cli.main(["history", str(nightly[1][0]), "--workload", "nope"]) == EXIT_USAGE
    assert "give one of: tiny-lm" in capsys.readouterr().err


def test_per_run_points_match_summarize_frame_idle_error_included():
    frame = synthetic_frame({"lm": ["prefill", "decode"]}, ["fp32", "bf16"], runs=3)
    frame["idle_power_se_w"] = [0.2 + 0.01 * i for i in range(len(frame))]
    frame["idle_samples"] = 12
    frame.loc[4, "valid"] = False
    keys = [*SUMMARY_KEYS, "run_id"]
    joined = summarize_frame(frame, keys).merge(run_summaries(frame, keys), on=keys)
    assert len(joined) == 12
    assert (joined["n_x"] == joined["n_y"]).all()
    for column in ("j_per_unit", "j_per_unit_ci95"):
        assert joined[f"{column}_x"].to_numpy() == pytest.approx(joined[f"{column}_y"].to_numpy())


def test_the_report_shows_trends_for_several_runs_only(nightly):
    several = trends_section(load_results(nightly[1][-3:]), run_environments(nightly[1]))
    assert several is not None and several.anchor == "trends"
    assert trends_section(load_results(nightly[1][0]), None) is None


def _recent_changes_one_series(points, changes, verdict):
    """The per-series rule recent_changes implements for every series at once (reference)."""
    series = points
    for key in SUMMARY_KEYS:
        series = series[series[key] == verdict[key]]
    window = set(series["run_id"].iloc[-BASELINE_RUNS:])
    mine = changes[(changes["node"] == verdict["node"]) & changes["run_id"].isin(window)]
    return "; ".join(f"{c['what']} (run {c['run_id']})" for _, c in mine.iterrows())


def test_recent_changes_name_each_series_window_changes_on_its_own_node_only():
    runs = [f"r{i:02d}" for i in range(14)]
    rows = []
    for node, variants in (("a", ["fp32", "bf16"]), ("b", ["fp32"])):
        for variant in variants:
            for i, run in enumerate(runs if variant == "fp32" else runs[:8]):
                rows.append(
                    {"workload": "lm", "phase": "decode", "variant": variant, "device": "cpu",
                     "node": node, "params": "", "power_limit_w": "", "run_id": f"{node}{run}",
                     "started_at": i}
                )  # fmt: skip
    points = pd.DataFrame(rows)
    changes = pd.DataFrame(
        [
            {"node": "a", "run_id": "ar01", "started_at": 1, "what": "torch 1 -> 2"},  # too old
            {"node": "a", "run_id": "ar06", "started_at": 6, "what": "driver 1 -> 2"},
            {"node": "a", "run_id": "ar13", "started_at": 13, "what": "zone GB -> DE"},
            {"node": "b", "run_id": "br12", "started_at": 12, "what": "cuda 12 -> 13"},
        ]
    )
    verdicts = points.drop_duplicates(SUMMARY_KEYS)[SUMMARY_KEYS].reset_index(drop=True)
    found = recent_changes(points, changes, verdicts)
    expected = [_recent_changes_one_series(points, changes, v) for _, v in verdicts.iterrows()]
    assert found == expected
    assert found == [
        "driver 1 -> 2 (run ar06); zone GB -> DE (run ar13)",  # a/fp32: runs 04-13
        "torch 1 -> 2 (run ar01); driver 1 -> 2 (run ar06)",  # a/bf16 ran 00-07 only
        "cuda 12 -> 13 (run br12)",  # node b sees none of node a's changes
    ]
    assert recent_changes(points, changes.iloc[:0], verdicts) == ["", "", ""]


def test_past_the_point_budget_older_runs_are_binned_by_week_and_the_newest_stays_a_run(history):
    """30 nights of 2 series is 60 points; under a budget of 20 each series keeps its newest
    run with its CI and shows the runs before it as weekly medians with their range."""
    shown = within_budget(history.points, budget=20)
    assert shown.period == "week" and len(shown.points) <= 20
    points = history.points
    step = points[(points["phase"] == STEP[1]) & (points["variant"] == STEP[2])]
    mine = shown.points[shown.points["phase"] == STEP[1]]
    newest = mine.iloc[-1]
    assert newest["run_id"] == step["run_id"].iloc[-1] and newest["runs"] == 1
    assert newest["up"] == newest["down"] == pytest.approx(step["j_per_unit_ci95"].iloc[-1])
    older = step.iloc[:-1]
    weeks = older["started_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("W")
    for (_, week), point in zip(older.groupby(weeks), mine.iloc[:-1].itertuples(), strict=True):
        assert point.runs == len(week)
        if len(week) == 1:  # that run, with its CI
            assert point.run_id == week["run_id"].iloc[0]
            assert point.up == pytest.approx(week["j_per_unit_ci95"].iloc[0])
            continue
        assert point.y == pytest.approx(week["j_per_unit"].median())
        assert point.y - point.down == pytest.approx(week["j_per_unit"].min())
        assert point.y + point.up == pytest.approx(week["j_per_unit"].max())
    figure = trends_figures(history, shown)[0]
    assert figure.layout["title"]["text"].startswith("tiny-lm · prefill")
    (line,) = [t for t in figure.data if t.get("meta")]  # its one line
    assert len(line["x"]) == len(mine)
    several = [i for i, p in enumerate(mine.itertuples()) if p.runs > 1]
    assert several and all("median" in line["text"][i] for i in several)
    ci, run = fmt_joules(newest["up"]), newest["run_id"]
    assert line["text"][-1] == f"± {ci} · run {run} · 3 window(s)<br>node nightly-a"
    assert line["error_y"]["arrayminus"] != line["error_y"]["array"]  # a bin's range
    assert "binned by week" in trends_explanation(history, shown)
    assert within_budget(history.points).period is None  # 60 points: every run drawn
    assert "binned" not in trends_explanation(history, within_budget(history.points))


def test_several_machines_are_stretches_of_one_line_and_the_hover_names_each():
    """Two nodes' runs of a variant are one trace per panel (a gap between the nodes), not a
    trace per node: a year of ten machines drew 100 traces a panel."""
    one = synthetic_frame({"slm": ["decode"]}, ["fp32", "bf16"], runs=4)
    other = one.assign(node="b&c", run_id=one["run_id"] + "-b")
    history = build_history(
        pd.concat([one.assign(node="a"), other], ignore_index=True), pd.DataFrame()
    )
    panel, _carbon = trends_figures(history)
    lines = [t for t in panel.data if t.get("meta")]
    assert sorted(t["name"] for t in lines) == ["bf16", "fp32"]
    for line in lines:
        assert line["x"][4] is None and line["y"][4] is None  # node a's 4 runs, a gap, node b's
        assert len(line["x"]) == 9 and None not in line["x"][:4] + line["x"][5:]
        assert line["error_y"]["array"][4] is None
        nodes = [text.rsplit("<br>node ", 1)[1] for text in line["text"] if text is not None]
        assert nodes == ["a"] * 4 + ["b&amp;c"] * 4  # escaped: node is no label column


def test_the_carbon_per_run_is_bars_until_a_node_has_too_many_runs_for_them():
    frame = synthetic_frame({"slm": ["decode"]}, ["fp32"], runs=4)
    two = pd.concat([frame.assign(node="<a>"), frame.assign(node="b")], ignore_index=True)
    history = build_history(two, pd.DataFrame())
    carbon = trends_figures(history)[-1]
    assert [(t["type"], t["name"]) for t in carbon.data] == [
        ("bar", "carbon · &lt;a&gt;"),  # escaped: node is no label column
        ("bar", "carbon · b"),
    ]
    assert carbon.layout["barmode"] == "group"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trends, "BAR_RUNS", 3)
        lines = trends_figures(history)[-1]
    assert {t["type"] for t in lines.data} == {"scatter"} and "barmode" not in lines.layout
    assert [len(t["x"]) for t in lines.data] == [4, 4]


# the Trends view's plots (each a panel; the carbon per run last), by their divs' ids
TREND_PLOTS = "Array.from(document.querySelectorAll('div.plot[data-view=trends]'))"
LINES = (
    f"return {TREND_PLOTS}.map(d => d.data ? d.data.filter(t => t.meta && t.meta.filter)"
    ".map(t => [t.name, t.x.length, t.visible === false ? 'hidden' : 'shown']) : null)"
)


def check_trends_in_browser(driver, page) -> None:
    """In a headless Chromium driver already started (tests/test_report.py's browser test
    calls this): the Trends view draws a plot per panel with a line per variant, and the
    variant filter hides the other variants' lines whole."""
    from selenium.webdriver.support.ui import Select

    frame = synthetic_frame({"slm": ["prefill", "decode"]}, ["fp32", "bf16"], runs=3)
    page.write_text(build_report(frame, ["synthetic"]))
    driver.get(page.as_uri())
    prefill, decode, carbon = driver.execute_script(LINES)
    assert sorted(prefill) == sorted(decode) == [["bf16", 3, "shown"], ["fp32", 3, "shown"]]
    assert carbon == []  # the carbon per run: no cell's line
    Select(driver.find_element("css selector", 'select[data-filter="variant"]')).select_by_value(
        "bf16"
    )
    for panel in driver.execute_script(LINES)[:2]:
        assert {(name, shown) for name, _, shown in panel} == {
            ("fp32", "hidden"),
            ("bf16", "shown"),
        }


def check_lazy_trends_in_browser(driver, page, monkeypatch) -> None:
    """With every figure past LAZY_POINTS (lowered here), the Trends panels far down the page
    are drawn only as each is scrolled near, and the filter chosen before then applies to
    each; printing draws every plot still waiting."""
    from selenium.webdriver.support.ui import Select, WebDriverWait

    monkeypatch.setattr(report_page, "LAZY_POINTS", 10)
    frame = synthetic_frame({"slm": ["prefill", "decode"]}, ["fp32", "bf16"], runs=3)
    page.write_text(build_report(frame, ["synthetic"]))
    assert "greenbenchLater(" in page.read_text()
    driver.get(page.as_uri())
    assert driver.execute_script(LINES) == [None, None, None]  # below the first screens
    Select(driver.find_element("css selector", 'select[data-filter="variant"]')).select_by_value(
        "bf16"
    )
    driver.execute_script(f"{TREND_PLOTS}[0].scrollIntoView()")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(LINES)[0])
    filtered = [["bf16", 3, "shown"], ["fp32", 3, "hidden"]]
    WebDriverWait(driver, 30).until(lambda d: sorted(d.execute_script(LINES)[0]) == filtered)
    driver.execute_script(f"{TREND_PLOTS}[1].scrollIntoView()")
    WebDriverWait(driver, 30).until(lambda d: sorted(d.execute_script(LINES)[1] or []) == filtered)
    undrawn = "return Array.from(document.querySelectorAll('div.plot')).filter(d => !d.data).length"
    driver.get(page.as_uri())  # afresh, at the top
    assert driver.execute_script(undrawn) >= 3  # the Trends view's, at least, wait
    driver.execute_script("window.dispatchEvent(new Event('beforeprint'))")  # as printing does
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(undrawn) == 0)
