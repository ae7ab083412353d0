"""The report: each figure function on synthetic records, the page in headless Chromium."""

import http.client
import importlib.util
import shutil
import socket
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from test_history import check_lazy_trends_in_browser, check_trends_in_browser
from test_report_sweeps import check_sweep_views_in_browser

from greenbench.cli import main
from greenbench.errors import GreenbenchError
from greenbench.report import build, data, figures
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
    # the synthetic cells span less than 100x: linear axes, whose ticks do not crowd
    assert fig.layout.xaxis.type == "linear" and fig.layout.xaxis.title.text == "tokens / s"
    assert not fig.layout.annotations[4:]  # the panel titles only: every panel has a trade-off


def test_frontier_axes_go_log_only_for_a_wide_span_and_a_lone_cell_says_so():
    frame = synthetic_frame({"slm": ["decode"], "cnn": ["forward"]}, ["fp32", "int8-dynamic"])
    frame = frame[~((frame["workload"] == "cnn") & (frame["variant"] == "int8-dynamic"))]
    summary = summary_of(frame)
    wide = summary["workload"] == "slm"
    summary.loc[wide & (summary["variant"] == "fp32"), ["j_per_unit", "throughput"]] = [500, 0.01]
    fig = figures.efficiency_frontier(summary)
    assert (fig.layout.xaxis.type, fig.layout.yaxis.type) == ("log", "log")  # 500x apart
    assert (fig.layout.xaxis2.type, fig.layout.yaxis2.type) == ("linear", "linear")
    notes = [a for a in fig.layout.annotations if "nothing to trade off" in a.text]
    assert [(a.xref, a.text) for a in notes] == [("x2 domain", "one cell: nothing to trade off")]


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
    assert {c[4] for c in int8.customdata} == {"<br>Linear weights quantized 100.0%"}
    assert {c[4] for c in bf16.customdata} == {""}  # a cast, not a quantization


def test_power_over_time_draws_windows_idle_and_phases(frame):
    fig = figures.power_over_time(data.escaped(frame))
    names = [t.name for t in fig.data]
    assert names[:3] == [  # the synthetic RAM is CodeCarbon's model: said so, and dashed
        "total power (window mean; includes modelled ram)",
        "cpu power (window mean)",
        "ram power: modelled, not read (power per GB or DIMM of RAM)",
    ]
    assert [t.line.dash for t in fig.data[:3]] == ["solid", "solid", "dash"]
    assert "idle baseline (total)" in names and "phase: decode" in names
    total = fig.data[0]
    windows = len(frame)
    assert len(total.x) == 3 * windows  # start, end, gap per window
    assert total.y[0] == pytest.approx(frame["power_w"].iloc[0])
    assert len(fig.layout.shapes) == windows  # one shaded band per window


def test_power_over_time_dashes_a_cpu_figure_modelled_from_load(frame):
    frame = frame.assign(method_cpu="cpu-load-estimate", method_ram="none", energy_ram_j=0.0)
    fig = figures.power_over_time(data.escaped(frame))
    cpu = next(t for t in fig.data if t.name.startswith("cpu power"))
    assert cpu.name == "cpu power: modelled, not read (CPU TDP scaled by CPU load)"
    assert cpu.line.dash == "dash"
    assert not any(t.name.startswith("ram power") for t in fig.data)


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


def test_past_daily_runs_the_carbon_is_a_bar_per_utc_day_of_its_runs_summed(monkeypatch):
    monkeypatch.setattr(figures, "DAILY_RUNS", 2)
    frame = synthetic_frame({"cnn": ["forward"]}, ["fp32"], runs=3)
    twice = pd.concat([frame, frame.assign(run_id=frame["run_id"] + "-b", zone="DE")])
    fig = figures.carbon_over_time(data.escaped(twice))
    bars, line = fig.data
    assert fig.layout.xaxis.type == "date" and len(bars.x) == 3  # 3 days, 2 runs each
    per_run = frame.groupby("run_id")["emissions_g"].sum().sort_index()
    assert list(bars.y) == pytest.approx(list(2 * per_run))
    assert [c[0] for c in bars.customdata] == [
        f"2 run(s) of {day:%Y-%m-%d}" for day in pd.to_datetime(list(bars.x))
    ]
    assert {c[1] for c in bars.customdata} == {"GB, DE"} and list(line.y) == [200.0] * 3
    assert bars.width == 0.8 * figures.DAY_MS  # a day's bar, in ms on the date axis
    one_day = frame[frame["run_id"] == frame["run_id"].iloc[0]]
    many = pd.concat([one_day.assign(run_id=f"r{i}") for i in range(3)])
    (alone, _) = figures.carbon_over_time(data.escaped(many)).data  # 3 runs, one day
    assert len(alone.x) == 1 and alone.width == 0.8 * figures.DAY_MS


