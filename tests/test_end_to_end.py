"""Real runs of the tiny presets through child processes and the real CodeCarbon meter."""

import os
import signal
import subprocess
import sys
import time

import pytest

import greenbench
from greenbench.cli import main
from greenbench.records import COLUMNS
from greenbench.store import RunStore

FAST = """
name = "fast"
workloads = [{workloads}]
[protocol]
repetitions = 2
min_window_s = 0.3
min_calls = 1
warmup_calls = 1
idle_s = 0.3
settle_max_s = 0.5  # a busy test machine's idle never settles: do not wait for it
warmup_max_s = 0.5
cell_timeout_s = {timeout}
[params.slm-tiny]
prompt_tokens = 8
new_tokens = 4
"""


def suite_file(tmp_path, workloads='"slm-tiny", "resnet-tiny"', timeout=300):
    path = tmp_path / "fast.toml"
    path.write_text(FAST.format(workloads=workloads, timeout=timeout))
    return str(path)


@pytest.mark.slow
def test_run_records_every_phase_and_repetition(tmp_path):
    result = greenbench.run(suite_file(tmp_path), out=tmp_path / "results")
    assert result.ok
    frame = greenbench.load_results(tmp_path / "results")
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS
    assert sorted(frame.groupby(["workload", "phase"]).size().items()) == [
        (("resnet-tiny", "forward"), 2),
        (("slm-tiny", "decode"), 2),
        (("slm-tiny", "prefill"), 2),
    ]
    assert set(frame["status"]) == {"ok"}
    assert (frame["energy_j"] > 0).all() and (frame["duration_s"] >= 0.3).all()
    assert (
        frame["energy_j"] - frame["net_energy_j"] - frame["idle_power_w"] * frame["duration_s"]
    ).abs().max() < 1e-9
    decode = frame[frame["phase"] == "decode"]
    assert (decode["unit_count"] == decode["calls"] * 4).all()
    assert set(frame["method_cpu"]) <= {"rapl", "cpu-load-estimate", "tdp-estimate"}
    assert set(frame["method_ram"]) == {"ram-estimate"} and frame["estimated"].all()
    assert not frame["reliable"].any()  # 0.3 s windows
    assert (frame["carbon_intensity_g_per_kwh"] > 0).all()
    assert frame["carbon_source"].str.contains("codecarbon offline").all()
    assert (frame["task"] == "inference").all()
    meta = RunStore(result.path).read_meta()
    assert meta["status"] == "complete" and meta["suite"]["name"] == "fast"
    env = meta["environment"]
    assert env["versions"]["torch"] and env["versions"]["codecarbon"] and env["cpu_model"]
    assert meta["started_at"] <= meta["ended_at"]


