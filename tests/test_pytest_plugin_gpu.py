"""The energy_benchmark fixture on a CUDA function: it measures the GPU the function ran on.

On the fake H100 (tests/fake_h100.py) with a faked torch.cuda and simulated time; the real
check at the end needs a CUDA GPU and skips without one.
"""

from __future__ import annotations

import json
import sys

import pytest
from conftest import FakeMeter
from fake_h100 import FakeH100, FakePynvml, SimClock, fake_torch_cuda, install

from greenbench.pytest_plugin import EnergySession

pytest_plugins = ["pytester"]

CALL_S = 0.1  # one call: 0.1 s at full load, 560 W above idle on the fake


class Options:
    """What EnergySession reads from pytest's config."""

    def __init__(self, **options):
        self.options = {
            "energy_zone": "GB",
            "energy_min_window": 5.0,
            "energy_idle": 3.0,
            "energy_repetitions": 3,
            "energy_fail_on_regression": None,
            **options,
        }

    def getoption(self, name, default=None):
        return self.options.get(name, default)


def session_on(monkeypatch, nvml, used):
    """An EnergySession on simulated time: CodeCarbon's CPU/RAM meter is a constant-power
    fake, NVML the fake H100s, torch.cuda says memory is reserved on `used`."""
    clock = nvml.clock
    install(monkeypatch, nvml)
    fake_torch_cuda(monkeypatch, nvml, used=used)
    session = EnergySession(Options())
    cpu_ram = FakeMeter(clock, {"cpu": 40.0, "ram": 6.0}, {"cpu": "rapl", "ram": "ram-estimate"})
    monkeypatch.setattr(session, "meter", lambda: cpu_ram)
    session.clock, session.sleep = clock, clock.sleep
    return session


def test_a_cuda_function_gets_the_energy_of_the_gpu_it_ran_on(monkeypatch):
    clock = SimClock()
    gpus = [FakeH100(clock, serial="0"), FakeH100(clock, serial="1", dynamic_w=280.0)]
    nvml = FakePynvml(gpus)
    session = session_on(monkeypatch, nvml, used=(1,))  # it ran on cuda:1, the 280 W one
    info = session.measure("test_matmul", lambda: gpus[1].run_load(CALL_S))
    session.close()
    assert info["energy_methods"] == "cpu:rapl gpu:nvml-counter ram:ram-estimate"
    assert info["energy_gpus"] == "cuda:1"
    # net of idle: 280 W x 0.1 s, plus a little leakage as it warms; the counter's 100 ms steps
    # at the edges of 5 s windows bound the error (as in test_fake_h100)
    assert info["energy_j_per_call"] == pytest.approx(280.0 * CALL_S, rel=0.05)
    assert nvml.initialised == 0  # NVML shut down with the session


def test_a_function_that_never_used_cuda_measures_no_gpu(monkeypatch):
    clock = SimClock()
    nvml = FakePynvml([FakeH100(clock)])
    session = session_on(monkeypatch, nvml, used=())  # torch imported, no CUDA context
    info = session.measure("test_cpu", lambda: clock.sleep(CALL_S))
    session.close()
    assert "gpu:" not in info["energy_methods"] and "energy_gpus" not in info
    assert nvml.initialised == 0


def test_without_torch_imported_no_gpu_is_looked_for(monkeypatch):
    from greenbench.call_energy import cuda_devices_used, cuda_sync

    monkeypatch.delitem(sys.modules, "torch", raising=False)  # a plain Python benchmark
    assert cuda_devices_used() == []
    cuda_sync([])()  # waits for nothing, imports nothing
    assert "torch" not in sys.modules


def test_a_gpu_that_cannot_be_measured_fails_the_benchmark_with_the_reason(monkeypatch):
    clock = SimClock()
    gpu = FakeH100(clock)
    gpu.mig = True
    session = session_on(monkeypatch, FakePynvml([gpu]), used=(0,))
    with pytest.raises(pytest.fail.Exception, match="ran on cuda:0, whose energy cannot be .*MIG"):
        session.measure("test_mig", lambda: gpu.run_load(CALL_S))


CUDA_SAMPLE = """
import torch

A = torch.randn(4096, 4096, device="cuda")

def test_matmul(energy_benchmark):
    def work():
        for _ in range(20):
            A @ A
        torch.cuda.synchronize()

    energy_benchmark(work)
"""


def _has_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
def test_on_a_real_gpu_the_fixture_reads_nvml(pytester):
    pytester.makepyfile(test_cuda=CUDA_SAMPLE)
    result = pytester.runpytest_subprocess(
        "--energy-min-window=2", "--energy-idle=1", "--benchmark-json=out.json"
    )
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    info = bench["extra_info"]
    assert info["energy_gpus"] == "cuda:0"
    assert (
        "gpu:nvml-counter" in info["energy_methods"] or "gpu:nvml-power" in info["energy_methods"]
    )
    assert info["energy_j_per_call"] > 0