def test_carbon_of_one_run_shows_its_intensity_marker_inside_the_plot():
    fig = figures.carbon_over_time(data.escaped(synthetic_frame({"cnn": ["forward"]}, ["fp32"])))
    bars, line = fig.data
    assert bars.width == 0.4 and "text" in line.mode and list(line.text) == ["200 g/kWh"]
    assert line.marker.size >= 10
    assert fig.layout.yaxis2.range[1] > 200 and fig.layout.yaxis.range[1] > bars.y[0]


def test_energy_error_bars_stop_at_zero_and_a_cell_below_zero_is_shown_and_said(frame):
    summary = summary_of(frame)
    decode = summary["phase"] == "decode"
    noisy = decode & (summary["variant"] == "bf16")
    below = decode & (summary["variant"] == "int8-dynamic")
    summary.loc[noisy, ["j_per_unit", "j_per_unit_ci95"]] = [0.01, 0.05]
    summary.loc[below, ["j_per_unit", "j_per_unit_ci95"]] = [-0.02, 0.01]
    fig = figures.energy_per_unit(summary)
    bf16, int8 = (next(t for t in fig.data if t.yaxis == "y2" and t.name == v)
                  for v in ("bf16", "int8-dynamic"))  # fmt: skip
    assert (bf16.error_y.array[0], bf16.error_y.arrayminus[0]) == (0.05, 0.01)  # not below 0
    assert int8.y[0] == -0.02 and figures.BELOW_ZERO in int8.hovertext[0]
    assert fig.layout.yaxis2.type == "linear"  # a log axis would drop it without a word
    (note,) = [a for a in fig.layout.annotations if figures.BELOW_ZERO in a.text]
    assert note.text.startswith("slm / int8-dynamic / cpu:") and note.yref == "y2 domain"


def test_frontier_never_draws_a_log_axis_over_a_cell_at_or_below_zero(frame):
    summary = summary_of(frame)
    summary.loc[summary["phase"] == "decode", "j_per_unit"] = [0.001, 1.0, -0.5]
    fig = figures.efficiency_frontier(summary)
    assert fig.layout.yaxis2.type == "linear"
    assert any(figures.BELOW_ZERO in a.text for a in fig.layout.annotations)


def test_header_counts_the_runs_loaded_and_the_baseline_apart():
    now = synthetic_frame({"cnn": ["forward"]}, ["fp32"], runs=2)
    before = synthetic_frame({"cnn": ["forward"]}, ["fp32"], seed=3)
    page = build_report(now, ["results"], before, "last-week")
    header = "6 record(s) of 2 run(s) from results; baseline last-week: 3 record(s) of 1 run(s)"
    assert header in page


def test_an_empty_ratio_view_names_the_invalid_cells_it_left_out(frame):
    frame = frame[frame["workload"] == "cnn"].copy()
    frame.loc[frame["variant"] == "fp32", "energy_per_unit_j"] *= [1.0, 1.6, 0.6]  # unstable
    page = build_report(frame, ["results"])
    assert (
        "Not shown: no variant with a fidelity score and an fp32 baseline in the same records"
    ) in page
    assert "cell(s) (greenbench check) were left out, and --include-invalid keeps them" in page


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
    assert "timed out after 9 s" in page and page.count("Not shown:") == 7


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


