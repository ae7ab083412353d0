"""Intel GPUs measured through Level Zero Sysman, against the fake pyzes (tests/fake_pyzes.py)."""

import pytest
from fake_base_meter import FakeBase
from fake_pyzes import FakeDomain, FakeGpu, make_pyzes

from greenbench.backends import xpu
from greenbench.energy import level_zero
from greenbench.energy.level_zero import LevelZeroMeter
from greenbench.energy.meter import GpuNotMeasured, SharedPackageMeter
from greenbench.errors import GreenbenchError

ARC = bytes(range(16))
MAX = bytes(range(16, 32))


def arc(**counter) -> FakeGpu:
    return FakeGpu("Intel Arc A770", ARC, domains=[FakeDomain(1, **counter)])


def test_sysman_finds_the_card_domain_of_a_discrete_gpu_and_marks_an_igpu():
    stacks = [FakeDomain(3, on_subdevice=True), FakeDomain(2), FakeDomain(1)]
    gpus = level_zero.sysman_gpus(
        make_pyzes(
            [
                FakeGpu("Iris Xe", bytes(16), integrated=True),
                FakeGpu("Max 1550", MAX, domains=stacks),
            ]
        )
    )
    assert [(g.name, g.integrated) for g in gpus] == [("Iris Xe", True), ("Max 1550", False)]
    assert gpus[1].uuid == MAX.hex() and gpus[1].power.value == 1102  # the card, not a stack


def test_a_driver_without_the_power_extension_still_gives_the_device_level_domain():
    old = [FakeDomain(3, on_subdevice=True, knows_ext=False), FakeDomain(1, knows_ext=False)]
    (gpu,) = level_zero.sysman_gpus(make_pyzes([FakeGpu("Max 1100", MAX, domains=old)]))
    assert gpu.power.value == 1001 and gpu.reason is None


def test_a_window_is_the_counter_step_in_joules_across_a_uint64_wrap():
    domain = FakeDomain(1, energy_uj=2**64 - 1_000_000, timestamp_us=5)
    zes = make_pyzes([FakeGpu("Arc", ARC, domains=[domain])])
    meter = LevelZeroMeter(FakeBase(), zes, level_zero.sysman_gpus(zes)[0])
    meter.begin_window()
    domain.energy_uj, domain.timestamp_us = 2**64 + 2_500_000, 1_000_005  # wrapped
    m = meter.end_window()
    assert m.energy_j["gpu"] == pytest.approx(3.5)
    assert m.methods["gpu"] == "level-zero-counter" and m.invalid is None
    assert m.emissions_g == pytest.approx(3.5 / 3.6e6 * 360.0)


def test_a_counter_whose_timestamp_stands_still_makes_the_window_invalid():
    domain = FakeDomain(1, energy_uj=10, timestamp_us=7)
    zes = make_pyzes([FakeGpu("Arc", ARC, domains=[domain])])
    meter = LevelZeroMeter(FakeBase(), zes, level_zero.sysman_gpus(zes)[0])
    meter.begin_window()
    assert "did not advance" in meter.end_window().invalid


def test_meter_choice_follows_what_sysman_exposes(monkeypatch):
    monkeypatch.setattr(xpu.rapl, "cpu_meter", lambda zone: FakeBase())
    monkeypatch.setattr(xpu, "torch_uuid_of", lambda index: None)
    monkeypatch.delenv("ZE_AFFINITY_MASK", raising=False)
    assert isinstance(xpu.xpu_meter(0, None, make_pyzes([arc()])), LevelZeroMeter)
    igpu = make_pyzes([FakeGpu("Iris Xe", bytes(16), integrated=True)])
    meter = xpu.xpu_meter(0, None, igpu)
    assert isinstance(meter, SharedPackageMeter)
    assert meter.end_window().methods["gpu"] == "in-cpu-package"
    unreadable = xpu.xpu_meter(0, None, make_pyzes([arc(readable=False)]))
    m = unreadable.end_window()
    assert m.methods["gpu"] == "none" and "energy counter cannot be read" in m.note
    no_card = xpu.xpu_meter(
        0, None, make_pyzes([FakeGpu("Arc", ARC, domains=[FakeDomain(3, True)])])
    )
    assert "no card-level power domain" in no_card.end_window().note
    failed = xpu.xpu_meter(0, None, make_pyzes([arc()], init_rc=0x78000001))
    assert isinstance(failed, GpuNotMeasured) and "zesInit failed" in failed.reason


def test_without_pyzes_the_gpu_is_none_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(xpu.rapl, "cpu_meter", lambda zone: FakeBase())
    monkeypatch.setitem(__import__("sys").modules, "pyzes", None)  # import fails
    m = xpu.xpu_meter(0, None).end_window()
    assert m.methods["gpu"] == "none" and "greenbench[intel]" in m.note


GPUS = [level_zero.SysmanGpu(i, f"gpu{i}", f"{i:032x}", False) for i in range(3)]


def test_torch_index_is_matched_by_uuid_then_affinity_mask():
    assert (
        level_zero.gpu_for_torch_index(0, GPUS, "0", "00000000-0000-0000-0000-000000000002").index
        == 2
    )
    assert level_zero.gpu_for_torch_index(1, GPUS, "0,2", None).index == 2
    assert level_zero.gpu_for_torch_index(1, GPUS, None, None).index == 1
    with pytest.raises(GreenbenchError, match="sub-device 2.1"):
        level_zero.gpu_for_torch_index(1, GPUS, "0,2.1", None)
    with pytest.raises(GreenbenchError, match="cannot be matched"):
        level_zero.gpu_for_torch_index(1, GPUS, "2", None)
    with pytest.raises(GreenbenchError, match="no GPU with UUID"):
        level_zero.gpu_for_torch_index(0, GPUS, None, "ffff")


def test_devices_row_without_an_xpu_names_what_to_install():
    (row,) = xpu.xpu_rows()
    assert not row.present and "greenbench[intel]" in row.method
