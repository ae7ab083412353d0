"""NVML logic against a fake NVML: device mapping, counters, power traces, foreign processes."""

import dataclasses
import os
from types import SimpleNamespace

import pytest

from greenbench.energy import gpu_meter
from greenbench.energy.nvml import (
    NvmlGpuMeter,
    PowerSampler,
    foreign_processes,
    gpu_for_torch_index,
    integrate_power,
    nvml_gpus,
)
from greenbench.errors import GreenbenchError


class FakeNvml:
    """pynvml's calls over GPUs described as dicts; time is a counter the test moves."""

    NVML_CLOCK_SM = 1
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_SUCCESS = 0

    class NVMLError(Exception):
        pass

    def __init__(self, gpus):
        self.gpus = gpus
        self.now = 0.0
        self.initialised = 0

    def nvmlInit(self):
        self.initialised += 1

    def nvmlShutdown(self):
        self.initialised -= 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.gpus[i]

    def nvmlDeviceGetUUID(self, h):
        return h["uuid"]

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=h["bus"].encode())

    def nvmlDeviceGetName(self, h):
        return h.get("name", "Fake GPU")

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not h.get("counter", True):
            raise self.NVMLError("Not Supported")
        return h["watts"] * self.now * 1000  # mJ since boot

    def nvmlDeviceGetFieldValues(self, h, fields):
        assert fields == [self.NVML_FI_DEV_POWER_INSTANT]
        if not h.get("instant", True):  # an older driver: no instantaneous power field
            raise self.NVMLError("Not Supported")
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=int(h["watts"] * 1000)))]

    def nvmlDeviceGetPowerUsage(self, h):
        return h["watts"] * 1000  # mW

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=87)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 61

    def nvmlDeviceGetClockInfo(self, h, clock):
        return 1755

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=p, usedGpuMemory=1) for p in h.get("pids", [])]


def fleet(**overrides):
    gpus = [
        {"uuid": "GPU-aaaa1111", "bus": "00000000:17:00.0", "watts": 100.0},
        {"uuid": "GPU-bbbb2222", "bus": "00000000:65:00.0", "watts": 200.0},
        {"uuid": "GPU-bbbc3333", "bus": "00000000:CA:00.0", "watts": 300.0, "counter": False},
    ]
    for i, extra in overrides.items():
        gpus[int(i[1:])].update(extra)
    return FakeNvml(gpus)


@pytest.mark.parametrize(
    ("visible", "torch_index", "nvml_index"),
    [
        (None, 1, 1),
        ("2,0", 0, 2),  # reordered: torch's cuda:0 is NVML's GPU 2
        ("2,0", 1, 0),
        ("GPU-bbbb2222,GPU-aaaa1111", 1, 0),  # UUID form
        ("GPU-bbbc", 0, 2),  # a unique UUID prefix
    ],
)
def test_torch_indices_map_to_nvml_devices(visible, torch_index, nvml_index):
    nvml = fleet()
    assert gpu_for_torch_index(torch_index, nvml_gpus(nvml), visible).index == nvml_index


def test_torch_uuid_wins_over_the_environment():
    gpus = nvml_gpus(fleet())
    assert gpu_for_torch_index(0, gpus, "0", torch_uuid="bbbb2222").index == 1


@pytest.mark.parametrize(
    ("visible", "message"),
    [
        ("0", "is not visible"),
        ("GPU-bbb,1", "matches 2 NVML GPUs"),
        ("MIG-1234", "MIG instance"),
        ("7", "NVML sees 3 GPU"),
    ],
)
def test_bad_visibility_is_a_clear_error(visible, message):
    index = 1 if visible == "0" else 0
    with pytest.raises(GreenbenchError, match=message):
        gpu_for_torch_index(index, nvml_gpus(fleet()), visible)


def meter_on(nvml, index):
    gpu = nvml_gpus(nvml)[index]
    sampler = PowerSampler(nvml, [gpu], clock=lambda: nvml.now)
    return NvmlGpuMeter(nvml, [gpu], sampler), sampler


