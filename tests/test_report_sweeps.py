"""The report's sweep view, energy-vs-latency frontier and latency target (issue 17, item 3)."""

import json
import math

import pandas as pd
import pytest

from greenbench.check import with_verdicts
from greenbench.cli import main
from greenbench.report import data, figures, sweeps
from greenbench.report.latency import meeting, parse_latency_target
from greenbench.report.page import build_report
from greenbench.report.sample import sweep_frame, synthetic_frame
from greenbench.store import RunStore


def cells(*rows: dict) -> pd.DataFrame:
    """A hand-made cell summary: what data.cell_summary gives, with the defaults filled in."""
    base = {
        "workload": "slm",
        "phase": "decode",
        "variant": "fp32",
        "device": "cpu",
        "unit": "token",
        "j_per_unit": 1.0,
        "j_per_unit_ci95": 0.1,
        "throughput": 100.0,
        "call_p50_s": 0.01,
        "call_p90_s": 0.02,
        "call_p99_s": 0.03,
        "cell_valid": True,
        "validity": "",
        "sweep": {},
    }
    full = [{**base, **r} for r in rows]
    for r in full:
        r.setdefault("label", f"{r['variant']} {data.sweep_text(r['sweep'])}".strip())
    return pd.DataFrame(full)


@pytest.fixture(scope="module")
def sweep_summary():
    frame = sweep_frame({"slm": ["prefill", "decode"]}, ["fp32", "bf16", "int8-dynamic"])
    return frame, data.cell_summary(with_verdicts(data.escaped(frame)))


def test_meeting_keeps_cells_within_the_target_and_counts_the_unknown():
    summary = cells(
        {"label": "a", "call_p90_s": 0.02},
        {"label": "b", "call_p90_s": 0.05},
        {"label": "c", "call_p90_s": 0.06},
        {"label": "d", "call_p90_s": math.nan},
    )
    cut = meeting(summary, parse_latency_target("p90<=50ms"))
    assert list(cut.kept["label"]) == ["a", "b"]
    assert cut.header() == (
        "cells meeting p90<=50ms: 2 of 4 (1 without call latencies, left out: d)"
    )
    strict = meeting(summary, parse_latency_target("p90<50ms"))
    assert list(strict.kept["label"]) == ["a"]
    assert list(meeting(summary, parse_latency_target("p50<=5ms")).kept["label"]) == []


def test_cell_summary_carries_the_swept_values_and_the_window_latencies(sweep_summary):
    frame, summary = sweep_summary
    assert len(summary) == 2 * 3 * 4  # phases x variants x batches: one row per cell
    first = summary.iloc[0]
    assert first["sweep"] == {"batch": 1}  # new_tokens and prompt_tokens do not vary
    assert first["label"] == "slm / fp32 / cpu / batch=1" and first["case"] == "slm batch=1"
    # batches in order of size, not of text (1, 4, 16, 64)
    fp32 = summary[(summary["phase"] == "prefill") & (summary["variant"] == "fp32")]
    assert [s["batch"] for s in fp32["sweep"]] == [1, 4, 16, 64]
    windows = frame[(frame["phase"] == "prefill") & (frame["variant"] == "fp32")]
    batch_16 = windows[windows["params"].map(lambda p: json.loads(p)["batch"] == 16)]
    assert fp32["call_p90_s"].iloc[2] == pytest.approx(batch_16["call_p90_s"].mean())


def test_a_parameter_is_swept_only_where_it_varies_within_workload_phase_and_device():
    summary = cells(
        {"params": json.dumps({"batch": 1, "prompt_tokens": 128})},
        {"params": json.dumps({"batch": 4, "prompt_tokens": 128})},
        {"device": "cuda", "params": json.dumps({"batch": 8})},  # a device of its own
        {"workload": "cnn", "params": json.dumps({"batch": 2})},
        {"workload": "cnn", "params": data.escape(json.dumps({"batch": 2}))},  # escaped JSON
    )
    assert list(data.swept_values(summary)) == [{"batch": 1}, {"batch": 4}, {}, {}, {}]


def test_sweep_panels_leave_out_invalid_cells_and_cells_without_a_figure_by_name():
    summary = cells(
        {"sweep": {"batch": 1}},
        {"sweep": {"batch": 4}, "cell_valid": False, "validity": "unstable"},
        {"sweep": {"batch": 16}, "j_per_unit": math.nan},
        {"sweep": {"batch": 64}},
        {"phase": "prefill"},  # nothing swept: no panel
    )
    (panel,) = sweeps.sweep_panels(summary)
    assert panel.key == "batch" and panel.title == "slm decode: J per token by batch"
    assert list(panel.rows["label"]) == ["fp32 batch=1", "fp32 batch=64"]
    assert panel.left_out == [
        "fp32 batch=4: invalid (greenbench check)",
        "fp32 batch=16: no net figure",
    ]
    (kept,) = sweeps.sweep_panels(summary, include_invalid=True)
    assert list(kept.rows["label"]) == ["fp32 batch=1", "fp32 batch=4", "fp32 batch=64"]


