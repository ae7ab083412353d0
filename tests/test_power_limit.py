"""GPU power limits as an axis (energy/power_limit.py) on the fake NVML: set around a cell,
restored however the cell ends, recorded, and refused with the reason where they cannot be.

Cells run as real child processes (stand-ins for `python -m greenbench.runner`, started through
local.child_command): one returns records, one raises, one hangs past its timeout, one SIGKILLs
itself. The parent sets and restores the limit, so the fake NVML lives in the parent: in this
test process, or, for the signals to the parent itself, in tests/power_limit_parent.py with the
limit kept in a file as a real driver keeps it after the process that set it is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil
import pytest
from fake_h100 import FakeH100, FakePynvml, SimClock, fake_torch_cuda, install
from power_limit_parent import shared_nvml

import greenbench
from greenbench import cli
from greenbench.check import verdicts
from greenbench.cli import main
from greenbench.compare import compare
from greenbench.conclusion import conclusions
from greenbench.energy import power_limit
from greenbench.errors import GreenbenchError, GreenbenchWarning, SuiteError
from greenbench.executors import local
from greenbench.executors.base import CellFailed
from greenbench.records import COLUMNS
from greenbench.runner import CellSkipped
from greenbench.suite import RunOverrides, parse_suite, resolve_suite

PARENT = str(Path(__file__).with_name("power_limit_parent.py"))
DEFAULT_MW = 700_000

# the cell's child: says it started (an event the parent sees while the child runs), then ends
# as asked: records, an error, a hang past the timeout, or a SIGKILL of itself
CHILD = """
import json, os, signal, sys, time
spec = json.load(open(sys.argv[1]))
how = spec["context"]["how"]
def say(event):
    print(json.dumps(event), flush=True)
say({"type": "stage", "stage": "measuring"})
time.sleep(0.05)  # the parent reads the stage event while this child still runs
if how == "ok":
    row = {**spec["context"], "phase": "forward", "status": "ok", "valid": True, "validity": None}
    say({"type": "records", "records": [row]})
elif how == "raise":
    say({"type": "error", "error": "RuntimeError: out of memory"})
    sys.exit(1)
elif how == "hang":
    time.sleep(30)
elif how == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def gpu(monkeypatch, tmp_path):
    """One fake H100 as cuda:0, NVML's power calls on it, greenbench's state in tmp_path."""
    nvml = FakePynvml([FakeH100(SimClock())])
    install(monkeypatch, nvml)
    fake_torch_cuda(monkeypatch, nvml)
    monkeypatch.setenv(power_limit.STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setattr(
        local, "child_command", lambda spec_path: [sys.executable, "-c", CHILD, spec_path]
    )
    return nvml.gpus[0]


def run_cell(tmp_path, how, limit_w=250, timeout_s=20.0, on_event=None):
    spec = {
        "cell": {"device": "cuda:0", "power_limit_w": limit_w},
        "context": {"how": how, "cell_id": f"w/fp32/cuda:0@{limit_w}W", "power_limit_w": limit_w},
    }
    return local.run_in_child(spec, tmp_path / "cell.log", timeout_s, on_event or (lambda e: None))


def state_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "state").glob("power-limits-*.json"))


@pytest.mark.parametrize("how", ["ok", "raise", "hang", "sigkill"])
def test_the_limit_is_in_force_while_the_child_runs_and_restored_however_it_ends(
    gpu, tmp_path, how
):
    during = []

    def on_event(event):  # while the child runs
        during.append(gpu.power_limit_mw)
        assert state_files(tmp_path), "the original limit is on disk while the new one is set"

    if how == "ok":
        (record,) = run_cell(tmp_path, how, on_event=on_event)
        assert record["power_limit_w"] == 250 and record["power_limit_default_w"] == 700
        assert record["valid"] is True
    else:
        expected = {
            "raise": "RuntimeError: out of memory",
            "hang": "timed out after 1 s",
            "sigkill": "child process killed by SIGKILL",
        }[how]
        with pytest.raises(CellFailed, match=expected):
            run_cell(tmp_path, how, timeout_s=1.0 if how == "hang" else 20.0, on_event=on_event)
    assert during == [250_000]
    assert gpu.power_limit_mw == DEFAULT_MW and gpu.limits_set == [250_000, DEFAULT_MW]
    assert state_files(tmp_path) == []  # nothing left for a later run to restore


