"""A GH200's NVML counter covers the whole module (CPU, GPU, memory): its cells say so and add
no CodeCarbon CPU or RAM on top (no double count)."""

from __future__ import annotations

import sys

import pytest
from fake_h100 import FakeH100, FakePynvml, SimClock, fake_torch_cuda, install

from greenbench.backends import cuda
from greenbench.carbon.zones import resolve_zone
from greenbench.energy.grace_hopper import ModuleMeter, is_grace_hopper
from greenbench.energy.methods import METHODS, is_estimate
from greenbench.energy.nvml import NvmlGpu

ZONE = resolve_zone("GB")


def gh200(monkeypatch, c2c=True, name="NVIDIA GH200 480GB"):
    clock = SimClock()
    gpu = FakeH100(clock, name=name)
    gpu.c2c = c2c
    nvml = FakePynvml([gpu])
    install(monkeypatch, nvml)
    fake_torch_cuda(monkeypatch, nvml)
    return clock, gpu, nvml


def test_a_gh200_cell_is_the_module_counter_with_cpu_and_ram_inside_it(monkeypatch):
    clock, gpu, nvml = gh200(monkeypatch)
    meter = cuda.gpu_meter(0, ZONE, lambda event: None)
    assert isinstance(meter, ModuleMeter) and meter.cooldown is not None
    try:
        meter.begin_window()
        t0 = clock.now
        gpu.run_load(2.0)
        m = meter.end_window()
    finally:
        meter.close()
    assert m.methods == {
        "cpu": "in-gpu-module",
        "gpu": "nvml-module-counter",
        "ram": "in-gpu-module",
    }
    assert m.energy_j["cpu"] == m.energy_j["ram"] == 0.0
    assert m.energy_j["gpu"] == pytest.approx(gpu.energy_between(t0, clock.now), rel=0.02)
    assert m.emissions_g == pytest.approx(m.energy_j["gpu"] / 3.6e6 * m.carbon_intensity_g_per_kwh)
    assert "covers the whole module" in (m.note or "")


def test_an_h100_keeps_codecarbons_cpu_and_ram(monkeypatch):
    _, gpu, _ = gh200(monkeypatch, c2c=False, name="NVIDIA H100 80GB HBM3")
    meter = cuda.gpu_meter(0, ZONE, lambda event: None)
    try:
        meter.begin_window()
        gpu.run_load(0.5)
        m = meter.end_window()
    finally:
        meter.close()
    assert m.methods["gpu"] == "nvml-counter" and m.methods["cpu"] == "rapl"


def test_without_nvmls_c2c_call_the_name_tells_a_gh200():
    class OldNvml:  # an older pynvml: no nvmlDeviceGetC2cModeInfoV
        NVMLError = RuntimeError

    def gpu(name):
        return NvmlGpu(0, "GPU-1", "00000009:01:00.0", name, handle=None)

    assert is_grace_hopper(OldNvml(), gpu("NVIDIA GH200 480GB"))
    assert not is_grace_hopper(OldNvml(), gpu("NVIDIA H100 80GB HBM3"))


def test_devices_lists_a_gh200_by_its_module_counter(monkeypatch):
    _, _, nvml = gh200(monkeypatch)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    import torch

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA GH200 480GB")
    (row,) = cuda.cuda_rows()
    assert (
        row.method.startswith("nvml-module-counter") and "CPU and RAM are not added" in row.method
    )
    labels = ("nvml-module-counter", "nvml-module-power", "in-gpu-module")
    assert all(label in METHODS and not is_estimate(label) for label in labels)