def test_the_latency_front_keeps_the_lowest_energy_for_each_latency():
    points = cells(
        {"label": "slow-cheap", "call_p90_s": 0.30, "j_per_unit": 0.2},
        {"label": "fast-dear", "call_p90_s": 0.01, "j_per_unit": 1.0},
        {"label": "beaten", "call_p90_s": 0.05, "j_per_unit": 1.1},
        {"label": "middle", "call_p90_s": 0.10, "j_per_unit": 0.5},
        {"label": "tie-dearer", "call_p90_s": 0.10, "j_per_unit": 0.6},
    )
    front = sweeps.latency_front(points)
    assert list(front["label"]) == ["fast-dear", "middle", "slow-cheap"]


def test_latency_panels_name_the_cells_without_a_latency():
    summary = cells({"label": "timed"}, {"label": "untimed", "call_p90_s": math.nan})
    (panel,) = sweeps.latency_panels(summary)
    assert list(panel.rows["label"]) == ["timed"]
    assert panel.left_out == ["untimed: no net figure or p90 latency"]


def test_sweep_view_draws_a_line_per_variant_on_a_log_batch_axis(sweep_summary):
    _, summary = sweep_summary
    fig = sweeps.sweep_view(summary)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["slm prefill: J per token by batch", "slm decode: J per token by batch"]
    prefill = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in prefill] == ["fp32", "bf16", "int8-dynamic"]
    assert list(prefill[0].x) == [1, 4, 16, 64]
    assert prefill[0].y[0] > prefill[0].y[-1]  # a larger batch costs less per token
    assert prefill[1].line.color == figures.variant_color("bf16")
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 4, 16, 64]
    label, ci, latency, throughput = prefill[0].customdata[0][4:]
    assert label == "slm / fp32 / cpu / batch=1" and " ± " in ci
    assert latency.endswith(" ms") and throughput.endswith(" tokens/s")
    assert [t.showlegend for t in fig.data].count(True) == 3  # a legend entry per variant


def test_sweep_view_error_bars_stop_at_zero():
    summary = cells(
        {"sweep": {"batch": 1}, "j_per_unit": 0.05, "j_per_unit_ci95": 0.2},
        {"sweep": {"batch": 2}, "j_per_unit": 0.5, "j_per_unit_ci95": 0.1},
    )
    (line,) = sweeps.sweep_view(summary).data
    assert list(line.error_y.arrayminus) == [0.05, 0.1] and list(line.error_y.array) == [0.2, 0.1]
    assert sweeps.sweep_view(summary).layout.xaxis.type == "linear"  # 1..2: not 8x


def test_a_sweep_of_text_values_or_on_two_devices_reads_apart():
    summary = cells(
        {"sweep": {"attn": "sdpa"}},
        {"sweep": {"attn": "eager"}},
        {"sweep": {"attn": "sdpa"}, "device": "cuda"},
        {"sweep": {"attn": "eager"}, "device": "cuda"},
    )
    fig = sweeps.sweep_view(summary)
    assert fig.layout.xaxis.type == "category"
    assert [(t.name, list(t.x)) for t in fig.data] == [
        ("fp32 · cpu", ["sdpa", "eager"]),
        ("fp32 · cuda", ["sdpa", "eager"]),
    ]


def test_swept_labels_from_user_data_are_escaped():
    xss = "<img src=x onerror=alert(1)>"
    frame = sweep_frame({"slm": ["decode"]}, ["fp32"], batches=(1, 4))
    frame["params"] = frame["params"].str.replace('"batch"', json.dumps(xss))
    page = build_report(frame, ["results"])
    assert xss not in page
    # in the figures' JSON, the label escaped once (then made safe inside <script>)
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;=4" in page


def test_latency_frontier_steps_through_the_cheapest_cells_and_labels_each_once(sweep_summary):
    _, summary = sweep_summary
    target = parse_latency_target("p90<=100ms")
    fig = sweeps.latency_frontier(summary, target=target)
    front = [t for t in fig.data if t.legendgroup == "frontier"]
    assert len(front) == 2 and front[0].line.shape == "hv"
    assert [c[1] for c in front[0].customdata] == ["int8-dynamic"] * 4  # cheapest and fastest
    assert list(front[0].x) == sorted(front[0].x)
    prefill = [t for t in fig.data if t.xaxis == "x" and t.legendgroup != "frontier"]
    labels = [line for t in prefill for text in t.text for line in text.split("<br>") if line]
    assert sorted(labels) == sorted(f"{v} batch={b}" for v in ("fp32", "bf16", "int8-dynamic")
                                    for b in (1, 4, 16, 64))  # fmt: skip
    assert fig.layout.xaxis.title.text == "p90 latency (ms)"
    assert [s.x0 for s in fig.layout.shapes] == [100.0, 100.0]  # the target, in each panel
    assert fig.layout.xaxis.type == "log"  # 17 to 400 ms
    names = [a for a in fig.layout.annotations if a.text == "target p90<=100ms"]
    assert [a.x for a in names] == [2.0, 2.0]  # an annotation on a log axis sits at the log


