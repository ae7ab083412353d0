"""The report: each figure function on synthetic records, the page in headless Chromium."""

import importlib.util
import shutil
import threading
import urllib.request

import pandas as pd
import pytest

from greenbench.cli import main
from greenbench.report import data, figures
from greenbench.report.page import build_report
from greenbench.report.sample import synthetic_frame
from greenbench.report.serve import make_server
from greenbench.store import RunStore

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def frame():
    return synthetic_frame(
        {"slm": ["prefill", "decode"], "cnn": ["forward"], "slm-train": ["train"]},
        ["fp32", "bf16", "int8-dynamic"],
    )


def summary_of(frame):
    return data.cell_summary(data.escaped(frame))


def test_energy_per_unit_has_a_panel_per_phase_and_unit_and_ci_bars(frame):
    fig = figures.energy_per_unit(summary_of(frame))
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "prefill: J per token, net of idle",
        "decode: J per token, net of idle",
        "forward: J per image, net of idle",
        "train: J per token, net of idle",
    ]
    decode = [t for t in fig.data if t.yaxis == "y2"]
    assert [t.name for t in decode] == ["fp32", "bf16", "int8-dynamic"]
    fp32 = decode[0]
    assert list(fp32.x) == ["slm"] and fp32.y[0] == pytest.approx(1.0, rel=0.05)
    assert fp32.error_y.array[0] > 0
    assert list(fp32.customdata[0]) == ["slm", "fp32", "cpu", ""]  # "": no validity reasons
    assert decode[1].marker.color == figures.variant_color("bf16") != fp32.marker.color


def test_frontier_marks_the_cells_no_other_beats(frame):
    summary = summary_of(frame)
    fig = figures.efficiency_frontier(summary)
    fronts = [t for t in fig.data if t.name == "Pareto frontier (per workload)"]
    assert len(fronts) == 4  # slm prefill, slm decode, cnn forward, slm-train train
    decode_front = fronts[1]
    # cheaper variants here are also as fast, so int8-dynamic alone is on the frontier
    assert [c[:2] for c in decode_front.customdata] == [["slm", "int8-dynamic"]]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "tokens / s"


def test_pareto_front_keeps_trade_offs():
    points = pd.DataFrame({"j_per_unit": [1.0, 2.0, 3.0, 2.5], "throughput": [1.0, 5.0, 6.0, 4.0]})
    assert list(data.pareto_front(points).index) == [0, 1, 2]  # 3 is beaten by 1


def test_tradeoff_plots_saving_against_fidelity(frame):
    tradeoffs = data.tradeoffs(summary_of(frame))
    fig = figures.quantization_tradeoff(tradeoffs)
    bf16 = next(t for t in fig.data if t.name == "bf16")
    saving = tradeoffs[(tradeoffs["variant"] == "bf16") & (tradeoffs["phase"] == "decode")]
    assert saving["saving"].iloc[0] == pytest.approx(0.2, abs=0.05)  # bf16 costs 0.8x here
    assert list(bf16.x) == pytest.approx([89.0, 89.0, 89.0])  # top-1 in percent, per phase
    assert fig.layout.xaxis.title.text == "top-1 agreement with fp32 (%)"
    assert set(tradeoffs["variant"]) == {"bf16", "int8-dynamic"}  # fp32 is the baseline
    int8 = next(t for t in fig.data if t.name == "int8-dynamic")
    assert set(int8.hovertext) == {"<br>Linear weights quantized 100.0%"}
    assert set(bf16.hovertext) == {""}  # a cast, not a quantization


def test_power_over_time_draws_windows_idle_and_phases(frame):
    fig = figures.power_over_time(data.escaped(frame))
    names = [t.name for t in fig.data]
    assert names[:3] == [
        "total power (window mean)",
        "cpu power (window mean)",
        "ram power (window mean)",
    ]
    assert "idle baseline (total)" in names and "phase: decode" in names
    total = fig.data[0]
    windows = len(frame)
    assert len(total.x) == 3 * windows  # start, end, gap per window
    assert total.y[0] == pytest.approx(frame["power_w"].iloc[0])
    assert len(fig.layout.shapes) == windows  # one shaded band per window


def test_power_over_time_draws_the_sampled_gpu_trace(frame):
    frame = frame.copy()
    frame["gpu_trace"] = "[[0.0, 0, 250.0, 90, 60, 1700], [0.1, 0, 260.0, 91, 60, 1700]]"
    fig = figures.power_over_time(data.escaped(frame))
    (gpu,) = [t for t in fig.data if t.name == "GPU power (NVML samples)"]
    assert list(gpu.y[:3]) == [250.0, 260.0, None]  # one gap between windows
    assert len(gpu.y) == 3 * len(frame)


def test_carbon_has_one_bar_per_run_and_the_intensity():
    frame = synthetic_frame({"cnn": ["forward"]}, ["fp32"], runs=3)
    fig = figures.carbon_over_time(data.escaped(frame))
    bars, line = fig.data
    assert len(bars.x) == 3 and list(line.y) == [200.0] * 3
    per_run = frame.groupby("run_id")["emissions_g"].sum().sort_index()
    assert list(bars.y) == pytest.approx(list(per_run))


