import json
import typing

import pytest

from greenbench.call_energy import summarize_calls
from greenbench.import_pytest_benchmark import benchmark_records
from greenbench.protocol import Phase, ProtocolSettings, run_protocol
from greenbench.records import (
    COLUMNS,
    Record,
    Status,
    WindowFacts,
    build_record,
    measured_records,
    unfinished_records,
    window_figures,
)

CONTEXT = {"run_id": "r", "cell_id": "w/fp32/cpu", "attempt": 1, "workload": "w"}


def measure(clock, meter, idle_power=None, busy_power=None):
    settings = ProtocolSettings(
        repetitions=2, min_window_s=2.0, min_calls=1, idle_s=2.0, warmup_calls=0
    )

    idle = idle_power if idle_power is not None else meter.power

    def step():
        if busy_power is not None:
            meter.power = busy_power  # the work draws more than idle
        clock.sleep(1.0)
        meter.power = idle

    meter.power = idle
    return run_protocol(
        [Phase("decode", "token", 10, step)], meter, settings, clock=clock, sleep=clock.sleep
    )


def test_net_energy_subtracts_idle_power_times_duration(clock, meter):
    result = measure(
        clock, meter, idle_power={"cpu": 5.0, "ram": 2.0}, busy_power={"cpu": 25.0, "ram": 2.0}
    )
    rows = measured_records(CONTEXT, result)
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


def test_a_counter_beside_a_constant_ram_model_is_measured_the_ram_cancels_out_of_net(clock, meter):
    rows = measured_records(CONTEXT, measure(clock, meter))  # cpu: rapl, ram: ram-estimate
    assert rows[0]["estimated"] is False  # the RAM model's constant watts are in idle too
    assert rows[0]["constant_power_components"] == "ram"
    assert rows[0]["energy_ram_j"] > 0  # still in the gross figures
    assert rows[0]["method_cpu"] == "rapl" and rows[0]["method_gpu"] == "none"


def test_a_load_model_of_the_cpu_makes_the_net_figure_an_estimate(clock, meter):
    meter.methods = {"cpu": "cpu-load-estimate", "ram": "ram-estimate"}
    rows = measured_records(CONTEXT, measure(clock, meter))
    assert rows[0]["estimated"] is True


def test_measured_only_when_every_component_with_energy_is_read(clock, meter):
    meter.power = {"cpu": 10.0}
    rows = measured_records(CONTEXT, measure(clock, meter))
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
    rows = measured_records(CONTEXT, measure(clock, meter), extra)
    assert [r["fidelity_top1"] for r in rows] == [0.75, 0.75]
    assert all(r["energy_per_call_j"] == r["net_energy_j"] / r["calls"] for r in rows)
    assert all(r["fidelity_top1"] is None for r in measured_records(CONTEXT, measure(clock, meter)))


DERIVED = [
    "unit_count",
    "calls",
    "duration_s",
    "energy_j",
    "idle_power_w",
    "net_energy_j",
    "energy_per_unit_j",
    "gross_energy_per_unit_j",
    "energy_per_call_j",
    "throughput",
    "power_w",
    "emissions_g",
    "emissions_per_1k_units_g",
    "carbon_intensity_g_per_kwh",
    "carbon_source",
    "method_cpu",
    "method_gpu",
    "method_ram",
    "estimated",
    "reliable",
]


def call_windows(clock, meter, seconds_per_call):
    """A protocol run of calls lasting `seconds_per_call`, windows of at least 1 s."""
    meter.power = {"cpu": 30.0, "ram": 2.0}
    settings = ProtocolSettings(
        repetitions=2, min_window_s=1.0, min_calls=2, idle_s=1.0, warmup_calls=0
    )

    def step():
        clock.sleep(seconds_per_call)

    return run_protocol(
        [Phase("call", "call", 1, step)], meter, settings, clock=clock, sleep=clock.sleep
    )