def test_cli_run_prints_tables_with_estimates_and_exit_0(tmp_path, capsys):
    code = main(
        [
            "run",
            "--suite",
            suite_file(tmp_path, '"resnet-tiny"'),
            "--out",
            str(tmp_path / "r"),
            "--zone",
            "FR",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "forward: energy per image, net of idle" in out
    assert "~" in out and "estimate" in out and "cpu-load-estimate" in out
    assert "less reliable" in out
    frame = greenbench.load_results(tmp_path / "r")
    assert set(frame["zone"]) == {"FR"}

    assert main(["compare", str(tmp_path / "r"), "--by", "device"]) == 0
    out = capsys.readouterr().out  # windows under 5 s: greenbench check judges the cell invalid
    assert "1 invalid cell(s) left out (see greenbench check); --include-invalid keeps them" in out
    assert main(["compare", str(tmp_path / "r"), "--by", "device", "--include-invalid"]) == 0
    out = capsys.readouterr().out
    assert "resnet-tiny" in out and "INVALID forward" in out
    # one device: the figures without a column of 1s, and why (issue 16, item 8)
    assert "ratios to cpu" not in out and "nothing to compare by device" in out


def test_timed_out_cell_fails_with_reason_suite_goes_on_exit_1(tmp_path, capsys):
    suite = suite_file(tmp_path, '"slm-tiny"', timeout=1)
    code = main(["run", "--suite", suite, "--out", str(tmp_path / "r")])
    assert code == 1
    captured = capsys.readouterr()
    assert "timed out after 1 s" in captured.out and "--resume" in captured.out
    frame = greenbench.load_results(tmp_path / "r")
    assert set(frame["status"]) == {"failed"}
    assert sorted(frame["phase"]) == ["decode", "prefill"]


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--workload", "gpt-9", "--out", str(out)]) == 2
    assert main(["run", "--device", "tpu", "--out", str(out)]) == 2
    if not _has_cuda():
        assert main(["run", "--device", "cuda", "--out", str(out)]) == 2
    assert main(["run", "--suite", "nope", "--out", str(out)]) == 2
    assert main(["run", "--resume", "nope", "--out", str(out)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("greenbench: error: ") for line in errors)
    assert not out.exists()


def _has_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_killed_run_keeps_finished_cells_and_resume_finishes_the_rest(tmp_path):
    out = tmp_path / "results"
    suite = suite_file(tmp_path, '"resnet-tiny", "slm-tiny"')
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenbench", "run", "--suite", suite, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    records = []
    while time.monotonic() < deadline and proc.poll() is None:
        runs = list(out.glob("*/records.jsonl"))
        if runs and runs[0].stat().st_size > 0:
            records = runs[0].read_text().splitlines()
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and the second cell's child
    proc.wait()
    assert records, "the first cell should have finished before the kill"

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    frame = greenbench.load_results(out)
    first = frame[frame["workload"] == "resnet-tiny"]
    assert len(first) == 2 and set(first["status"]) == {"ok"}
    assert "slm-tiny" not in set(frame["workload"])
    assert RunStore(run_dir).read_meta()["status"] == "running"

    result = greenbench.run(resume=run_dir.name, out=out)
    assert result.ok
    frame = greenbench.load_results(out, all_attempts=True)
    assert sorted(frame.groupby("workload").size().items()) == [("resnet-tiny", 2), ("slm-tiny", 4)]
    assert set(frame[frame["workload"] == "resnet-tiny"]["attempt"]) == {1}  # not rerun
    assert RunStore(run_dir).read_meta()["status"] == "complete"


def test_resume_rejects_suite_flags(tmp_path):
    with pytest.raises(greenbench.errors.GreenbenchError, match="--resume reruns"):
        greenbench.run(resume="x", workloads=["slm-tiny"], out=tmp_path)


@pytest.mark.slow
def test_variants_record_fidelity_training_j_per_step_and_skips(tmp_path, capsys):
    suite = suite_file(tmp_path, '"slm-tiny", "slm-tiny-train"')
    code = main(
        ["run", "--suite", suite, "--variant", "fp32,int8-dynamic", "--out", str(tmp_path / "r")]
    )
    assert code == 0  # a skip is not a failure
    out = capsys.readouterr().out
    assert "top-1 vs fp32" in out and "J/step" in out
    assert "skipped: slm-tiny-train/int8-dynamic/cpu: int8-dynamic is an inference variant" in out

    frame = greenbench.load_results(tmp_path / "r")
    ok = frame[frame["status"] == "ok"]
    int8 = ok[ok["variant"] == "int8-dynamic"]
    assert len(int8) == 4 and int8["fidelity_top1"].between(0, 1).all()
    assert (int8["fidelity_kl"] >= 0).all() and (int8["fidelity_n"] == 8).all()
    assert ok[ok["variant"] == "fp32"]["fidelity_top1"].isna().all()
    assert (int8["quantized_share"] == 1.0).all() and ok[ok["variant"] == "fp32"][
        "quantized_share"
    ].isna().all()
    assert "Linear weights were quantized" not in out
    train = ok[ok["phase"] == "train"]
    assert (
        len(train) == 2 and set(train["task"]) == {"training"} and set(train["unit"]) == {"token"}
    )
    assert (train["energy_per_call_j"] * train["calls"] - train["net_energy_j"]).abs().max() < 1e-9
    skipped = frame[frame["status"] == "skipped"]
    assert list(skipped["cell_id"]) == ["slm-tiny-train/int8-dynamic/cpu"]

    # short windows make every cell invalid (greenbench check): kept, to see the columns
    assert main(["compare", str(tmp_path / "r"), "--by", "variant", "--include-invalid"]) == 0
    assert "top-1" in capsys.readouterr().out


@pytest.mark.slow
def test_a_model_too_large_for_memory_is_skipped_by_its_child(tmp_path):
    import psutil

    needed = 1711.4e6 * 4 * 4  # slm-1.7b: fp32 weights, gradients and two AdamW moments
    if psutil.virtual_memory().available > needed:
        pytest.skip("this machine could train slm-1.7b; the skip needs less memory than that")
    suite = suite_file(tmp_path, '"slm-1.7b-train"')
    result = greenbench.run(suite, out=tmp_path / "r")
    assert result.ok
    (record,) = result.records
    assert record["status"] == "skipped"
    assert record["error"].startswith("needs about 25.5 GiB for fp32 weights, gradients and")
