import pytest

from greenbench.protocol import Phase, ProtocolSettings, run_protocol
from greenbench.records import COLUMNS, measured_records, unfinished_records

CONTEXT = {"run_id": "r", "cell_id": "w/fp32/cpu", "attempt": 1, "workload": "w"}


def measure(clock, meter, idle_power=None, busy_power=None):
    settings = ProtocolSettings(
        repetitions=2, min_window_s=2.0, min_calls=1, idle_s=2.0, warmup_calls=0
    )

    def step():
        if busy_power is not None:
            meter.power = busy_power  # the work draws more than idle
        clock.sleep(1.0)

    if idle_power is not None:
        meter.power = idle_power
    return run_protocol(
        [Phase("decode", "token", 10, step)], meter, settings, clock=clock, sleep=clock.sleep
    )


def test_net_energy_subtracts_idle_power_times_duration(clock, meter):
    result = measure(
        clock, meter, idle_power={"cpu": 5.0, "ram": 2.0}, busy_power={"cpu": 25.0, "ram": 2.0}
    )
    rows = measured_records(CONTEXT, result, reliable=False)
    assert len(rows) == 2
    row = rows[0]
    assert row["duration_s"] == pytest.approx(2.0)
    assert row["energy_j"] == pytest.approx(54.0)  # (25 + 2) W x 2 s
    assert row["idle_power_w"] == pytest.approx(7.0)
    assert row["net_energy_j"] == pytest.approx(54.0 - 14.0)
    assert row["unit_count"] == 20
    assert row["energy_per_unit_j"] == pytest.approx(40.0 / 20)
    assert row["gross_energy_per_unit_j"] == pytest.approx(54.0 / 20)
    assert row["throughput"] == pytest.approx(10.0)
    assert row["power_w"] == pytest.approx(27.0)
    assert row["energy_cpu_j"] == pytest.approx(50.0)
    assert row["idle_power_cpu_w"] == pytest.approx(5.0)
    assert row["emissions_per_1k_units_g"] == pytest.approx(2.0 * 1000 / 3.6e6 * 200.0)
    assert row["status"] == "ok" and row["error"] is None
    assert list(row) == COLUMNS


def test_estimated_when_any_component_with_energy_is_an_estimate(clock, meter):
    rows = measured_records(CONTEXT, measure(clock, meter), reliable=True)
    assert rows[0]["estimated"] is True  # ram-estimate carries energy
    assert rows[0]["method_cpu"] == "rapl" and rows[0]["method_gpu"] == "none"


def test_measured_only_when_every_component_with_energy_is_read(clock, meter):
    meter.power = {"cpu": 10.0}
    rows = measured_records(CONTEXT, measure(clock, meter), reliable=True)
    assert rows[0]["estimated"] is False


def test_unfinished_records_one_row_per_phase_with_reason():
    rows = unfinished_records(CONTEXT, ["prefill", "decode"], "failed", "OOM")
    assert [(r["phase"], r["status"], r["error"]) for r in rows] == [
        ("prefill", "failed", "OOM"),
        ("decode", "failed", "OOM"),
    ]
    assert rows[0]["energy_j"] is None


def test_per_cell_extras_such_as_fidelity_land_in_every_row(clock, meter):
    extra = {"fidelity_top1": 0.75, "fidelity_kl": 0.01, "fidelity_n": 32}
    rows = measured_records(CONTEXT, measure(clock, meter), True, extra)
    assert [r["fidelity_top1"] for r in rows] == [0.75, 0.75]
    assert all(r["energy_per_call_j"] == r["net_energy_j"] / r["calls"] for r in rows)
    assert all(
        r["fidelity_top1"] is None for r in measured_records(CONTEXT, measure(clock, meter), True)
    )
