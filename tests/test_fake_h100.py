"""greenbench's CUDA meter path end to end on a fake H100 (tests/fake_h100.py).

The cuda backend's make_meter, the cooldown calibration and run_protocol run as runner.run_cell
runs them, on simulated time: net J per unit must match the fake's ground truth, and no degraded
path (an edge read error, a frozen counter, averaged power, MIG, a container's PIDs) may carry
the healthy label or a valid verdict it does not deserve.

`run_cell(monkeypatch, nvml, at_start)` is reusable: heat the GPU first (`gpu.run_load(60)`)
for a warm-idle bias test; windows are found through run_protocol's on_window, so an idle
baseline split into parts or taken again after the windows does not shift them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
from fake_h100 import FakeH100, FakePynvml, SimClock, fake_proc, fake_torch_cuda, install

from greenbench.backends.cuda import CudaBackend
from greenbench.carbon.zones import resolve_zone
from greenbench.check import verdicts
from greenbench.energy import gpu_meter, pid_namespace
from greenbench.energy.meter import Measurement
from greenbench.energy.nvml import NvmlGpuMeter, foreign_processes, gpu_for_torch_index, nvml_gpus
from greenbench.errors import GreenbenchError
from greenbench.protocol import Phase, ProtocolSettings, run_protocol
from greenbench.records import measured_records

ZONE = resolve_zone("GB")
SETTINGS = ProtocolSettings(repetitions=3, min_window_s=5.0, warmup_calls=1, idle_s=3.0)
HOST_PID = 4_000_123  # greenbench's PID as the host (and an older driver's NVML) numbers it

# The energy counter updates every 100 ms, so each edge's reading lags the truth by up to 0.1 s
# of the power just before it: a window's energy can be off by up to 0.1 s x ~640 W (64 J), and
# the 3 s idle baseline's two edges by up to 0.1 s x 70 W, 2.3 W over a 5 s window (12 J);
# against the smallest window's ~1.7 kJ net (decode at 60 % load) that is 4.5 %. The fake is
# otherwise exact, so an error beyond 5 % is greenbench's.
COUNTER_TOLERANCE = 0.05
# An integrated 10 Hz trace of instantaneous power errs by at most one sample period of the
# power step at each edge (trapezoids), as the counter: the same bound.
TRACE_TOLERANCE = 0.05


Hooks = dict[tuple[str, int], Callable[[], None]]  # (phase, repetition) -> run at its start


class Marked:
    """The cell's meter, noting the simulated time of every window's edges."""

    def __init__(self, meter, clock: SimClock):
        self.meter, self.clock = meter, clock
        self.edges: list[tuple[float, float]] = []
        self.open: int | None = None  # the number of the window now open

    def begin_window(self) -> None:
        self._t0 = self.clock()
        self.meter.begin_window()
        self.open = len(self.edges)

    def end_window(self) -> Measurement:
        m = self.meter.end_window()
        self.edges.append((self._t0, self.clock()))
        self.open = None
        return m

    def close(self) -> None:
        self.meter.close()


def machine(**switches) -> tuple[SimClock, FakeH100, FakePynvml]:
    clock = SimClock()
    gpu = FakeH100(clock)
    for name, value in switches.items():
        setattr(gpu, name, value)
    return clock, gpu, FakePynvml([gpu])


def workload(gpu: FakeH100, meter: Marked, at_start: Hooks) -> list[Phase]:
    """prefill: short calls at full load; decode: longer ones, memory-bound (60 % load). The
    first call of a phase's n-th measured window runs at_start[(phase, n)] first."""
    seen: dict[str, tuple[int, int]] = {}  # phase -> (windows seen, the last one's number)

    def step_of(phase: str, seconds: float, load: float) -> Callable[[], None]:
        def step() -> None:
            count, last = seen.get(phase, (0, -1))
            if meter.open is not None and meter.open != last:  # a measured window's first call
                seen[phase] = (count + 1, meter.open)
                at_start.get((phase, count + 1), lambda: None)()
            gpu.run_load(seconds, load)

        return step

    return [
        Phase("prefill", "token", 256, step_of("prefill", 0.047, 1.0)),
        Phase("decode", "token", 16, step_of("decode", 0.233, 0.6)),
    ]