def test_views_without_a_sweep_or_latencies_say_why():
    summary = data.cell_summary(data.escaped(synthetic_frame({"cnn": ["forward"]}, ["fp32"])))
    missing = sweeps.sweep_view(summary)
    assert isinstance(missing, figures.Missing) and missing.reason == sweeps.NO_SWEEP
    untimed = summary.assign(call_p90_s=math.nan)
    reason = sweeps.latency_frontier(untimed).reason
    assert reason.startswith("no cell has both a net figure and a valid p90 latency")


def test_the_page_under_a_latency_target_draws_only_the_cells_meeting_it(sweep_summary):
    frame, _ = sweep_summary
    page = build_report(frame, ["results"], latency=parse_latency_target("p90<=100ms"))
    assert "cells meeting p90&lt;=100ms: 12 of 24" in page
    assert page.count("Only the cells meeting p90&lt;=100ms.") == 4  # energy to latency
    assert "batch=16" not in page.split('id="energy"')[1].split('id="tradeoff"')[0]
    none = build_report(frame, ["results"], latency=parse_latency_target("p90<=1ms"))
    assert none.count("Not shown: no cell meets p90&lt;=1ms (0 of 24).") == 4
    plain = build_report(synthetic_frame({"cnn": ["forward"]}, ["fp32"]), ["results"])
    assert f"Not shown: {sweeps.NO_SWEEP}." in plain and "cells meeting" not in plain


def test_report_command_takes_a_latency_target_and_refuses_a_bad_one(tmp_path, capsys):
    results = tmp_path / "results"
    store = RunStore.create(results, {"status": "complete"})
    rows = sweep_frame({"slm": ["decode"]}, ["fp32"], batches=(1, 16))
    store.append(rows.assign(run_id=store.run_id).to_dict("records"))
    out = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(out), "--latency", "p90<=50ms"]) == 0
    assert "cells meeting p90&lt;=50ms: 1 of 2" in out.read_text()
    out.unlink()
    capsys.readouterr()
    assert main(["report", str(results), "-o", str(out), "--latency", "p90=50ms"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("greenbench: error: --latency: cannot read 'p90=50ms'")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def check_sweep_views_in_browser(driver, page) -> None:
    """In a headless Chromium driver already started (tests/test_report.py's browser test
    calls this, to start Chromium once): the sweep and latency views of a sweep report draw
    their lines and points, and the variant filter narrows them."""
    from selenium.webdriver.support.ui import Select

    frame = sweep_frame({"slm": ["prefill", "decode"]}, ["fp32", "bf16", "int8-dynamic"])
    page.write_text(build_report(frame, ["synthetic"], latency=parse_latency_target("p90<=1s")))
    points = (
        "return document.querySelector('#{} ~ div.plot').data"
        ".filter(t => t.y && t.y.length && t.legendgroup !== 'frontier')"
        ".map(t => [t.name, t.y.length])"
    )
    driver.get(page.as_uri())
    variants = ("fp32", "bf16", "int8-dynamic")
    # a line of four batches per variant in each phase's panel; a point per cell
    assert driver.execute_script(points.format("sweep")) == [[v, 4] for _ in "pd" for v in variants]
    assert driver.execute_script(points.format("latency")) == [
        [v, 4] for _ in "pd" for v in variants
    ]
    Select(driver.find_element("css selector", 'select[data-filter="variant"]')).select_by_value(
        "bf16"
    )
    assert {n for n, _ in driver.execute_script(points.format("sweep"))} == {"bf16"}
    assert {n for n, _ in driver.execute_script(points.format("latency"))} == {"bf16"}


def test_labels_near_a_panels_right_edge_go_to_the_left_of_their_point():
    x = pd.Series([20.0, 60.0, 400.0])
    assert sweeps._label_sides(x, x.index, from_zero=True) == ["top right", "top right", "top left"]
    alone = pd.Series([525.0, 525.0])  # one latency, on an axis from zero: at the right edge
    assert sweeps._label_sides(alone, alone.index, from_zero=True) == ["top left", "top left"]
    assert sweeps._label_sides(alone, alone.index, from_zero=False) == ["top right", "top right"]
