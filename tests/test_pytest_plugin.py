"""The energy_benchmark fixture inside real pytest sessions (pytester), and the regression gate."""

import json
import math
import subprocess
import sys

import pytest

import greenbench
from greenbench.call_energy import find_regressions, summary_from_extra_info
from greenbench.cli import main

pytest_plugins = ["pytester"]

SAMPLE = """
import os

def work(n):
    return sum(i * i for i in range(n))

N = int(os.environ.get("GREENBENCH_SAMPLE_WORK", "30000"))

def test_square_sum(energy_benchmark):
    assert energy_benchmark(work, N) == work(N)

def test_square_sum_pedantic(energy_benchmark):
    made = []

    def setup():
        made.append(1)
        return (N,), {}

    assert energy_benchmark.pedantic(work, setup=setup, rounds=3) == work(N)
    assert made  # setup ran for the timing rounds and the energy windows
"""

FAST = [
    "--energy-min-window=0.3",
    "--energy-idle=0.3",
    "--energy-repetitions=3",
    "-p",
    "no:cacheprovider",
]


def run(pytester, *args):
    return pytester.runpytest_subprocess(*FAST, "--benchmark-storage=file://./saved", *args)


@pytest.mark.slow
def test_energy_lands_in_benchmark_json_and_pytest_benchmark_compare_reads_it(pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    result = run(pytester, "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*energy per call (greenbench)*", "*test_square_sum*J/call*"])

    data = json.loads((pytester.path / "out.json").read_text())
    by_name = {b["name"]: b for b in data["benchmarks"]}
    plain = by_name["test_square_sum"]["extra_info"]
    assert math.isfinite(plain["energy_j_per_call"]) and plain["energy_n"] == 3
    assert len(plain["energy_windows"]) == 3
    assert all(w["duration_s"] >= 0.3 for w in plain["energy_windows"])
    assert "cpu:" in plain["energy_methods"] and plain["energy_zone"] == "GB"
    assert plain["energy_includes_setup"] is False
    assert by_name["test_square_sum_pedantic"]["extra_info"]["energy_includes_setup"] is True
    assert by_name["test_square_sum"]["stats"]["rounds"] >= 1  # pytest-benchmark's own timing

    compared = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(pytester.path / "out.json")],
        capture_output=True,
        text=True,
    )
    assert compared.returncode == 0, compared.stderr
    assert "test_square_sum" in compared.stdout


# The gate's test session measures work, not the live CPU: 1 µJ per unit of work done, and a
# clock that reads 1 s per 1,000 units (windows as long as greenbench check asks for, in
# milliseconds), so a planted 2x regression is exactly 2x however busy the machine is.
WORK_METER = """
import functools

from greenbench import call_energy, protocol, pytest_plugin
from greenbench.energy.meter import Measurement

WORKED = [0]
SLEPT = [0.0]


def sleep(seconds):
    SLEPT[0] += seconds


call_energy.run_protocol = functools.partial(
    protocol.run_protocol, clock=lambda: SLEPT[0] + WORKED[0] / 1000, sleep=sleep
)


class WorkMeter:
    def begin_window(self):
        self.start = WORKED[0]

    def end_window(self):
        joules = (WORKED[0] - self.start) * 1e-6
        return Measurement(
            energy_j={"cpu": joules, "gpu": 0.0, "ram": 0.0},
            methods={"cpu": "rapl", "gpu": "none", "ram": "none"},
            emissions_g=joules / 3.6e6 * 200,
            carbon_intensity_g_per_kwh=200.0,
            carbon_source="fake",
        )

    def close(self):
        pass


pytest_plugin.EnergySession.meter = lambda self: WorkMeter()
"""

COUNTED_SAMPLE = """
import os

from conftest import WORKED

N = int(os.environ.get("GREENBENCH_SAMPLE_WORK", "3000"))


def work(n):
    WORKED[0] += n
    return sum(i * i for i in range(n))


def test_square_sum(energy_benchmark):
    assert energy_benchmark(work, N) == work(N)
"""