def run_cell(
    monkeypatch, nvml: FakePynvml, at_start: Hooks | None = None, torch_reports="instance"
):
    """What runner.run_cell does after building the model: the backend's meter, the cooldown
    calibrated on the idle GPU, the protocol; the records and, per window, its true net J per
    unit (true energy less the resting idle power over the window)."""
    install(monkeypatch, nvml)
    fake_torch_cuda(monkeypatch, nvml, torch_reports=torch_reports)
    clock, gpu = nvml.clock, nvml.gpus[0]
    backend = CudaBackend()
    meter = Marked(backend.make_meter("cuda:0", ZONE, lambda event: None), clock)
    measured: list[tuple[float, float]] = []  # the edges of the measured windows, not the idle
    cooldown = meter.meter.cooldown  # the protocol calibrates it on its settled idle
    try:
        result = run_protocol(
            workload(gpu, meter, at_start or {}),
            meter,
            SETTINGS,
            sync=lambda: backend.synchronize("cuda:0"),
            clock=clock,
            sleep=clock.sleep,
            on_window=lambda window: measured.append(meter.edges[-1]),
            cooldown=cooldown,
        )
    finally:
        meter.close()
    assert nvml.initialised == 0  # every nvmlInit was shut down
    rows = measured_records({"run_id": "r", "cell_id": "slm/fp32/cuda:0"}, result)
    for row in rows:
        row["status"] = "ok"
    truths = [gpu.energy_between(t0, t1) - gpu.idle_w * (t1 - t0) for t0, t1 in measured]
    return rows, [j / row["unit_count"] for j, row in zip(truths, rows, strict=True)]


def test_a_gpu_still_hot_from_the_fidelity_passes_does_not_lower_net_figures(monkeypatch):
    # A quantized variant's fidelity passes run just before its protocol: its GPU starts hot,
    # and idle power rises with temperature (leakage). The settled idle waits for it to cool,
    # so the cell measures as a cold one does.
    _, _, cold = machine()
    cold_rows, cold_truths = run_cell(monkeypatch, cold)
    _, hot_gpu, hot = machine()
    hot_gpu.run_load(60)  # a minute of fidelity passes at full load
    hot_gpu.load = 0.0
    excess_w = hot_gpu.power_w - hot_gpu.idle_w  # what an idle taken right now would add
    hot_rows, hot_truths = run_cell(monkeypatch, hot)

    decode = [(r, t) for r, t in zip(hot_rows, hot_truths, strict=True) if r["phase"] == "decode"]
    decode_net_w = sum(t * r["unit_count"] / r["duration_s"] for r, t in decode) / len(decode)
    # an idle baseline taken at once (3 s, no settling) would have lowered decode's net figure
    # by excess_w / its net power (about 7 %): beyond the meter's tolerance
    assert excess_w / decode_net_w > COUNTER_TOLERANCE
    errors = relative_errors(hot_rows, hot_truths)
    assert max(map(abs, errors)) <= COUNTER_TOLERANCE, errors
    assert all(r["valid"] for r in hot_rows), [r["validity"] for r in hot_rows]
    assert hot_rows[0]["idle_settle_s"] > 10 and hot_rows[0]["idle_settled"]
    assert hot_rows[0]["idle_power_gpu_w"] == pytest.approx(hot_gpu.idle_w, rel=0.03)
    for phase in ("prefill", "decode"):

        def mean(rows, phase=phase):
            found = [r["energy_per_unit_j"] for r in rows if r["phase"] == phase]
            return sum(found) / len(found)

        assert mean(hot_rows) == pytest.approx(mean(cold_rows), rel=COUNTER_TOLERANCE)


def relative_errors(rows, truths) -> list[float]:
    return [row["energy_per_unit_j"] / truth - 1 for row, truth in zip(rows, truths, strict=True)]


def verdict_of(rows):
    import pandas as pd

    return {v.phase: v for v in verdicts(pd.DataFrame(rows))}