def test_a_gpu_with_a_counter_reports_the_counter_delta():
    nvml = fleet()
    meter, _ = meter_on(nvml, 1)
    meter.begin_window()
    nvml.now += 2.5
    window = meter.end_window()
    assert window.method == "nvml-counter"
    assert window.energy_j == pytest.approx(200.0 * 2.5)


def test_a_gpu_without_a_counter_integrates_its_power_trace_never_zero():
    nvml = fleet()
    meter, sampler = meter_on(nvml, 2)
    meter.begin_window()
    for _ in range(20):  # 10 Hz for 2 s
        sampler.sample_once()
        nvml.now += 0.1
    window = meter.end_window()
    assert window.method == "nvml-power"
    assert window.energy_j == pytest.approx(300.0 * 2.0)
    assert len(window.trace) == 21
    first = window.trace[0]
    assert (first.power_w, first.utilization_pct, first.temperature_c, first.sm_clock_mhz) == (
        300.0,
        87.0,
        61.0,
        1755.0,
    )


def test_power_integration_is_trapezoidal_and_flat_at_the_edges():
    from greenbench.energy.nvml import Sample

    samples = [Sample(1.0, 0, 100.0, 0, 0, 0), Sample(2.0, 0, 300.0, 0, 0, 0)]
    assert integrate_power(samples, 0.0, 3.0) == pytest.approx(100 + 200 + 300)
    assert integrate_power([], 0.0, 3.0) == 0.0


def _timed_sampler(nvml, sample_s, stop_after):
    """A sampler on GPU 0 whose samples take `sample_s` of the fake time and whose waits
    move it; it stops itself after `stop_after` waits. Returns it and the waits asked for."""
    waits = []
    read_power = nvml.nvmlDeviceGetFieldValues

    def slow_read(handle, fields):
        nvml.now += sample_s
        return read_power(handle, fields)

    def wait(seconds):
        waits.append(seconds)
        nvml.now += seconds
        if len(waits) == stop_after:
            sampler.stop()

    nvml.nvmlDeviceGetFieldValues = slow_read
    sampler = PowerSampler(nvml, nvml_gpus(nvml)[:1], clock=lambda: nvml.now, wait=wait)
    return sampler, waits


def test_the_sampler_loop_samples_at_10_hz_waiting_out_what_a_sample_took():
    nvml = fleet()
    sampler, waits = _timed_sampler(nvml, sample_s=0.03, stop_after=5)
    sampler.run()
    assert waits == pytest.approx([0.07] * 5)
    assert [s.t for s in sampler.samples] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert {s.power_w for s in sampler.samples} == {100.0}


def test_a_sample_slower_than_the_period_is_followed_at_once_by_the_next():
    nvml = fleet()
    sampler, waits = _timed_sampler(nvml, sample_s=0.25, stop_after=3)
    sampler.run()
    assert waits == [0.0, 0.0, 0.0]
    assert [s.t for s in sampler.samples] == pytest.approx([0.0, 0.25, 0.5])


def test_the_sampler_thread_samples_at_once_and_stop_ends_its_wait():
    import threading

    nvml = fleet()
    sampled = threading.Event()
    read_power = nvml.nvmlDeviceGetFieldValues

    def read_and_signal(handle, fields):
        sampled.set()
        return read_power(handle, fields)

    nvml.nvmlDeviceGetFieldValues = read_and_signal
    sampler = PowerSampler(nvml, nvml_gpus(nvml)[:1], period_s=3600)  # the real wait
    sampler.start()
    assert sampled.wait(timeout=30)
    sampler.stop()
    sampler._thread.join(timeout=30)  # an hour-long wait if stop did not end it
    assert not sampler._thread.is_alive()
    assert len(sampler.samples) == 1


def test_foreign_processes_on_the_measured_gpu_are_found():
    nvml = fleet(g1={"pids": [os.getpid(), 4242]})
    gpus = nvml_gpus(nvml)
    assert foreign_processes(nvml, gpus).found == [("GPU-bbbb2222", 4242)]


