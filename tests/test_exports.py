"""`greenbench export`: each format read back by its own reader (prometheus-client's parser,
BoAmps' published schema, pandas), and nothing from run.json but what is meant to leave."""

import io
import json
import socket
import urllib.request
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from referencing import Registry
from referencing.jsonschema import DRAFT4

from greenbench import cli_exports
from greenbench.cli import main
from greenbench.cli_exports import FORMAT_NAMES
from greenbench.errors import GreenbenchError
from greenbench.exit_codes import EXIT_OK, EXIT_USAGE
from greenbench.exports import FORMATS, ai_energy_score, boamps, load_run, openmetrics
from greenbench.exports.metrics_server import start_metrics_server
from greenbench.exports.run_data import cell_figures
from greenbench.records import COLUMNS
from greenbench.report.sample import synthetic_frame
from greenbench.store import RunStore

SCHEMAS = Path(__file__).parent / "data" / "boamps"
BOAMPS_BASE = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/"
SECRET = "hf_exportsSecretToken123"
LM = {"batch": 1, "prompt_tokens": 8, "new_tokens": 4}


def make_run(tmp_path) -> RunStore:
    """A finished run: an LM at batch 1 and at batch 4, a CNN at batch 1; its run.json holds
    a token in places an export must not read."""
    meta = {
        "status": "complete",
        "environment": {
            "hostname": "secret-host",
            "os": "Linux-6.8.0-x86_64-with-glibc2.39",
            "python": "3.11.9",
            "cpu_model": "Test CPU",
            "ram_gb": 15.6,
            "gpus": [{"index": 0, "name": "Test GPU", "memory_gb": 80.0, "token": SECRET}],
            "codecarbon_ignored_settings": {"api_key": SECRET},
            "versions": {"greenbench": "0.1.0", "torch": "2.13.0", "HF_TOKEN": SECRET},
        },
        "suite": {"env": {"HF_TOKEN": SECRET}},
    }
    store = RunStore.create(tmp_path, meta)
    frame = synthetic_frame(
        {"lm": ["prefill", "decode"], "resnet18": ["forward"], "detr-tiny": ["forward"]},
        ["fp32", "int8"],
        repetitions=2,
    )
    rows = []
    for r in frame.to_dict("records"):
        r = {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        r["run_id"] = store.run_id
        r["task"] = "inference"
        r["params"] = json.dumps(LM if r["workload"] == "lm" else {"batch": 1})
        rows.append(r)
        if r["workload"] == "lm":  # the same cell at batch 4
            rows.append({**r, "params": json.dumps({**LM, "batch": 4}), "cell_id": "lm-b4"})
    store.append(rows)
    return store


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run for the tests that only read it."""
    root = tmp_path_factory.mktemp("results")
    return load_run(root, make_run(root).run_id)


def test_the_cli_names_every_format():
    assert tuple(FORMATS) == FORMAT_NAMES


def test_openmetrics_parses_back_with_labels_and_the_cells_figures(run):
    text = openmetrics.export(run).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == set(openmetrics.GAUGES)
    family = families["greenbench_energy_per_unit_joules"]
    assert "net of the idle baseline" in family.documentation
    assert "method=estimated" in family.documentation
    cells = cell_figures(run.records)
    assert len(family.samples) == len(cells) == 2 * 2 * 2 + 2 + 2  # lm: phases x variants x batches
    sample = next(
        s
        for s in family.samples
        if s.labels["workload"] == "resnet18" and s.labels["variant"] == "int8"
    )
    assert set(sample.labels) == set(openmetrics.LABELS)
    assert sample.labels["run_id"] == run.run_id and sample.labels["method"] == "measured"
    expected = cells[(cells["workload"] == "resnet18") & (cells["variant"] == "int8")]["j_per_unit"]
    assert sample.value == pytest.approx(float(expected.iloc[0]))
    low = families["greenbench_energy_per_unit_ci95_low_joules"].samples[0].value
    high = families["greenbench_energy_per_unit_ci95_high_joules"].samples[0].value
    assert low < high


def boamps_validator():
    registry = Registry().with_resources(
        (BOAMPS_BASE + path.name, DRAFT4.create_resource(json.loads(path.read_text())))
        for path in SCHEMAS.glob("*_schema.json")
    )
    schema = json.loads((SCHEMAS / "report_schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_the_shipped_boamps_schema_refuses_a_report_missing_what_it_requires(run):
    validator = boamps_validator()
    report = json.loads(boamps.export(run))[0]
    del report["measures"][0]["unit"]  # measure_schema, reached through its $ref
    with pytest.raises(jsonschema.ValidationError, match="'unit' is a required property"):
        validator.validate(report)
    report = json.loads(boamps.export(run))[0]
    report["infrastructure"]["infraType"] = "basement"
    with pytest.raises(jsonschema.ValidationError, match="is not one of"):
        validator.validate(report)


def test_boamps_reports_validate_against_the_published_schema(run):
    reports = json.loads(boamps.export(run))
    assert len(reports) == len(cell_figures(run.records))
    validator = boamps_validator()
    for report in reports:
        validator.validate(report)
    cnn = next(r for r in reports if "resnet18 forward int8" in r["task"]["taskDescription"])
    windows = run.records[
        (run.records["workload"] == "resnet18") & (run.records["variant"] == "int8")
    ]
    assert [m["powerConsumption"] for m in cnn["measures"]] == pytest.approx(
        list(windows["energy_j"] / 3.6e6)
    )
    assert cnn["measures"][0]["cpuTrackingMode"] == "rapl"
    assert cnn["task"]["taskStage"] == "inference" and cnn["task"]["nbRequest"] == 10
    assert cnn["task"]["taskFamily"] == "vision-inference"
    assert cnn["environment"] == {"country": "GB", "powerSourceCarbonIntensity": 200.0}
    assert {c["componentType"] for c in cnn["infrastructure"]["components"]} == {
        "cpu",
        "gpu",
        "ram",
    }


def test_ai_energy_score_is_wh_per_1000_batch_1_queries_with_the_differences(run):
    result = ai_energy_score.score(run)
    tasks = {(c["workload"], c["variant"]): c for c in result["cells"]}
    assert set(tasks) == {
        ("lm", "fp32"),
        ("lm", "int8"),
        ("resnet18", "fp32"),
        ("resnet18", "int8"),
    }
    lm = tasks[("lm", "fp32")]
    assert lm["task"] == "text_generation" and lm["prompt_tokens"] == 8
    windows = run.records[
        (run.records["workload"] == "lm")
        & (run.records["variant"] == "fp32")
        & (run.records["params"] == json.dumps(LM))
    ]
    # a query = one prefill call + one decode call; no GPU counter here: the whole machine
    per_query_j = sum(
        (w["energy_j"] / w["calls"]).mean() for _, w in windows.groupby("phase", sort=False)
    )
    assert lm["wh_per_1k_queries"] == pytest.approx(per_query_j * 1000 / 3600)
    assert lm["wh_per_1k_queries_net"] < lm["wh_per_1k_queries"]
    assert lm["energy_counted"].startswith("cpu+ram") and lm["weights"] == "random"
    assert tasks[("resnet18", "int8")]["task"] == "image_classification"
    (left,) = {c["reason"] for c in result["left_out"]}
    assert left == "batch 4: the score is at batch 1" and len(result["left_out"]) == 2
    assert any("idle" in d for d in result["differences"])
    table = ai_energy_score.text_table(result)
    assert "text_generation" in table and "left out: lm fp32 cpu: batch 4" in table


def test_csv_and_parquet_hold_every_record_and_column_in_order(run):
    for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        frame = read(io.BytesIO(FORMATS[fmt][0](run)))
        assert list(frame.columns) == COLUMNS
        assert len(frame) == len(run.records)
        assert sorted(frame["repetition"]) == sorted(run.records["repetition"])


def test_no_export_carries_what_run_json_holds_beyond_the_machine_description(run):
    for fmt, (write, _) in FORMATS.items():
        data = write(run)
        assert SECRET.encode() not in data, fmt
        assert b"secret-host" not in data, fmt


def test_cli_writes_each_format_atomically_and_prints_the_score_table(tmp_path, capsys):
    store = make_run(tmp_path)
    target = tmp_path / "out.json"
    code = main(["--out", str(tmp_path), "export", store.run_id, "--format", "ai-energy-score",
                 "-o", str(target)])  # fmt: skip
    assert code == EXIT_OK
    assert json.loads(target.read_text())["run_id"] == store.run_id
    assert "differences from the leaderboard" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))
    prom = tmp_path / "greenbench.prom"
    assert main(["export", str(store.path), "--format", "openmetrics", "-o", str(prom)]) == 0
    assert list(text_string_to_metric_families(prom.read_text()))


def test_cli_bad_run_or_output_is_a_one_line_error(tmp_path, capsys):
    store = make_run(tmp_path)
    assert main(["--out", str(tmp_path), "export", "nope", "--format", "csv"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "Traceback" not in err and len(err.splitlines()) == 1
    code = main(["--out", str(tmp_path), "export", store.run_id, "--format", "csv",
                 "-o", str(tmp_path)])  # fmt: skip
    assert code == EXIT_USAGE
    assert "is a folder; give a file name" in capsys.readouterr().err


def scrape(server) -> dict:
    host, port = server.server_address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_endpoint_serves_the_latest_finished_run_on_loopback(tmp_path):
    server = start_metrics_server(tmp_path, "127.0.0.1", 0)  # an ephemeral port
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert scrape(server)["greenbench_energy_per_unit_joules"].samples == []  # no run yet
        finished = make_run(tmp_path)
        RunStore.create(tmp_path, {"status": "running"})  # newer, still being written
        samples = scrape(server)["greenbench_energy_per_unit_joules"].samples
        assert {s.labels["run_id"] for s in samples} == {finished.run_id}
    finally:
        server.shutdown()
        server.server_close()


def test_schedule_serve_metrics_port_serves_while_the_scheduler_runs(tmp_path, monkeypatch):
    store = make_run(tmp_path)
    seen = {}

    def fake_serve(out):  # the scheduler's loop: scrape once, then Ctrl-C
        seen["families"] = scrape(fake_serve.server)
        raise KeyboardInterrupt

    real_start = cli_exports.start_metrics

    def start(args, console):
        fake_serve.server = real_start(args, console)
        return fake_serve.server

    monkeypatch.setattr("greenbench.schedule.serve", fake_serve)
    monkeypatch.setattr(cli_exports, "start_metrics", start)
    code = main(["schedule", "serve", "--out", str(tmp_path), "--metrics-port", "0"])
    assert code == EXIT_OK
    samples = seen["families"]["greenbench_throughput_units_per_second"].samples
    assert {s.labels["run_id"] for s in samples} == {store.run_id}


def test_a_busy_metrics_port_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(GreenbenchError, match=f"--metrics-port {port}: already in use"):
            start_metrics_server(tmp_path, "127.0.0.1", port)


def test_ai_energy_score_on_a_gpu_counts_the_gpu_alone_gross_and_net(run):
    records = run.records.copy()
    records["device"] = "cuda"
    records["energy_gpu_j"] = 36.0 * records["calls"]  # 36 J a call, 6 J of it idle
    records["idle_power_gpu_w"] = 6.0 * records["calls"] / records["duration_s"]
    result = ai_energy_score.score(type(run)(run.run_id, run.path, records, run.meta))
    cnn = next(c for c in result["cells"] if c["workload"] == "resnet18")
    lm = next(c for c in result["cells"] if c["workload"] == "lm")
    assert cnn["energy_counted"] == "gpu" and lm["energy_counted"] == "gpu"
    assert cnn["wh_per_1k_queries"] == pytest.approx(36.0 * 1000 / 3600)
    assert cnn["wh_per_1k_queries_net"] == pytest.approx(30.0 * 1000 / 3600)
    assert lm["wh_per_1k_queries"] == pytest.approx(2 * 36.0 * 1000 / 3600)  # prefill + decode