def test_net_joules_per_unit_through_the_counter_match_the_fakes_truth(monkeypatch):
    _, _, nvml = machine()  # NVML lists greenbench's own process: it is not foreign
    rows, truths = run_cell(monkeypatch, nvml)
    assert len(rows) == 6
    assert {r["method_gpu"] for r in rows} == {"nvml-counter"}
    assert all(r["valid"] for r in rows), [r["validity"] for r in rows]
    errors = relative_errors(rows, truths)
    assert max(map(abs, errors)) <= COUNTER_TOLERANCE, errors
    assert all(r["gpu_foreign_pids"] is None and r["method_note"] is None for r in rows)
    assert all(v.valid for v in verdict_of(rows).values()), verdict_of(rows)


def test_without_a_counter_the_instantaneous_power_trace_matches_the_truth(monkeypatch):
    _, _, nvml = machine(has_counter=False)
    rows, truths = run_cell(monkeypatch, nvml)
    assert {r["method_gpu"] for r in rows} == {"nvml-power"}
    assert all(r["valid"] for r in rows)
    errors = relative_errors(rows, truths)
    assert max(map(abs, errors)) <= TRACE_TOLERANCE, errors


def test_an_older_drivers_averaged_power_is_labelled_so_and_reads_low(monkeypatch):
    _, _, nvml = machine(has_counter=False, has_instant_field=False)
    rows, truths = run_cell(monkeypatch, nvml)
    assert {r["method_gpu"] for r in rows} == {"nvml-power-averaged"}
    # the 1 s moving average lags a load step by about 0.5 s: a window starting from idle
    # misses its start (prefill reads low), one following a heavier phase starts with that
    # phase's power (decode after prefill reads high); worse than the instantaneous trace,
    # hence the label
    errors = relative_errors(rows, truths)
    assert all(-0.15 < e < 0 for e in errors[0::2]), errors
    assert all(0 < e < 0.15 for e in errors[1::2]), errors
    assert max(map(abs, errors)) > TRACE_TOLERANCE, errors


def test_a_counter_read_failing_at_one_edge_labels_only_that_window_trace_integrated(
    monkeypatch,
):
    _, gpu, nvml = machine()
    # the next counter read after the window's first call is the one at its end
    rows, truths = run_cell(
        monkeypatch, nvml, at_start={("prefill", 2): gpu.fail_next_counter_read}
    )
    methods = [(r["phase"], r["repetition"], r["method_gpu"]) for r in rows]
    assert methods[2] == ("prefill", 2, "nvml-power")
    assert {m for i, (_, _, m) in enumerate(methods) if i != 2} == {"nvml-counter"}
    assert "counter could not be read at a window edge" in rows[2]["method_note"]
    assert all(r["valid"] for r in rows)
    assert abs(relative_errors(rows, truths)[2]) <= TRACE_TOLERANCE


def test_a_frozen_counter_makes_every_measured_window_and_the_cell_invalid(monkeypatch):
    _, _, nvml = machine(frozen_counter=True)
    rows, _ = run_cell(monkeypatch, nvml)
    assert all(r["valid"] is False for r in rows)
    assert all("energy counter did not move while the GPU was up to" in r["validity"] for r in rows)
    assert not any(v.valid for v in verdict_of(rows).values())


@pytest.mark.parametrize("torch_reports", ["instance", "parent"])
def test_a_mig_instance_fails_the_cell_with_the_reason(monkeypatch, torch_reports):
    """torch prints a MIG instance's UUID bare (no MIG- prefix); CUDA's legacy query gives the
    parent GPU's: either way the cell must fail, never measure the whole GPU."""
    _, _, nvml = machine(mig=True)
    with pytest.raises(GreenbenchError, match="cuda:0 is a MIG instance"):
        run_cell(monkeypatch, nvml, torch_reports=torch_reports)
    assert nvml.initialised == 0


def container(monkeypatch, tmp_path, nspid):
    """greenbench in a container: its /proc shows the PIDs in `nspid` (outermost first) and a
    PID namespace other than the host's."""
    proc = fake_proc(tmp_path / "proc", nspid, pid_namespace=4026532999)
    monkeypatch.setattr(pid_namespace, "PROC", str(proc))


