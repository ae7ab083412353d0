"""AMD GPUs under a ROCm torch: measured through AMD SMI (fake_amdsmi), never NVML; torch's
index mapped through the visible-devices variables; the counter's units, keys, wrap and
start-up check; power integration where the counter is missing or wrong."""

from __future__ import annotations

import os
import re
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import FakeClock, FakeMeter
from fake_amdsmi import NO_PERMISSION, FakeAmdGpu, FakeAmdSmi, Tripwire

from greenbench import environment
from greenbench.backends import cuda_family, rocm
from greenbench.carbon.zones import resolve_zone
from greenbench.energy import amdsmi as amd
from greenbench.energy.methods import METHODS, is_estimate
from greenbench.errors import GreenbenchError

ZONE = resolve_zone("GB")
SERIALS = ("0xAAAA000000000001", "0xBBBB000000000002", "0xCCCC000000000003")


def machine(clock, hip_ids=(0, 1, 2), **kwargs):
    """Three GPUs in PCI order c1, c2, c3; HIP numbers them by `hip_ids`."""
    gpus = [
        FakeAmdGpu(clock, bdf=f"0000:c{i + 1}:00.0", serial=s, hip_id=h, **kwargs)
        for i, (s, h) in enumerate(zip(SERIALS, hip_ids, strict=True))
    ]
    return FakeAmdSmi(gpus)


def listed(fake):
    fake.amdsmi_init()
    return amd.amd_gpus(fake)


@pytest.fixture
def rocm_torch(monkeypatch):
    """torch as a ROCm build with one visible GPU, pynvml a tripwire."""
    tripwire = Tripwire()
    monkeypatch.setattr(torch.version, "hip", "6.2.41133-dd7f95766", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "AMD Instinct MI300X")
    monkeypatch.setitem(sys.modules, "pynvml", tripwire)
    monkeypatch.setattr(amd, "torch_pci_of", lambda index: None)
    for name in ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return tripwire


def test_hip_numbers_gpus_through_rocr_then_hip_visible_devices():
    gpus = listed(machine(FakeClock(), hip_ids=(2, 0, 1)))  # HIP's order is not PCI's
    by_bdf = {g.bus_id: g for g in gpus}
    assert [g.bus_id for g in amd.visible_gpus(gpus, {})] == [
        "0000:c2:00.0",
        "0000:c3:00.0",
        "0000:c1:00.0",
    ]
    env = {"ROCR_VISIBLE_DEVICES": "2,0", "HIP_VISIBLE_DEVICES": "1"}  # HIP picks among ROCR's
    assert amd.gpu_for_torch_index(0, gpus, env) is by_bdf["0000:c2:00.0"]
    env = {"CUDA_VISIBLE_DEVICES": "GPU-cccc", "ROCR_VISIBLE_DEVICES": "GPU-cccc000000000003"}
    assert amd.gpu_for_torch_index(0, gpus, env) is by_bdf["0000:c3:00.0"]


def test_torchs_pci_bus_id_decides_over_the_variables():
    gpus = listed(machine(FakeClock()))
    found = amd.gpu_for_torch_index(0, gpus, {"HIP_VISIBLE_DEVICES": "0"}, torch_pci=(0, 0xC3, 0))
    assert found.bus_id == "0000:c3:00.0"
    with pytest.raises(GreenbenchError, match="no AMD SMI GPU is at PCI 0000:99:00"):
        amd.gpu_for_torch_index(0, gpus, {}, torch_pci=(0, 0x99, 0))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HIP_VISIBLE_DEVICES": "GPU-"}, "matches 3 AMD GPUs; give its full UUID"),
        ({"HIP_VISIBLE_DEVICES": "gpu0"}, "entry 'gpu0' is not an index or UUID"),
        ({"ROCR_VISIBLE_DEVICES": "7"}, "ROCR_VISIBLE_DEVICES entry 7: only 3 AMD GPU"),
        ({"HIP_VISIBLE_DEVICES": "1"}, "cuda:1 is not visible: AMD SMI sees 1 GPU"),
    ],
)
def test_a_visible_devices_entry_that_names_no_single_gpu_is_a_clear_error(env, message):
    gpus = listed(machine(FakeClock()))
    with pytest.raises(GreenbenchError, match=message):
        amd.gpu_for_torch_index(1 if "not visible" in message else 0, gpus, env)