@pytest.mark.parametrize("seconds_per_call", [3.0, 0.25])
def test_a_window_gives_the_same_figures_as_a_run_record_and_as_an_imported_one(
    clock, meter, seconds_per_call
):
    result = call_windows(clock, meter, seconds_per_call)
    measured = measured_records(CONTEXT, result)
    info = json.loads(json.dumps(summarize_calls(result, "GB").extra_info()))
    imported = benchmark_records({"name": "t", "extra_info": info}, "r", "now")
    assert len(measured) == len(imported) == 2
    for run_row, imported_row in zip(measured, imported, strict=True):
        for column in DERIVED:
            assert imported_row[column] == pytest.approx(run_row[column]), column


def test_reliable_means_this_window_lasted_5_s_whatever_the_minimum(clock, meter):
    long_windows = measured_records(CONTEXT, call_windows(clock, meter, 3.0))  # 2 calls: 6 s
    short_windows = measured_records(CONTEXT, call_windows(clock, meter, 0.25))  # 4 calls: 1 s
    assert [r["duration_s"] for r in long_windows] == [6.0, 6.0]
    assert [r["reliable"] for r in long_windows] == [True, True]
    assert [r["reliable"] for r in short_windows] == [False, False]


def facts(**changes):
    base = dict(
        unit="token",
        unit_count=10,
        calls=2,
        duration_s=5.0,
        energy_j=60.0,
        idle_power_w=4.0,
        methods={"cpu": "rapl"},
        carbon_intensity_g_per_kwh=360.0,
        carbon_source="file",
    )
    return WindowFacts(**{**base, **changes})


def test_window_figures_from_the_facts_alone():
    figures = window_figures(facts())
    assert figures["net_energy_j"] == 40.0
    assert figures["energy_per_unit_j"] == 4.0 and figures["energy_per_call_j"] == 20.0
    assert figures["gross_energy_per_unit_j"] == 6.0
    assert figures["throughput"] == 2.0 and figures["power_w"] == 12.0
    assert figures["emissions_g"] == pytest.approx(60.0 / 3.6e6 * 360.0)  # none given: derived
    assert figures["emissions_per_1k_units_g"] == pytest.approx(4.0 * 1000 / 3.6e6 * 360.0)
    assert figures["method_cpu"] == "rapl" and figures["method_gpu"] == "none"
    assert figures["estimated"] is False and figures["reliable"] is True
    assert figures["energy_cpu_j"] is None  # no split by component given
    assert window_figures(facts(duration_s=4.999))["reliable"] is False
    assert window_figures(facts(emissions_g=1.5))["emissions_g"] == 1.5


def test_unknown_intensity_gives_no_emissions_and_a_zero_window_no_rates():
    figures = window_figures(facts(carbon_intensity_g_per_kwh=float("nan"), duration_s=0.0))
    assert figures["emissions_g"] is None and figures["emissions_per_1k_units_g"] is None
    assert figures["throughput"] is None and figures["power_w"] is None


def test_estimated_counts_only_components_that_carried_energy():
    split = {"cpu": 50.0, "gpu": 0.0, "ram": 10.0}
    methods = {"cpu": "cpu-load-estimate", "gpu": "tdp-estimate", "ram": "ram-estimate"}
    assert window_figures(facts(methods=methods, energy_by_component_j=split))["estimated"]
    read = {**methods, "cpu": "rapl"}  # the GPU's estimate carried no energy
    figures = window_figures(facts(methods=read, energy_by_component_j=split))
    assert not figures["estimated"] and figures["constant_power_components"] == "ram"


def test_build_record_fills_every_column_in_order_and_later_parts_win():
    row = build_record({"cell_id": "c", "unit": "token"}, {"unit": "image"}, recorded_at="")
    assert list(row) == COLUMNS
    assert row["unit"] == "image" and row["energy_j"] is None
    assert (row["status"], row["error"], row["recorded_at"]) == ("ok", None, "")


def test_columns_are_the_record_fields_in_order():
    assert list(Record.__annotations__) == COLUMNS
    assert COLUMNS[:3] == ["run_id", "cell_id", "attempt"]
    assert COLUMNS[-3:] == ["status", "error", "recorded_at"]
    assert len(COLUMNS) == len(set(COLUMNS))
    assert COLUMNS.index("node") + 1 == COLUMNS.index("window_start")
    assert typing.get_args(Status) == ("ok", "failed", "skipped")