def test_in_a_container_greenbenchs_own_host_pid_is_not_foreign(monkeypatch, tmp_path):
    container(monkeypatch, tmp_path, [os.getpid()])
    _, _, nvml = machine(pids=[HOST_PID])  # NVML gives greenbench's host PID
    rows, truths = run_cell(monkeypatch, nvml)
    assert all(r["gpu_foreign_pids"] is None for r in rows)
    assert all("PIDs from another PID namespace" in r["method_note"] for r in rows)
    assert all(v.valid for v in verdict_of(rows).values())
    assert max(map(abs, relative_errors(rows, truths))) <= COUNTER_TOLERANCE


def test_in_a_container_another_process_on_the_gpu_is_still_flagged(monkeypatch, tmp_path):
    container(monkeypatch, tmp_path, [os.getpid()])
    _, _, nvml = machine(pids=[HOST_PID, 4_000_777])
    rows, _ = run_cell(monkeypatch, nvml)
    assert all(r["gpu_foreign_pids"] == f"[{HOST_PID}, 4000777]" for r in rows)
    verdict = verdict_of(rows)["decode"]
    assert not verdict.valid
    assert any("other processes computed on the measured GPU" in r for r in verdict.reasons)


@pytest.mark.parametrize(
    ("nspid", "listed", "foreign", "noted"),
    [
        # /proc shows the outer namespace too: the host PID is recognised as ours
        ([HOST_PID, "self"], [HOST_PID, 555], [555], False),
        # a driver that translates PIDs into the container's namespace
        (["self"], ["self", 555], [555], False),
        # PIDs from the host, unmatched: one is greenbench's
        (["self"], [HOST_PID], [], True),
        (["self"], [HOST_PID, 555], [HOST_PID, 555], True),
        (["self"], [], [], False),
    ],
)
def test_own_processes_are_recognised_across_pid_namespaces(
    tmp_path, nspid, listed, foreign, noted
):
    mine = os.getpid()
    proc = fake_proc(
        tmp_path, [mine if p == "self" else p for p in nspid], pid_namespace=4026532999
    )
    _, gpu, nvml = machine(pids=[mine if p == "self" else p for p in listed])
    nvml.nvmlInit()
    found = foreign_processes(nvml, nvml_gpus(nvml), proc=str(proc))
    assert [pid for _, pid in found.found] == foreign
    assert (found.note is not None) == noted


def test_on_the_host_every_pid_but_greenbenchs_is_foreign(tmp_path):
    proc = fake_proc(tmp_path, [os.getpid()])  # the initial PID namespace
    _, _, nvml = machine(pids=[HOST_PID])
    nvml.nvmlInit()
    found = foreign_processes(nvml, nvml_gpus(nvml), proc=str(proc))
    assert found.found == [(nvml.gpus[0].uuid, HOST_PID)] and found.note is None


def test_the_fake_heats_with_load_and_its_idle_power_rises_with_temperature():
    clock, gpu, nvml = machine()
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    cold = nvml.nvmlDeviceGetPowerUsage(handle) / 1000
    assert cold == pytest.approx(gpu.idle_w, abs=0.01)
    before = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    gpu.run_load(60)
    assert nvml.nvmlDeviceGetTemperature(handle, 0) > gpu.resting_c + 30
    clock.sleep(1.5)  # the 1 s average has forgotten the load; the GPU is still hot
    warm = nvml.nvmlDeviceGetPowerUsage(handle) / 1000
    assert warm > cold + 15
    counted = (nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - before) / 1000
    assert counted == pytest.approx(gpu.energy_between(0, clock()), abs=0.1 * 700)
    e0 = gpu.energy_j
    clock.sleep(0.05)  # between two counter updates
    read = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    clock.sleep(0.06)
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(handle) > read
    assert gpu.energy_j - e0 == pytest.approx(warm * 0.11, rel=0.05)


@pytest.mark.parametrize("visible", [None, "0", "GPU-"])
def test_a_gpu_in_mig_mode_is_never_measured_whole_whatever_names_it(visible):
    _, gpu, nvml = machine(mig=True)
    nvml.nvmlInit()
    if visible == "GPU-":
        visible = gpu.uuid
    with pytest.raises(GreenbenchError, match="in MIG mode"):
        gpu_for_torch_index(0, nvml_gpus(nvml), visible)


