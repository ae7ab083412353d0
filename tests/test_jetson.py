"""Jetson: CUDA cells measured from the board's INA3221 power rails, found in a fake sysfs tree
in both layouts L4T has used; the label and note say which rails count as what."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FakeClock, FakeMeter

from greenbench.backends import cuda_family, jetson
from greenbench.energy import jetson as rails
from greenbench.energy.methods import METHODS, is_estimate
from greenbench.errors import GreenbenchError


def write(path: Path, text: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


def agx_orin(root: Path, gpu_mw=9000, cpu_mw=3000) -> Path:
    """Older L4T's iio layout: rail_name_N and in_power{N}_input in mW."""
    iio = root / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    for index, (name, mw) in enumerate(
        [("VDD_GPU_SOC", gpu_mw), ("VDD_CPU_CV", cpu_mw), ("VIN_SYS_5V0", 4000)]
    ):
        write(iio / f"rail_name_{index}", name)
        write(iio / f"in_power{index}_input", mw)
    write(root / "etc/nv_tegra_release", "# R35 (release), REVISION: 4.1")
    write(root / "sys/devices/platform/17000000.gpu/load", 870)  # per mille
    write(root / "sys/devices/virtual/thermal/thermal_zone1/type", "gpu-thermal")
    write(root / "sys/devices/virtual/thermal/thermal_zone1/temp", 51500)
    return root


def orin_nano(root: Path, millivolts=5000, milliamps=1200) -> Path:
    """Newer L4T's hwmon layout: in{N}_label, in{N}_input mV, curr{N}_input mA."""
    hwmon = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for index, name in ((1, "VDD_IN"), (2, "VDD_CPU_GPU_CV"), (3, "VDD_SOC")):
        write(hwmon / f"in{index}_label", name)
        write(hwmon / f"in{index}_input", millivolts)
        write(hwmon / f"curr{index}_input", milliamps)
    write(hwmon / "in7_label", "sum of shunt voltages")
    write(hwmon / "in7_input", 80)
    write(root / "proc/device-tree/model", "NVIDIA Jetson Orin Nano Developer Kit\0")
    return root


def test_rails_are_found_in_both_layouts_with_their_units(tmp_path):
    found = rails.find_rails(agx_orin(tmp_path / "agx"))
    assert [(r.name, r.read_w()) for r in found] == [
        ("VDD_GPU_SOC", 9.0),
        ("VDD_CPU_CV", 3.0),
        ("VIN_SYS_5V0", 4.0),
    ]
    found = rails.find_rails(orin_nano(tmp_path / "nano"))
    assert [(r.name, r.read_w()) for r in found] == [
        ("VDD_IN", 6.0),
        ("VDD_CPU_GPU_CV", 6.0),
        ("VDD_SOC", 6.0),
    ]  # 5000 mV x 1200 mA; the shunt-voltage sum is no rail


def test_the_plan_says_which_rails_count_as_gpu_and_cpu(tmp_path):
    agx = rails.plan_rails(rails.find_rails(agx_orin(tmp_path / "agx")))
    assert agx.describe() == (
        "Jetson rails: GPU from VDD_GPU_SOC; CPU from VDD_CPU_CV; not counted: VIN_SYS_5V0"
    )
    nano = rails.plan_rails(rails.find_rails(orin_nano(tmp_path / "nano")))
    assert nano.cpu_in_gpu and "CPU inside the GPU rail" in nano.describe()


def measure(root: Path, clock: FakeClock, seconds: float = 4.0):
    plan = rails.plan_rails(rails.find_rails(root))
    sampler = rails.RailSampler(plan, root, clock=clock)
    base = FakeMeter(
        clock, {"cpu": 7.0, "ram": 2.0}, {"cpu": "cpu-load-estimate", "ram": "ram-estimate"}
    )
    meter = rails.JetsonRailMeter(base, sampler)
    meter.begin_window()
    for _ in range(int(seconds * 10)):
        sampler.sample_once()
        clock.sleep(0.1)
    return meter.end_window()


def test_a_window_integrates_the_gpu_and_cpu_rails_and_keeps_codecarbons_ram(tmp_path):
    m = measure(agx_orin(tmp_path), FakeClock())
    assert m.methods == {"cpu": "jetson-rails", "gpu": "jetson-rails", "ram": "ram-estimate"}
    assert m.energy_j["gpu"] == pytest.approx(36.0) and m.energy_j["cpu"] == pytest.approx(12.0)
    assert m.energy_j["ram"] == pytest.approx(8.0)
    assert "GPU from VDD_GPU_SOC" in (m.note or "") and m.invalid is None
    first = m.gpu_trace[0]
    assert first[2] == 9.0 and first[3] == pytest.approx(87.0) and first[4] == 51.5


def test_a_combined_cpu_gpu_rail_is_not_counted_twice(tmp_path):
    m = measure(orin_nano(tmp_path), FakeClock())
    assert m.methods["gpu"] == "jetson-rails" and m.methods["cpu"] == "in-gpu-rail"
    assert m.energy_j["cpu"] == 0.0 and m.energy_j["gpu"] == pytest.approx(24.0)


def test_a_board_without_a_gpu_rail_or_readable_rails_fails_with_the_fix(tmp_path):
    with pytest.raises(GreenbenchError, match="no GPU power rail \\(rails: none\\).*mount /sys"):
        rails.jetson_meter(FakeMeter(FakeClock(), {}, {}), tmp_path)
    root = agx_orin(tmp_path / "agx")
    (root / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0/in_power0_input").write_text("x\n")
    with pytest.raises(GreenbenchError, match="power rails cannot be read"):
        rails.jetson_meter(FakeMeter(FakeClock(), {}, {}), root)


def test_the_cuda_family_picks_the_jetson_on_an_l4t_board(tmp_path):
    board = jetson.JetsonBackend(agx_orin(tmp_path / "agx"))
    family = cuda_family.CudaFamily(jetson_board=board)
    assert family.member() is board
    assert not rails.is_jetson(tmp_path / "elsewhere")
    assert rails.is_jetson(orin_nano(tmp_path / "nano"))
    (row,) = [r for r in family.device_rows() if r.method.startswith("jetson-rails:")]
    assert "GPU from VDD_GPU_SOC" in row.method
    assert any(r.what == "NVIDIA GPU" and not r.present for r in family.device_rows())
    assert all(
        label in METHODS and not is_estimate(label) for label in ("jetson-rails", "in-gpu-rail")
    )