@pytest.mark.slow
def test_the_gate_fails_a_planted_2x_regression_and_passes_a_rerun(pytester, monkeypatch):
    pytester.makeconftest(WORK_METER)
    pytester.makepyfile(test_sample=COUNTED_SAMPLE)
    long = "--energy-min-window=5"  # of the fake clock
    run(pytester, long, "--benchmark-autosave").assert_outcomes(passed=1)

    monkeypatch.setenv("GREENBENCH_SAMPLE_WORK", "6000")  # twice the work per call
    slower = run(pytester, long, "--benchmark-compare", "--energy-fail-on-regression=20")
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(["*energy regression: *test_square_sum: J per call x2 *"])

    monkeypatch.setenv("GREENBENCH_SAMPLE_WORK", "4500")  # 1.5x, but in windows under 5 s
    short = run(pytester, "--benchmark-compare=0001", "--energy-fail-on-regression=20")
    assert short.ret == pytest.ExitCode.OK, short.stdout.str()
    short.stdout.fnmatch_lines(["*test_square_sum*INVALID, not compared: 3 window(s) shorter*"])

    monkeypatch.setenv("GREENBENCH_SAMPLE_WORK", "3000")  # the saved run's code again
    same = run(pytester, long, "--benchmark-compare=0001", "--energy-fail-on-regression=20")
    assert same.ret == pytest.ExitCode.OK, same.stdout.str()
    assert "energy regression" not in same.stdout.str()


def test_the_gate_needs_a_compared_run(pytester):
    pytester.makepyfile(test_sample=SAMPLE)
    result = run(pytester, "--energy-fail-on-regression=10")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--energy-fail-on-regression needs a saved run*"])


@pytest.mark.parametrize("option", ["--energy-min-window=nan", "--energy-idle=inf"])
def test_a_window_or_idle_that_is_not_a_finite_number_is_a_usage_error(pytester, option):
    pytester.makepyfile(test_sample=SAMPLE)
    result = run(pytester, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*must be > 0 seconds and under a day*"])


@pytest.mark.slow
def test_import_turns_the_json_into_records(pytester, tmp_path, capsys):
    pytester.makepyfile(test_sample=SAMPLE)
    run(pytester, "--benchmark-json=out.json").assert_outcomes(passed=2)
    out = tmp_path / "results"
    assert (
        main(["import-pytest-benchmark", str(pytester.path / "out.json"), "--out", str(out)]) == 0
    )
    frame = greenbench.load_results(out)
    assert len(frame) == 6 and set(frame["phase"]) == {"call"} and set(frame["status"]) == {"ok"}
    assert {w.split("::")[-1] for w in frame["workload"]} == {
        "test_square_sum",
        "test_square_sum_pedantic",
    }
    assert (frame["energy_per_unit_j"] * frame["calls"] - frame["net_energy_j"]).abs().max() < 1e-9
    assert frame["estimated"].all() and set(frame["zone"]) == {"GB"}
    # windows of 0.3 s: invalid cells (greenbench check), kept here to read them back
    assert main(["compare", str(out), "--by", "workload", "--include-invalid"]) == 0
    assert "test_square_sum" in capsys.readouterr().out


def test_import_rejects_files_without_energy(tmp_path, capsys):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"benchmarks": [{"name": "t", "extra_info": {}}]}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    out = str(tmp_path / "r")
    assert main(["import-pytest-benchmark", str(plain), "--out", out]) == 2
    assert main(["import-pytest-benchmark", str(broken), "--out", out]) == 2
    assert main(["import-pytest-benchmark", str(tmp_path / "none.json"), "--out", out]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "did not use the energy_benchmark fixture" in errors[0]
    assert "not JSON" in errors[1] and "no such file" in errors[2]
    assert not (tmp_path / "r").exists()


def info(mean, std, n=5):
    return {"energy_j_per_call": mean, "energy_j_per_call_std": std, "energy_n": n}


def test_regressions_need_the_whole_interval_above_the_threshold():
    before = {"a": info(1.0, 0.05), "b": info(1.0, 0.05), "c": info(1.0, 0.5), "d": info(1.0, 0.05)}
    now = {"a": info(2.0, 0.1), "b": info(1.02, 0.05), "c": info(2.0, 1.0), "e": info(9.0, 0.1)}
    found = find_regressions(now, before, pct=20)
    assert [r.name for r in found] == ["a"]  # b: within 20 %; c: too noisy; e: nothing saved
    assert found[0].ratio.value == pytest.approx(2.0)
    assert "x2" in found[0].describe()


def test_summary_from_extra_info_round_trips_and_ignores_plain_benchmarks():
    s = summary_from_extra_info({**info(2.0, 0.2, 4), "energy_j_per_call_ci95": 0.3})
    assert (s.n, s.mean, s.std, s.ci95) == (4, 2.0, 0.2, 0.3)
    assert summary_from_extra_info({"other": 1}) is None