@pytest.fixture
def served(tmp_path):
    """The report server on an ephemeral port of 127.0.0.1, in a folder with things to hide."""
    site = tmp_path / "site"
    (site / ".git").mkdir(parents=True)
    (site / ".git" / "config").write_text("[remote] token = secret")
    (site / ".venv" / "bin").mkdir(parents=True)
    (site / "results").mkdir()
    (site / "results" / "records.jsonl").write_text("{}")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside the folder")
    (site / "link.txt").symlink_to(outside)
    (site / "linked").symlink_to(tmp_path)
    page = site / "report.html"
    page.write_text("<title>greenbench report</title>")
    server = make_server(page, port=0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def fetch(port, path, host=None, method="GET"):
    """Status and body of one raw request (http.client sends Host as given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        connection.putheader("Host", host or f"127.0.0.1:{port}")
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def test_serve_binds_to_loopback_and_serves_the_page(served):
    host, port = served.server_address[:2]
    assert host == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as reply:
        assert b"greenbench report" in reply.read()
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    for path in ("/report.html", "/?tab=carbon"):
        assert fetch(port, path) == (200, b"<title>greenbench report</title>")
    for host_header in (f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert fetch(port, "/", host_header)[0] == 200
    assert fetch(port, "/", method="HEAD") == (200, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/.git/config",
        "/.git/",
        "/.venv/",
        "/.venv/bin/",
        "/results/records.jsonl",
        "/link.txt",
        "/linked/outside.txt",
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/report.html/",
        "/site/report.html",
    ],
)
def test_serve_answers_nothing_but_the_page(served, path):
    status, body = fetch(served.server_address[1], path)
    assert status == 404
    assert b"secret" not in body and b"outside the folder" not in body and b"<a href" not in body


@pytest.mark.parametrize(
    "host_header",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "127.0.0.1:1",
        "localhost",
        "localhost:{port}@evil.example",
        "",
        "[::1",
        "0.0.0.0:{port}",
    ],
)
def test_serve_refuses_a_host_header_that_names_another_host(served, host_header):
    # a page on evil.example whose name was rebound to 127.0.0.1 sends Host: evil.example
    status, body = fetch(
        served.server_address[1], "/", host_header.format(port=served.server_address[1]) or " "
    )
    assert status == 403 and b"greenbench report" not in body


def test_serve_refuses_an_absolute_url_naming_another_host(served):
    assert fetch(served.server_address[1], "http://evil.example/")[0] == 403
    assert (
        fetch(served.server_address[1], f"http://127.0.0.1:{served.server_address[1]}/")[0] == 200
    )


def test_serve_on_all_interfaces_also_answers_to_ip_addresses_but_not_names(tmp_path):
    page = tmp_path / "report.html"
    page.write_text("<title>greenbench report</title>")
    server = make_server(page, host="0.0.0.0", port=0)
    try:
        assert server.host_allowed(f"192.168.1.20:{server.port}")
        assert server.host_allowed(f"0.0.0.0:{server.port}")
        assert not server.host_allowed(f"evil.example:{server.port}")
        assert not server.host_allowed("192.168.1.20:1")
    finally:
        server.server_close()


def test_serve_problems_are_one_line_errors_before_the_report_is_built(tmp_path, capsys):
    results = tmp_path / "results"
    store = RunStore.create(results, {"status": "complete"})
    rows = synthetic_frame({"cnn": ["forward"]}, ["fp32"], seed=1)
    store.append(rows.assign(run_id=store.run_id).to_dict("records"))
    out = tmp_path / "report.html"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        cases = {
            "--port-busy": ["--port", str(taken)],
            "--port-range": ["--port", "99999"],
            "--host-name": ["--host", "x" * 64 + ".example"],  # refused before any DNS query
            "--host-foreign": ["--host", "192.0.2.1"],  # TEST-NET: no interface has it
        }
        for flags in cases.values():
            assert main(["report", str(results), "-o", str(out), "--serve", *flags]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == len(cases) and all(e.startswith("greenbench: error: ") for e in errors)
    assert f"--port {taken}: already in use" in errors[0]
    assert "--port 99999: not a port" in errors[1]
    assert errors[2].startswith(f"greenbench: error: --host {'x' * 64}.example: not an address")
    assert errors[3].startswith("greenbench: error: --host 192.0.2.1: not an address")
    assert not out.exists()  # refused before the (slow) report was built


def test_a_host_name_that_does_not_resolve_is_one_line(tmp_path, monkeypatch):
    def unknown(self, address):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket.socket, "bind", unknown)  # no resolver asked, even offline
    with pytest.raises(GreenbenchError, match=r"^--host nope\.example: not an address of this"):
        make_server(tmp_path / "report.html", host="nope.example", port=0)


def test_report_output_that_is_a_folder_or_unwritable_is_one_line_and_leaves_nothing(
    tmp_path, capsys
):
    results = tmp_path / "results"
    results.mkdir()
    folder = tmp_path / "out"
    folder.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["report", str(results), "-o", str(folder)]) == 2
    assert main(["report", str(results), "-o", str(blocker / "report.html")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == (
        f"greenbench: error: -o {folder}: is a folder; give a file name, e.g. "
        f"-o {folder / 'report.html'}"
    )
    assert errors[1].startswith(f"greenbench: error: -o {blocker / 'report.html'}: cannot write")
    assert len(errors) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out", "results"]
    assert list(folder.iterdir()) == []


def test_a_failed_report_write_keeps_the_earlier_report_and_no_temporary_file(
    tmp_path, monkeypatch
):
    (tmp_path / "results").mkdir()
    out = tmp_path / "report.html"
    out.write_text("the earlier report")
    real_write = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        real_write(self, text[:10], *args, **kwargs)  # half a page, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(GreenbenchError, match=f"^-o {out}: cannot write the report .No space"):
        build.write_report([str(tmp_path / "results")], out)
    monkeypatch.undo()
    assert out.read_text() == "the earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results"]


CHROMIUM = (
    shutil.which("chromium")
    and shutil.which("chromedriver")
    and importlib.util.find_spec("selenium") is not None
)


@pytest.mark.skipif(not CHROMIUM, reason="needs selenium and Debian's chromium and chromium-driver")
@pytest.mark.browser
def test_page_opens_in_headless_chromium_without_errors(frame, tmp_path, monkeypatch):
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
        check_sweep_views_in_browser(driver, tmp_path / "sweep.html")  # the same Chromium
        check_trends_in_browser(driver, tmp_path / "trends.html")
        check_lazy_trends_in_browser(driver, tmp_path / "lazy.html", monkeypatch)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()


def test_tradeoff_labels_of_coincident_points_take_different_places(frame):
    fig = figures.quantization_tradeoff(data.tradeoffs(summary_of(frame)))
    bf16 = next(t for t in fig.data if t.name == "bf16")
    assert len(set(bf16.x)) == 1 and len(bf16.x) == 3  # one agreement, three phases
    drawn = [t for t in bf16.text if t]
    assert len(drawn) == 1  # the three close points share one label, a line each
    assert sorted(drawn[0].split("<br>")) == ["cnn forward", "slm decode", "slm prefill"]
    assert sorted(bf16.hovertext) == ["cnn forward", "slm decode", "slm prefill"]


def test_tradeoff_axis_follows_the_points_not_one_blown_up_interval(frame):
    tradeoffs = data.tradeoffs(summary_of(frame))
    noisy = tradeoffs.index[0]
    tradeoffs.loc[noisy, ["saving_low", "saving_high"]] = [-40.0, 0.99]  # -4000 % .. 99 %
    fig = figures.quantization_tradeoff(tradeoffs)
    bottom, top = fig.layout.yaxis.range
    savings = tradeoffs["saving"] * 100
    assert bottom < savings.min() and top > savings.max()  # every point inside
    assert bottom > -100 and top <= 110  # not stretched to -4000 %
    assert any("runs past the axis" in a.text for a in fig.layout.annotations)
    quiet = figures.quantization_tradeoff(data.tradeoffs(summary_of(frame)))
    assert not any("runs past the axis" in a.text for a in quiet.layout.annotations)