def test_a_limit_changed_during_the_cell_makes_its_windows_invalid(gpu, tmp_path):
    def someone_else_sets_it(event):
        gpu.power_limit_mw = 300_000  # nvidia-smi -pl 300 by someone, mid-cell

    (record,) = run_cell(tmp_path, "ok", on_event=someone_else_sets_it)
    assert record["valid"] is False
    assert "power limit changed from 250 W to 300 W during the cell" in record["validity"]
    assert gpu.power_limit_mw == DEFAULT_MW  # the original, not what it was changed to


def test_without_the_privilege_the_cell_is_skipped_with_the_fix_and_nothing_runs(gpu, tmp_path):
    gpu.power_limit_permission = False
    started = []
    with pytest.raises(CellSkipped) as skipped:
        run_cell(tmp_path, "ok", on_event=started.append)
    reason = str(skipped.value)
    assert "needs root" in reason and "run greenbench as root" in reason and "sudo" in reason
    assert "Insufficient Permissions" in reason and "\n" not in reason
    assert not started and gpu.power_limit_mw == DEFAULT_MW and state_files(tmp_path) == []


def test_a_rocm_torch_skips_a_power_limit_without_touching_nvml(gpu, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.version, "hip", "6.2.41133-dd7f95766", raising=False)
    with pytest.raises(CellSkipped, match="ROCm build \\(AMD GPU\\).*amd-smi"):
        run_cell(tmp_path, "ok")
    assert gpu.limits_set == [] and state_files(tmp_path) == []


def test_a_board_that_cannot_set_a_limit_skips_the_cell_saying_so(gpu, tmp_path):
    gpu.power_limit_supported = False
    with pytest.raises(CellSkipped, match="does not let its power limit be set.*Not Supported"):
        run_cell(tmp_path, "ok")
    assert gpu.limits_set == [] and state_files(tmp_path) == []


def test_a_limit_another_live_greenbench_holds_is_not_touched(gpu, tmp_path):
    other = psutil.Process(os.getppid())  # alive for the whole test
    state = power_limit.state_path()
    state.parent.mkdir(parents=True)
    entry = {"original_mw": DEFAULT_MW, "set_mw": 300_000, "pid": other.pid}
    state.write_text(json.dumps({gpu.uuid: {**entry, "started": other.create_time()}}))
    gpu.power_limit_mw = 300_000
    with pytest.raises(CellSkipped, match=f"another greenbench process \\(pid {other.pid}\\)"):
        run_cell(tmp_path, "ok")
    assert gpu.power_limit_mw == 300_000 and gpu.limits_set == []


def test_a_limit_outside_the_gpus_range_is_one_line_before_anything_runs(
    gpu, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "results"
    code = main(
        ["run", "--workload", "resnet-tiny", "--device", "cuda:0", "--power-limit", "250,900"]
        + ["--out", str(out)]
    )
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "greenbench: error: power_limit_w: 900 W is outside what cuda:0 (NVIDIA H100 80GB "
        "HBM3) allows, 200..700 W; pick limits in that range"
    )
    assert not out.exists() and gpu.limits_set == []


def test_sigterm_to_the_parent_restores_the_limit(tmp_path):
    limit_file, ready, child = _start_parent(tmp_path, signal.SIGTERM)
    assert limit_file.read_text() == str(DEFAULT_MW)
    assert state_files(tmp_path) == [] and not psutil.pid_exists(child)