@pytest.mark.parametrize("old_key", [False, True])
def test_counter_ticks_times_resolution_are_joules_under_either_key(old_key):
    clock = FakeClock()
    fake = FakeAmdSmi([FakeAmdGpu(clock, power_w=200.0, resolution_uj=15.3)], old_key=old_key)
    (gpu,) = listed(fake)
    ticks0, resolution = amd.counter_ticks(fake, gpu)
    clock.sleep(10.0)
    ticks1, _ = amd.counter_ticks(fake, gpu)
    assert (ticks1 - ticks0) * resolution / 1e6 == pytest.approx(2000.0, abs=1e-3)


@pytest.mark.parametrize(
    ("counter", "scale", "use", "note"),
    [
        ("ok", 1.0, True, None),
        ("frozen", 1.0, False, "failed the start-up check .* ROCm/amdsmi#38"),
        ("ok", 6.0, False, "failed the start-up check"),
        ("missing", 1.0, False, "no usable energy counter \\(not supported on this GPU\\)"),
        ("denied", 1.0, False, "permission denied \\(add the user to the 'render'"),
    ],
)
def test_the_start_up_probe_trusts_only_a_counter_that_tracks_power(counter, scale, use, note):
    clock = FakeClock()
    fake = FakeAmdSmi([FakeAmdGpu(clock, counter=counter, counter_scale=scale)])
    (gpu,) = listed(fake)
    probe = amd.probe_counter(fake, gpu, clock.sleep, clock)
    assert probe.use_counter is use
    if note is None:
        assert probe.note is None
    else:
        assert re.search(note, probe.note or "")


def test_a_gpu_with_neither_counter_nor_power_fails_with_the_reason():
    clock = FakeClock()
    fake = FakeAmdSmi([FakeAmdGpu(clock, counter="missing", power_fields=())])
    (gpu,) = listed(fake)
    with pytest.raises(GreenbenchError, match="neither energy .* nor power .*MI250"):
        amd.probe_counter(fake, gpu, clock.sleep, clock)


def windows(fake, clock, use_counter, seconds=5.0, load_w=300.0):
    """One window of `seconds` at `load_w`, sampled at 10 Hz on the fake clock."""
    (gpu,) = listed(fake)
    sampler = amd.AmdSmiSampler(fake, [gpu], clock=clock)
    meter = amd.AmdSmiGpuMeter(fake, [gpu], sampler, [use_counter])
    fake.gpus[0].power_w = load_w
    fake.gpus[0].activity = 90
    meter.begin_window()
    for _ in range(int(seconds * 10)):
        sampler.sample_once()
        clock.sleep(0.1)
    return meter.end_window()


def test_a_counter_window_reads_the_counter_and_a_power_window_the_trace():
    clock = FakeClock()
    window = windows(FakeAmdSmi([FakeAmdGpu(clock)]), clock, use_counter=True)
    assert window.method == "amdsmi-counter" and window.invalid is None
    assert window.energy_j == pytest.approx(1500.0, rel=1e-3)
    clock = FakeClock()
    window = windows(FakeAmdSmi([FakeAmdGpu(clock, counter="missing")]), clock, False)
    assert window.method == "amdsmi-power" and window.energy_j == pytest.approx(1500.0, rel=0.03)
    assert window.trace and window.trace[0].temperature_c == 40.0


def test_only_average_power_is_labelled_averaged():
    clock = FakeClock()
    fake = FakeAmdSmi(
        [FakeAmdGpu(clock, counter="missing", power_fields=("average_socket_power",))]
    )
    assert windows(fake, clock, use_counter=False).method == "amdsmi-power-averaged"