def test_a_counter_frozen_during_the_idle_baseline_invalidates_the_windows(monkeypatch):
    """Idle GPU power would read 0 W and every window's net too high by the idle's share."""
    _, gpu, nvml = machine(frozen_counter=True)
    run_load = gpu.run_load

    def thawed_by_work(seconds, load=1.0):  # the counter moves again once work starts
        gpu.frozen_counter = False
        run_load(seconds, load)

    gpu.run_load = thawed_by_work
    rows, _ = run_cell(monkeypatch, nvml)
    assert rows[0]["idle_power_gpu_w"] < 0.9 * gpu.idle_w  # the frozen idle pulled it down
    assert all(r["valid"] is False for r in rows)
    idle_verdict = "the idle baseline's reading cannot be right: GPU"
    assert all(idle_verdict in r["validity"] for r in rows)
    assert all("counter did not move while the GPU drew" in r["validity"] for r in rows)


@pytest.mark.parametrize("has_counter", [True, False])
def test_nvml_reads_failing_for_a_while_leave_a_hole_that_an_integrated_window_reports(
    monkeypatch, has_counter
):
    clock, gpu, nvml = machine(has_counter=has_counter)

    def outage():  # for 2 s from the start of repetition 2's decode window
        gpu.sensors_fail_until = clock() + 2.0

    rows, truths = run_cell(monkeypatch, nvml, at_start={("decode", 2): outage})
    assert len(rows) == 6  # the sampler survived the failed reads
    broken = rows[3]
    assert (broken["phase"], broken["repetition"]) == ("decode", 2)
    later = [r for i, r in enumerate(rows) if i != 3]
    if has_counter:  # the counter needs no trace: the window stands
        assert all(r["valid"] for r in rows) and broken["method_gpu"] == "nvml-counter"
    else:
        assert broken["valid"] is False
        assert re.search(r"its power trace has a 2\.\d s hole", broken["validity"])
        assert all(r["valid"] for r in later)
        # after the outage the instantaneous field is read again, not given up for the average
        assert {r["method_gpu"] for r in rows} == {"nvml-power"}
    errors = relative_errors(later, [t for i, t in enumerate(truths) if i != 3])
    assert max(map(abs, errors)) <= TRACE_TOLERANCE


def test_a_frozen_counter_is_caught_in_a_short_idle_window_too(monkeypatch):
    """The protocol's idle samples last a second or less: too short to compare a counter with
    its trace, not too short to see that it never moved."""
    clock, gpu, nvml = machine(frozen_counter=True)
    install(monkeypatch, nvml)
    nvml.nvmlInit()
    gpus = nvml_gpus(nvml)
    sampler = gpu_meter.PowerSampler(nvml, gpus)
    sampler.start()
    meter = NvmlGpuMeter(nvml, gpus, sampler)
    meter.begin_window()
    clock.sleep(0.5)
    window = meter.end_window()
    assert window.energy_j == 0.0
    assert "counter did not move while the GPU drew 70 W" in window.invalid
    gpu.frozen_counter = False
    meter.begin_window()
    clock.sleep(0.5)
    assert meter.end_window().invalid is None


def test_a_sensor_error_during_cooldown_neither_crashes_the_cell_nor_holds_it(monkeypatch):
    clock, gpu, nvml = machine()
    install(monkeypatch, nvml)
    fake_torch_cuda(monkeypatch, nvml)
    meter = CudaBackend().make_meter("cuda:0", ZONE, lambda event: None)
    try:
        cooldown = meter.cooldown
        cooldown.calibrate()
        gpu.run_load(10)  # hot: a cooldown would wait
        gpu.sensors_fail_until = clock() + 30.0
        assert cooldown.temperature_c() is None
        assert cooldown(max_s=60.0) == pytest.approx(0.0, abs=0.5)  # cannot tell: no wait
        clock.sleep(30.0)
        assert cooldown.temperature_c() is not None  # readable again
    finally:
        meter.close()
