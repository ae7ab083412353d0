"""greenbench history: trends across runs, environment markers, and the newest run's verdict.

The histories are synthetic nightly runs in the real schema (report.sample.write_nightly_runs
writes run.json and records.jsonl as the store does), seeded: a slow wander of +-3 % plus
between-run noise of sd 2 % (a month of such nights spans 8-10 %, as measured between runs on
one VM), far beyond each run's own CI.
"""

from __future__ import annotations

import math

import pytest

from greenbench import cli
from greenbench.drift import MIN_RUNS, judge, noise_floor
from greenbench.exit_codes import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from greenbench.history import load_history, run_environments, run_summaries
from greenbench.report.page import trends_section
from greenbench.report.sample import (
    nightly_levels,
    sample_environment,
    synthetic_frame,
    write_nightly_runs,
)
from greenbench.report.trends import trends_figure
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
    figure = trends_figure(history)
    assert any(s.type == "line" for s in figure.layout.shapes)
    markers = [t for t in figure.data if t.name == "environment change"]
    assert markers and "torch 2.5.1 -&gt; 2.6.0" in markers[0].text[0]
    (ring,) = [t for t in figure.data if t.name == "newest run: regression"]
    assert list(ring.y) == [verdict_of(history, STEP)["j_per_unit"]]


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