def test_a_sigkilled_parents_limit_is_restored_by_the_next_run(tmp_path, monkeypatch):
    limit_file, ready, child = _start_parent(tmp_path, signal.SIGKILL)
    assert limit_file.read_text() == "250000"  # left set: nothing in the parent could run
    assert len(state_files(tmp_path)) == 1
    monkeypatch.setenv(power_limit.STATE_DIR_ENV, str(tmp_path / "state"))
    nvml = shared_nvml(limit_file)
    with pytest.warns(GreenbenchWarning, match="restored the power limit of GPU .* to 700 W"):
        assert power_limit.restore_left_limits(nvml) == 1
    assert limit_file.read_text() == str(DEFAULT_MW) and state_files(tmp_path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert power_limit.restore_left_limits(nvml) == 0  # nothing left: no file, no warning


def _start_parent(tmp_path, signum):
    """Start power_limit_parent.py, wait until its cell's child runs at 250 W, signal it."""
    limit_file, ready = tmp_path / "limit", tmp_path / "ready"
    env = {**os.environ, power_limit.STATE_DIR_ENV: str(tmp_path / "state")}
    args = [sys.executable, PARENT, str(limit_file), str(ready), str(tmp_path / "cell.log")]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (ready.exists() and ready.read_text()) and proc.poll() is None:
        assert time.monotonic() < deadline, "the parent's child never started"
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    assert limit_file.read_text() == "250000"
    proc.send_signal(signum)
    _, errors = proc.communicate(timeout=30)
    assert proc.returncode == (143 if signum == signal.SIGTERM else -signal.SIGKILL), errors
    child = int(ready.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the cell's child outlived its parent"
        time.sleep(0.02)
    return limit_file, ready, child


def test_greenbench_devices_restores_what_a_killed_run_left(gpu, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "list_devices", lambda: [])  # the restore is what is tested
    state = power_limit.state_path()
    state.parent.mkdir(parents=True)
    dead = {"original_mw": DEFAULT_MW, "set_mw": 250_000, "pid": 2**22 + 7, "started": 0}
    state.write_text(json.dumps({gpu.uuid: dead}))
    gpu.power_limit_mw = 250_000
    assert main(["devices"]) == 0
    err = capsys.readouterr().err
    assert f"greenbench: warning: restored the power limit of GPU {gpu.uuid} to 700 W" in err
    assert gpu.power_limit_mw == DEFAULT_MW and not state.exists()


# the axis: suites, flags, cells, records and compare


def test_each_limit_is_its_own_cuda_cell_and_cpu_cells_are_not_multiplied():
    suite = parse_suite(
        {"workloads": ["resnet-tiny"], "devices": ["cpu", "cuda:0"], "power_limit_w": [250, 300]},
        "s.toml",
    )
    assert [c.cell_id for c in suite.cells()] == [
        "resnet-tiny/fp32/cpu",
        "resnet-tiny/fp32/cuda:0@250W",
        "resnet-tiny/fp32/cuda:0@300W",
    ]
    assert parse_suite(suite.to_dict(), "run.json") == suite  # --resume reads it back
    one = parse_suite(
        {"workloads": ["resnet-tiny"], "devices": ["cuda"], "power_limit_w": 300}, "s"
    )
    assert [c.power_limit_w for c in one.cells()] == [300]


def test_power_limits_come_from_the_flag_or_the_api_and_bad_ones_are_one_line():
    flags = RunOverrides(workloads=["resnet-tiny"], devices=["cuda:0"], power_limit_w=["250,300"])
    assert resolve_suite(flags).power_limit_w == (250, 300)
    api = RunOverrides(workloads=["resnet-tiny"], devices=["cuda:0"], power_limit_w=350)
    assert resolve_suite(api).power_limit_w == (350,)
    with pytest.raises(SuiteError, match="--power-limit: 'abc' is not a whole number of watts"):
        resolve_suite(RunOverrides(workloads=["resnet-tiny"], power_limit_w=["abc"]))
    with pytest.raises(SuiteError, match=r"^--power-limit: sets an NVIDIA GPU's power limit, bu"):
        resolve_suite(RunOverrides(workloads=["resnet-tiny"], power_limit_w=["300"]))
    with pytest.raises(SuiteError, match="key 'power_limit_w': must be a whole number"):
        parse_suite({"workloads": ["resnet-tiny"], "devices": ["cuda"], "power_limit_w": 2.5}, "s")


def _rows(limit, values, default_w=700):
    return [
        {
            "run_id": "r",
            "cell_id": f"w/fp32/cuda:0{'' if limit is None else f'@{limit}W'}",
            "attempt": 1,
            "workload": "w",
            "phase": "forward",
            "variant": "fp32",
            "device": "cuda:0",
            "node": "n",
            "params": "{}",
            "power_limit_w": limit,
            "power_limit_default_w": None if limit is None else default_w,
            "repetition": i + 1,
            "unit": "image",
            "energy_per_unit_j": v,
            "method_gpu": "nvml-counter",
            "estimated": False,
            "reliable": True,
            "status": "ok",
        }
        for i, v in enumerate(values)
    ]


def test_compare_by_power_limit_keeps_limits_apart_against_the_unlimited_cells():
    frame = pd.DataFrame(
        _rows(None, [1.0, 1.01, 0.99]) + _rows(250, [0.8, 0.81, 0.79]) + _rows(300.0, [0.9] * 3)
    ).reindex(columns=COLUMNS)
    table = compare(frame, by="power_limit_w")
    assert list(table["power_limit_w"]) == ["", "250", "300"]  # never pooled, None kept
    assert list(table["baseline"]) == [""] * 3
    assert list(table["ratio"].round(3)) == [1.0, 0.8, 0.9]
    by_variant = compare(frame, by="variant")
    assert len(by_variant) == 3  # other axes keep the limits apart too
    assert list(compare(frame.dropna(subset=["power_limit_w"]), "power_limit_w")["baseline"]) == [
        "300",
        "300",
    ]  # without unlimited cells: the highest limit


def test_a_frame_without_the_column_still_groups():
    old = pd.DataFrame(_rows(None, [1.0, 1.1])).reindex(columns=COLUMNS)
    assert len(compare(old.drop(columns=["power_limit_w"]), by="variant")) == 1


def test_greenbench_run_takes_power_limits_and_refuses_them_without_a_cuda_device(tmp_path):
    with pytest.raises(GreenbenchError, match="drop power_limit_w"):
        greenbench.run(workloads=["resnet-tiny"], power_limit_w=[300], out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_clocks_a_set_limit_holds_down_are_not_called_throttling():
    steady = [[0.1 * i, 0, 300.0, 95.0, 70.0, 1980.0] for i in range(5)]
    capped = steady + [[0.5 + 0.1 * i, 0, 250.0, 95.0, 70.0, 1500.0] for i in range(5)]

    def reasons(limit):
        group = _rows(limit, [1.0, 1.0])
        for row in group:
            row.update(gpu_trace=json.dumps(capped), valid=True)
        (verdict,) = verdicts(pd.DataFrame(group).reindex(columns=COLUMNS))
        return verdict.reasons

    assert "the SM clock fell from 1980 to 1500 MHz under load" in reasons(None)[0]
    assert reasons(250) == ()  # the driver lowers clocks to hold the limit: what was asked


def test_an_unreadable_state_file_is_a_warning_for_a_run_and_skips_a_limited_cell(gpu, tmp_path):
    state = power_limit.state_path()
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    with pytest.warns(GreenbenchWarning, match="cannot read greenbench's record of the GPU power"):
        assert power_limit.restore_left_limits() == 0
    with pytest.raises(CellSkipped, match="remove the file"):
        run_cell(tmp_path, "ok")
    assert gpu.limits_set == [] and state.read_text() == "{not json"  # nothing lost


def test_the_runs_conclusion_names_the_limit_of_each_variant_it_compares():
    def at(limit, variant, values):
        rows = _rows(limit, values)
        return [{**r, "variant": variant, "cell_id": f"w/{variant}/cuda:0@{limit}W"} for r in rows]

    data = pd.DataFrame(
        at(250, "fp32", [1.0, 1.01]) + at(250, "bf16", [0.5, 0.51])
        + at(300, "fp32", [1.0, 1.01]) + at(300, "bf16", [0.7, 0.71])
    ).reindex(columns=COLUMNS)  # fmt: skip
    found = conclusions(data)
    assert [c.heading for c in found] == [
        "w on cuda:0, power_limit_w 250, bf16",
        "w on cuda:0, power_limit_w 300, bf16",
    ]
    assert [c.phases[0].split(" [")[0] for c in found] == [
        "forward: 0.50x fp32 energy per image",
        "forward: 0.70x fp32 energy per image",
    ]  # each against fp32 at its own limit
