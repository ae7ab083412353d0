"""Fast siblings of slow tests: the same logic without child processes or long windows, so the
fast tier (`pytest -m "not slow and not cluster and not browser"`) still checks it.

Each names the slow test that checks the same thing end to end.
"""

import datetime as dt
import json
import math

import pytest

from greenbench.carbon.accounting import account
from greenbench.carbon.intensity import IntensityPoint, IntensitySeries
from greenbench.energy.meter import KWH_TO_J
from greenbench.runner import memory_skip_reason
from greenbench.suite import Cell
from greenbench.workloads import get_preset

pytest_plugins = ["pytester"]

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def record(start: dt.datetime, status: str = "ok", energy_j: float = 7200.0) -> dict:
    return {
        "status": status,
        "window_start": start.isoformat(),
        "duration_s": 60.0,
        "energy_j": energy_j,
    }


def test_each_window_is_charged_at_the_intensity_of_its_own_minutes():
    """test_carbon_sources: test_a_run_with_a_source_charges_each_window_at_its_own_intensity."""
    series = IntensitySeries(
        [
            IntensityPoint(NOW, dt.timedelta(minutes=30), 100.0),
            IntensityPoint(NOW + dt.timedelta(minutes=30), dt.timedelta(minutes=30), 300.0),
        ]
    )
    first, straddling = record(NOW), record(NOW + dt.timedelta(minutes=29, seconds=30))
    outside, skipped = record(NOW + dt.timedelta(hours=5)), record(NOW, status="skipped")
    account([first, straddling, outside, skipped], series, "file")

    assert first["carbon_intensity_series_g_per_kwh"] == pytest.approx(100.0)
    assert first["emissions_series_g"] == pytest.approx(7200.0 / KWH_TO_J * 100.0)
    assert straddling["carbon_intensity_series_g_per_kwh"] == pytest.approx(200.0)  # half each
    assert first["carbon_series_source"] == straddling["carbon_series_source"] == "file"
    assert "emissions_series_g" not in outside and "emissions_series_g" not in skipped


def _cell(workload: str) -> Cell:
    return Cell(workload, "fp32", "cpu", get_preset(workload).resolve_params({}))


def test_a_model_too_large_for_free_memory_is_skipped_saying_how_much_it_needs(monkeypatch):
    """test_end_to_end: test_a_model_too_large_for_memory_is_skipped_by_its_child."""
    from greenbench.backends.cpu import CpuBackend

    cpu = CpuBackend()
    monkeypatch.setattr(cpu, "free_memory_bytes", lambda device: 2 * 2**30)
    reason = memory_skip_reason(_cell("slm-1.7b-train"), cpu)
    assert reason.startswith("needs about 25.5 GiB for fp32 weights, gradients and optimizer")
    assert "cpu has 2.0 GiB free" in reason
    inference = memory_skip_reason(_cell("slm-1.7b"), cpu)
    assert inference.startswith("needs about 6.4 GiB for fp32 weights;")  # one copy, not four
    assert memory_skip_reason(_cell("slm-tiny-train"), cpu) is None
    monkeypatch.setattr(cpu, "free_memory_bytes", lambda device: None)
    assert memory_skip_reason(_cell("slm-1.7b-train"), cpu) is None  # cannot tell


SAMPLE = """
def work(n):
    return sum(i * i for i in range(n))

def test_square_sum(energy_benchmark):
    assert energy_benchmark(work, 2000) == work(2000)
"""


def test_energy_benchmark_stores_energy_per_call_in_extra_info(pytester):
    """test_pytest_plugin: test_energy_lands_in_benchmark_json_and_pytest_benchmark_compare_
    reads_it, in this process and with short windows."""
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest(
        "--energy-min-window=0.05",
        "--energy-idle=0.05",
        "--energy-repetitions=2",
        "--benchmark-max-time=0.01",
        "--benchmark-json=out.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*energy per call (greenbench)*", "*test_square_sum*J/call*"])
    (benchmark,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    info = benchmark["extra_info"]
    assert math.isfinite(info["energy_j_per_call"]) and info["energy_n"] == 2
    assert len(info["energy_windows"]) == 2
    assert all(w["duration_s"] >= 0.05 for w in info["energy_windows"])
    assert "cpu:" in info["energy_methods"] and info["energy_includes_setup"] is False