def test_comparison_flags_regressions_beyond_the_noise():
    before = synthetic_frame({"cnn": ["forward"], "slm": ["decode"]}, ["fp32"], seed=1)
    now = synthetic_frame({"cnn": ["forward"], "slm": ["decode"]}, ["fp32"], seed=2)
    now.loc[now["workload"] == "cnn", "energy_per_unit_j"] *= 1.5
    ratios = data.comparison(now, before)
    fig = figures.comparison(ratios, "before")
    by_label = dict(zip(ratios["label"], ratios["regression"], strict=True))
    assert by_label == {"cnn / forward / fp32 / cpu": True, "slm / decode / fp32 / cpu": False}
    colors = dict(zip(fig.data[0].y, fig.data[0].marker.color, strict=True))
    assert colors["cnn / forward / fp32 / cpu"] == "#d62728"


def test_views_without_data_say_what_is_missing():
    empty = synthetic_frame({"cnn": ["forward"]}, ["fp32"]).iloc[0:0]
    summary = summary_of(empty)
    assert isinstance(figures.energy_per_unit(summary), figures.Missing)
    assert isinstance(figures.power_over_time(empty), figures.Missing)
    only_fp32 = summary_of(synthetic_frame({"cnn": ["forward"]}, ["fp32"]))
    reason = figures.quantization_tradeoff(data.tradeoffs(only_fp32)).reason
    assert "fp32 beside" in reason
    page = build_report(empty, ["nowhere"])
    assert "No records." in page and "Not shown: no successful measurements" in page
    failed = synthetic_frame({"cnn": ["forward"]}, ["fp32"]).iloc[[0]]
    failed = failed.assign(status="failed", error="timed out after 9 s")
    page = build_report(failed, ["results"])
    assert "timed out after 9 s" in page and page.count("Not shown:") == 5


def test_user_labels_are_escaped_everywhere(frame):
    frame.loc[frame["workload"] == "cnn", "workload"] = XSS
    failed = frame.iloc[[0]].assign(status="failed", error=f"boom {XSS}", cell_id=f"{XSS}/x/cpu")
    page = build_report(pd.concat([frame, failed]), [f"results/{XSS}"])
    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown as text in the table
    assert "</script><img" not in page


def test_report_command_writes_one_offline_file_and_checks_the_baseline(tmp_path, capsys):
    results = tmp_path / "results"
    for seed in (1, 2):
        store = RunStore.create(results, {"status": "complete"})
        rows = synthetic_frame({"cnn": ["forward"]}, ["fp32"], seed=seed)
        store.append(rows.assign(run_id=store.run_id).to_dict("records"))
    first = sorted(p.name for p in results.iterdir())[0]
    out = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(out), "--baseline", first]) == 0
    html = out.read_text()
    assert html.count("<script") >= 6 and "<script src" not in html  # plotly.js inlined
    assert f"Against {first}" in html
    assert main(["report", str(results), "-o", str(out), "--baseline", "nope"]) == 2
    assert "--baseline: no run 'nope'" in capsys.readouterr().err


def test_serve_binds_to_loopback_and_serves_the_page(tmp_path):
    page = tmp_path / "report.html"
    page.write_text("<title>greenbench report</title>")
    server = make_server(page, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as reply:
            assert b"greenbench report" in reply.read()
    finally:
        server.shutdown()
        server.server_close()


CHROMIUM = (
    shutil.which("chromium")
    and shutil.which("chromedriver")
    and importlib.util.find_spec("selenium") is not None
)


@pytest.mark.skipif(not CHROMIUM, reason="needs selenium and Debian's chromium and chromium-driver")
@pytest.mark.browser
def test_page_opens_in_headless_chromium_without_errors(frame, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    frame.loc[frame["workload"] == "cnn", "workload"] = XSS
    page = tmp_path / "report.html"
    page.write_text(build_report(frame, ["synthetic"]))
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,2400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.as_uri())
        assert driver.title == "greenbench report"
        assert driver.execute_script("return document.querySelectorAll('.js-plotly-plot').length")
        assert not driver.execute_script("return document.querySelector('img[src=x]')")
        assert XSS in driver.execute_script("return document.body.innerText")
        Select(
            driver.find_element("css selector", 'select[data-filter="variant"]')
        ).select_by_value("bf16")
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('tr[data-variant]'))"
            ".filter(r => r.style.display !== 'none').map(r => r.dataset.variant)"
        )
        assert shown and set(shown) == {"bf16"}
        bars = driver.execute_script(
            "var d = document.querySelector('div.plot').data;"
            "return d.filter(t => t.y && t.y.length).map(t => t.name)"
        )
        assert set(bars) == {"bf16"}
        workload = Select(driver.find_element("css selector", 'select[data-filter="workload"]'))
        workload.select_by_value(XSS)  # an escaped label still filters its own points
        points = driver.execute_script(
            "var d = document.querySelector('div.plot').data;"
            "return d.filter(t => t.y && t.y.length).map(t => t.x.length)"
        )
        assert points == [1]  # bf16 forward of that workload only
        assert driver.save_screenshot(str(tmp_path / "report.png"))  # the test's own folder
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