def test_a_32_bit_wrap_is_unwrapped_and_a_step_back_integrates_that_window():
    clock = FakeClock()
    gpu = FakeAmdGpu(clock, wrap_ticks=2**32, boot_ticks=2**32 - 1000)  # wraps at once
    window = windows(FakeAmdSmi([gpu]), clock, use_counter=True)
    assert window.method == "amdsmi-counter" and window.energy_j == pytest.approx(1500, rel=1e-3)
    clock = FakeClock()
    gpu = FakeAmdGpu(clock, boot_ticks=2**40)
    fake = FakeAmdSmi([gpu])
    (listed_gpu,) = listed(fake)
    sampler = amd.AmdSmiSampler(fake, [listed_gpu], clock=clock)
    meter = amd.AmdSmiGpuMeter(fake, [listed_gpu], sampler, [True])
    meter.begin_window()
    for _ in range(30):
        sampler.sample_once()
        clock.sleep(0.1)
    gpu.back_step_ticks = 10**9  # ROCm/amdsmi#115: the counter goes backward
    window = meter.end_window()
    assert window.method == "amdsmi-power"
    assert "could not be read at a window edge" in (window.note or "")


def test_permission_errors_and_missing_amdsmi_name_the_fix(monkeypatch):
    clock = FakeClock()
    fake = FakeAmdSmi([FakeAmdGpu(clock)])
    fake.fail_init = NO_PERMISSION
    with pytest.raises(GreenbenchError, match="AMD SMI cannot start \\(permission denied"):
        amd.amd_meter_for(0, FakeMeter(clock, {}, {}), fake, clock.sleep, clock)
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # not installed: import fails
    with pytest.raises(GreenbenchError, match='pip install "greenbench\\[amd\\]"'):
        amd.load_amdsmi()


def test_a_rocm_torch_is_measured_through_amd_smi_and_never_reaches_nvml(rocm_torch, monkeypatch):
    fake = FakeAmdSmi([FakeAmdGpu(time.monotonic, power_w=150.0)])
    fake.gpus[0].pids = [os.getpid(), 424242]  # another process computes on it
    monkeypatch.setitem(sys.modules, "amdsmi", fake)
    monkeypatch.setattr(amd, "PROBE_S", 0.02)
    clock = FakeClock()
    cpu_ram = FakeMeter(clock, {"cpu": 10.0, "ram": 2.0}, {"cpu": "rapl", "ram": "ram-estimate"})
    monkeypatch.setattr(rocm, "CodeCarbonMeter", lambda zone: cpu_ram)
    family = cuda_family.BACKEND
    assert family.member() is rocm.BACKEND
    family.check_available("cuda:0")
    meter = family.make_meter("cuda:0", ZONE, lambda event: None)
    try:
        meter.begin_window()
        clock.sleep(1.0)
        m = meter.end_window()
        assert meter.cooldown.temperature_c() == 40.0  # type: ignore[attr-defined]
    finally:
        meter.close()
    assert m.methods == {"cpu": "rapl", "gpu": "amdsmi-counter", "ram": "ram-estimate"}
    assert m.gpu_foreign_pids == (424242,)
    assert fake.initialised == 0  # shut down on close
    rows = family.device_rows()
    assert rows[0].device == "cuda:0" and rows[0].method.startswith("amdsmi-counter")
    assert any(r.what == "NVIDIA GPU" and not r.present for r in rows)
    assert rocm_torch.touched == []


def test_amd_labels_are_measurements_with_descriptions():
    for label in ("amdsmi-counter", "amdsmi-power", "amdsmi-power-averaged"):
        assert label in METHODS and not is_estimate(label)


def test_recording_the_environment_under_a_rocm_torch_leaves_nvml_alone(rocm_torch, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: _mi300x())
    assert environment.gpu_driver() is None
    assert environment.gpus()[0]["name"] == "AMD Instinct MI300X"
    assert rocm_torch.touched == []


def _mi300x():
    return SimpleNamespace(name="AMD Instinct MI300X", total_memory=192 * 2**30, major=9, minor=4)