def _cell_meter_on(nvml, visible, base, monkeypatch):
    """The meter a cell on cuda:0 gets, over the fake NVML, its sampler driven by hand."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setattr(gpu_meter, "torch_uuid_of", lambda index: None)
    monkeypatch.setattr(gpu_meter.PowerSampler, "start", lambda self: None)
    cell_meter = gpu_meter.nvml_meter_for([0], base, nvml)
    cell_meter.gpu.sampler.clock = lambda: nvml.now
    return cell_meter


def test_the_cell_meter_adds_gpu_energy_trace_and_emissions(clock, meter, monkeypatch):
    nvml = fleet(g0={"pids": [999]})
    cell_meter = _cell_meter_on(nvml, "GPU-aaaa1111", meter, monkeypatch)
    cell_meter.begin_window()
    clock.sleep(2.0)
    nvml.now += 2.0
    m = cell_meter.end_window()
    assert m.energy_j["gpu"] == pytest.approx(200.0) and m.methods["gpu"] == "nvml-counter"
    assert m.energy_j["cpu"] == pytest.approx(20.0)  # the CPU/RAM meter's own share
    assert m.emissions_g == pytest.approx((20.0 + 4.0 + 200.0) / 3.6e6 * 200.0)
    assert m.gpu_trace and m.gpu_trace[0][1:3] == (0, 100.0)
    assert m.gpu_trace[0][6] == 1.0  # instantaneous power, as the trace says per sample
    assert m.gpu_foreign_pids == (999,)
    cell_meter.close()
    assert nvml.initialised == 0


def test_records_keep_the_trace_and_foreign_pids_as_json(clock, meter):
    import dataclasses
    import json

    from greenbench.protocol import Phase, ProtocolSettings, run_protocol
    from greenbench.records import measured_records

    class Traced:
        def __init__(self, inner):
            self.inner = inner

        def begin_window(self):
            self.inner.begin_window()

        def end_window(self):
            m = self.inner.end_window()
            return dataclasses.replace(
                m, gpu_trace=((0.0, 0, 95.0, 80.0, 60.0, 1700.0),), gpu_foreign_pids=(7,)
            )

    def step():
        clock.sleep(1.0)

    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, idle_s=1.0)
    result = run_protocol(
        [Phase("forward", "image", 1, step)],
        Traced(meter),
        settings,
        clock=clock,
        sleep=clock.sleep,
    )
    (row,) = measured_records({"cell_id": "c"}, result)
    assert json.loads(row["gpu_trace"]) == [[0.0, 0, 95.0, 80.0, 60.0, 1700.0]]
    assert json.loads(row["gpu_foreign_pids"]) == [7]


def _has_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
def test_real_nvml_maps_cuda_0_and_reads_its_counter():
    import pynvml

    pynvml.nvmlInit()
    try:
        gpu = gpu_for_torch_index(
            0, nvml_gpus(pynvml), os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_meter.torch_uuid_of(0)
        )
        assert pynvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle) > 0
    finally:
        pynvml.nvmlShutdown()


def test_cooldown_waits_until_power_and_temperature_settle_and_is_bounded():
    from greenbench.energy.nvml import Cooldown

    nvml = fleet()
    gpu = nvml_gpus(nvml)[0]
    readings = {"power": 100.0, "temp": 50.0}
    nvml.nvmlDeviceGetPowerUsage = lambda h: readings["power"] * 1000
    nvml.nvmlDeviceGetTemperature = lambda h, s: readings["temp"]

    def sleep(seconds):
        nvml.now += seconds
        readings["power"] = max(100.0, readings["power"] - 50.0)  # cooling down
        readings["temp"] = max(50.0, readings["temp"] - 2.0)

    cooldown = Cooldown(nvml, [gpu], sleep=sleep, clock=lambda: nvml.now)
    cooldown.calibrate(seconds=0.5)
    assert cooldown.idle[0] == (100.0, 50.0)
    readings.update(power=300.0, temp=60.0)  # right after a window
    waited = cooldown(max_s=30.0)
    assert 0 < waited < 30.0 and cooldown.settled()
    readings.update(power=400.0, temp=90.0)
    nvml.nvmlDeviceGetTemperature = lambda h, s: 90.0  # never cools: the wait is bounded
    assert cooldown(max_s=2.0) == pytest.approx(2.0, abs=0.21)


def test_the_protocol_records_the_cooldown_before_each_later_repetition(clock, meter):
    from greenbench.protocol import Phase, ProtocolSettings, run_protocol

    events = []

    class FakeCooldown:
        def temperature_c(self):
            return 40.0

        def calibrate(self):
            events.append(("calibrate", clock()))

        def __call__(self, max_s):
            events.append(("cool", max_s))
            clock.sleep(1.5)
            return 1.5

    def step():
        clock.sleep(1.0)

    settings = ProtocolSettings(repetitions=3, min_window_s=1.0, idle_s=1.0, cooldown_max_s=20)
    phases = [Phase("prefill", "token", 1, step), Phase("decode", "token", 1, step)]
    result = run_protocol(
        phases, meter, settings, clock=clock, sleep=clock.sleep, cooldown=FakeCooldown()
    )
    # a steady temperature still takes TEMPERATURE_SPAN_S of idle history before it counts
    assert events[0] == ("calibrate", pytest.approx(10.0))
    # before repetitions 2 and 3, and before the idle after the windows
    assert events[1:] == [("cool", 20), ("cool", 20), ("cool", 20)]
    assert [w.cooldown_s for w in result.windows] == [0, 0, 1.5, 0, 1.5, 0]
    assert result.idle.temperature_c() == 40.0


def test_the_terminal_warns_about_foreign_processes_on_a_measured_gpu():
    import pandas as pd
    from rich.console import Console

    from greenbench.terminal import print_foreign_processes

    frame = pd.DataFrame(
        {"cell_id": ["slm/fp32/cuda:0", "slm/fp32/cuda:0"], "gpu_foreign_pids": ["[4242]", None]}
    )
    console = Console(record=True, width=200)
    print_foreign_processes(frame, console)
    text = console.export_text()
    assert (
        "warning: slm/fp32/cuda:0: other processes computed on its GPU during 1 window(s)" in text
    )


def _load_on(nvml, clock, sampler):
    def load(seconds):
        for _ in range(round(seconds * 10)):  # the sampler's 10 Hz, by hand
            sampler.sample_once()
            nvml.now += 0.1
            clock.sleep(0.1)

    return load


def test_the_crosscheck_agrees_with_a_direct_counter_read_of_the_same_gpu(
    clock, meter, monkeypatch
):
    from greenbench.energy.crosscheck import check_window, summarise

    nvml = fleet()
    cell_meter = _cell_meter_on(nvml, "1", meter, monkeypatch)
    gpu = nvml_gpus(nvml)[1]
    direct = lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle) / 1000  # noqa: E731
    load = _load_on(nvml, clock, cell_meter.gpu.sampler)
    checks = [
        check_window(cell_meter, direct, load, 3.0, lambda: None, clock=lambda: nvml.now)
        for _ in range(3)
    ]
    assert [c.method for c in checks] == ["nvml-counter"] * 3
    assert [c.greenbench_j for c in checks] == pytest.approx([600.0] * 3)
    assert checks[0].direct_j == pytest.approx(600.0) and checks[0].mean_power_w == 200.0
    assert checks[0].trace_j == pytest.approx(600.0)  # the 10 Hz trace, integrated
    summary = summarise(checks)
    assert summary.passed and summary.max_abs_difference < 1e-9 and summary.energy_cv < 1e-9


def test_the_crosscheck_fails_when_the_meter_reads_another_gpu(clock, meter, monkeypatch):
    from greenbench.energy.crosscheck import check_window, summarise

    nvml = fleet()
    cell_meter = _cell_meter_on(nvml, "0", meter, monkeypatch)  # the meter's GPU: 100 W
    other = nvml_gpus(nvml)[1]  # the reference reads the 200 W one
    direct = lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(other.handle) / 1000  # noqa: E731
    load = _load_on(nvml, clock, cell_meter.gpu.sampler)
    check = check_window(cell_meter, direct, load, 2.0, lambda: None, clock=lambda: nvml.now)
    assert check.difference == pytest.approx(-0.5)
    summary = summarise([check], tolerance=0.02)
    assert not summary.passed and summary.energy_cv == 0.0


def sampled_window(nvml, meter, sampler, seconds=3.0):
    meter.begin_window()
    for _ in range(round(seconds * 10)):  # 10 Hz
        sampler.sample_once()
        nvml.now += 0.1
    return meter.end_window()


class FlakyNvml(FakeNvml):
    """A counter read that fails once, at the `fail_at`-th read."""

    def __init__(self, gpus, fail_at):
        super().__init__(gpus)
        self.reads, self.fail_at = 0, fail_at

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self.reads += 1
        if self.reads == self.fail_at:
            raise self.NVMLError("Unknown Error")
        return super().nvmlDeviceGetTotalEnergyConsumption(h)


def test_a_counter_read_failing_at_an_edge_labels_that_window_integrated():
    nvml = FlakyNvml(fleet().gpus, fail_at=3)  # 1: the meter's probe, 2: begin, 3: end
    meter, sampler = meter_on(nvml, 1)
    window = sampled_window(nvml, meter, sampler)
    assert window.method == "nvml-power"  # what this window used, not what the GPU has
    assert window.energy_j == pytest.approx(200.0 * 3.0)
    assert "counter could not be read at a window edge" in window.note
    assert sampled_window(nvml, meter, sampler).method == "nvml-counter"  # the next one reads


def test_a_frozen_counter_while_the_gpu_is_busy_makes_the_window_invalid():
    class Frozen(FakeNvml):
        def nvmlDeviceGetTotalEnergyConsumption(self, h):
            return 123_456_789  # mJ, and it never moves

    nvml = Frozen(fleet().gpus)
    meter, sampler = meter_on(nvml, 0)
    window = sampled_window(nvml, meter, sampler)
    assert window.energy_j == 0.0 and window.method == "nvml-counter"
    assert "energy counter did not move while the GPU was up to 87 % busy" in window.invalid


def test_a_counter_far_from_the_power_trace_makes_the_window_invalid():
    class Doubled(FakeNvml):  # a counter reading twice what the power readings integrate to
        def nvmlDeviceGetTotalEnergyConsumption(self, h):
            return 2 * super().nvmlDeviceGetTotalEnergyConsumption(h)

    nvml = Doubled(fleet().gpus)
    meter, sampler = meter_on(nvml, 0)
    window = sampled_window(nvml, meter, sampler)
    assert "counter 600 J against power trace 300 J, 100% apart" in window.invalid
    healthy = fleet()
    meter, sampler = meter_on(healthy, 0)
    assert sampled_window(healthy, meter, sampler).invalid is None


def test_the_meters_verdict_reaches_the_record(clock, meter):
    from greenbench.protocol import Phase, ProtocolSettings, run_protocol
    from greenbench.records import measured_records

    class Verdict:  # a cell meter whose GPU reading was judged wrong
        def begin_window(self):
            meter.begin_window()

        def end_window(self):
            m = meter.end_window()
            return dataclasses.replace(m, invalid="GPU GPU-x: a frozen counter")

        def close(self):
            pass

    phase = Phase("forward", "image", 1, lambda: clock.sleep(0.5))
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, warmup_calls=0, idle_s=0.5)
    result = run_protocol([phase], Verdict(), settings, clock=clock, sleep=clock.sleep)
    (row,) = measured_records({}, result)
    assert row["valid"] is False and "GPU GPU-x: a frozen counter" in row["validity"]


def test_instantaneous_power_is_read_where_the_driver_has_it_else_the_average_says_so():
    nvml = fleet(g2={"instant": False})
    meter, sampler = meter_on(nvml, 2)  # no counter, no instant field
    window = sampled_window(nvml, meter, sampler, seconds=1.0)
    assert window.method == "nvml-power-averaged"
    assert window.trace and not any(s.instant for s in window.trace)
    nvml = fleet()
    meter, sampler = meter_on(nvml, 2)
    window = sampled_window(nvml, meter, sampler, seconds=1.0)
    assert window.method == "nvml-power" and all(s.instant for s in window.trace)
