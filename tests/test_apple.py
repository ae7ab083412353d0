"""Apple silicon meters against fakes: zeus-apple-silicon's AppleEnergyMonitor (mJ per window,
None for what a chip lacks) and powermetrics' `-f plist` stream (NUL-separated plists with
`elapsed_ns` and the processor's cpu/gpu/ane energy in mJ)."""

import sys
import types

import pytest
from fake_base_meter import FakeBase

from greenbench.energy import apple
from greenbench.energy.meter import GpuNotMeasured

# The shape of one `powermetrics --samplers cpu_power,gpu_power,ane_power -f plist` sample,
# trimmed to the keys read (modelled on its documented output, not captured on a Mac here).
SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>is_delta</key><true/>
<key>elapsed_ns</key><integer>100000000</integer>
<key>hw_model</key><string>Mac14,2</string>
<key>processor</key><dict>
<key>cpu_energy</key><integer>%d</integer>
<key>gpu_energy</key><integer>%d</integer>
<key>ane_energy</key><integer>%d</integer>
<key>combined_power</key><real>0</real>
</dict>
</dict></plist>
"""


def sample(cpu_mj: int, gpu_mj: int, ane_mj: int = 0) -> bytes:
    return SAMPLE % (cpu_mj, gpu_mj, ane_mj) + b"\0"


class Metrics:
    def __init__(self, cpu=None, gpu=None, sram=None, ane=None, dram=None):
        self.cpu_total_mj, self.gpu_mj, self.gpu_sram_mj = cpu, gpu, sram
        self.ane_mj, self.dram_mj = ane, dram


class FakeMonitor:
    def __init__(self, metrics):
        self.metrics, self.open = metrics, set()

    def begin_window(self, label):
        assert label not in self.open  # zeus raises on a label still in use
        self.open.add(label)

    def end_window(self, label):
        self.open.remove(label)  # zeus raises on an unknown label
        return self.metrics


def test_ioreport_gives_cpu_accelerators_and_dram():
    meter = apple.IOReportMeter(FakeBase(), FakeMonitor(Metrics(1500, 2000, 250, 750, 400)))
    meter.begin_window()
    m = meter.end_window()
    assert m.energy_j == pytest.approx({"cpu": 1.5, "gpu": 3.0, "ram": 0.4})
    assert m.methods == {"cpu": "ioreport", "gpu": "ioreport", "ram": "ioreport"}
    assert m.emissions_g == pytest.approx(4.9 / 3.6e6 * 360.0)


def test_ioreport_fields_a_chip_lacks_keep_the_base_reading():
    meter = apple.IOReportMeter(FakeBase(), FakeMonitor(Metrics(cpu=1000, gpu=500)))
    meter.begin_window()
    m = meter.end_window()
    assert m.methods["ram"] == "ram-estimate" and m.energy_j["ram"] == 5.0  # no DRAM channel
    assert m.energy_j["gpu"] == pytest.approx(0.5)


def test_ioreport_monitor_reports_why_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeus_apple_silicon", None)
    assert "greenbench[apple]" in apple.ioreport_monitor()[1]

    def broken():
        raise RuntimeError("Failed to create IOReport subscription.")

    module = types.SimpleNamespace(AppleEnergyMonitor=broken)
    monkeypatch.setitem(sys.modules, "zeus_apple_silicon", module)
    assert "IOReport subscription" in apple.ioreport_monitor()[1]


def test_powermetrics_stream_split_across_reads_gives_samples():
    sampler = apple.PowermetricsSampler(None)
    data = sample(300, 100, 20) + sample(500, 0)
    sampler.feed(data[:50], now=1.0)
    assert sampler.samples == []
    sampler.feed(data[50:], now=1.1)
    assert [(s.cpu_j, s.gpu_j, s.seconds) for s in sampler.samples] == [
        (0.3, pytest.approx(0.12), 0.1),
        (0.5, 0.0, 0.1),
    ]


def test_a_window_gets_each_interval_by_its_overlap():
    sampler = apple.PowermetricsSampler(None)
    for end, cpu in ((10.1, 100), (10.2, 200), (10.3, 400)):
        sampler.feed(sample(cpu, cpu), now=end)
    cpu, gpu = sampler.energy(10.15, 10.25)  # half of the 2nd and half of the 3rd interval
    assert cpu == pytest.approx(0.3) and gpu == pytest.approx(0.3)


def test_powermetrics_meter_and_a_stream_that_stops():
    clock = iter([10.0, 10.2, 20.0, 20.5]).__next__
    sampler = apple.PowermetricsSampler(None, clock=clock)
    for end in (10.1, 10.2):
        sampler.feed(sample(100, 50, 50), now=end)
    meter = apple.PowermetricsMeter(FakeBase(), sampler)
    meter.begin_window()
    m = meter.end_window()
    assert m.energy_j["cpu"] == pytest.approx(0.2) and m.energy_j["gpu"] == pytest.approx(0.2)
    assert m.methods["cpu"] == m.methods["gpu"] == "powermetrics"
    meter.wait_s = 0.0
    meter.begin_window()
    assert "stopped sending samples" in meter.end_window().invalid


def test_without_ioreport_or_sudo_the_gpu_is_none_with_what_to_do(monkeypatch):
    monkeypatch.setattr(apple.rapl, "cpu_meter", lambda zone: FakeBase())
    monkeypatch.setattr(apple, "ioreport_monitor", lambda: (None, "zeus-apple-silicon is missing"))
    monkeypatch.setattr(apple, "passwordless_sudo", lambda: False)
    meter = apple.apple_meter(None)
    assert isinstance(meter, GpuNotMeasured)
    assert "passwordless sudo for powermetrics" in meter.end_window().note
    monkeypatch.setattr(apple, "ioreport_monitor", lambda: (FakeMonitor(Metrics(1)), None))
    assert isinstance(apple.apple_meter(None), apple.IOReportMeter)
