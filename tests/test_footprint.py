import json
import shutil

import pandas as pd
import pytest

from greenbench.cli import build_parser, main
from greenbench.errors import SuiteError
from greenbench.footprint import (
    DEFAULT_WUE_L_PER_KWH,
    Embodied,
    EmbodiedClass,
    Footprint,
    FootprintSettings,
    embodied_classes,
    embodied_share,
    footprint_columns,
    hardware_class,
    parse_footprint,
)
from greenbench.records import WindowFacts, build_record, window_figures
from greenbench.report import figures
from greenbench.report.page import build_report
from greenbench.report.sample import synthetic_frame
from greenbench.results import load_results
from greenbench.runner import cell_context
from greenbench.store import RunStore
from greenbench.suite import Cell, RunOverrides, parse_suite, resolve_suite
from greenbench.terminal import footprint_line

FOOTPRINT_COLUMNS = [
    "pue",
    "facility_energy_j",
    "embodied_g",
    "embodied_per_unit_g",
    "embodied_source",
    "water_l",
    "water_per_unit_l",
    "water_source",
]
GPU = EmbodiedClass("gpu_x", "GPU X", 876.0, 1.0, "device", "Boavizta test", "https://x", "2026")
VCPU = EmbodiedClass("vcpu_x", "vCPU X", 8.76, 1.0, "vcpu", "Boavizta test", "https://y", "2026")


def facts(footprint, **changes):
    base = dict(
        unit="token",
        unit_count=10,
        calls=2,
        duration_s=3600.0,
        energy_j=3.6e6,  # 1 kWh
        idle_power_w=100.0,
        methods={"cpu": "rapl"},
        carbon_intensity_g_per_kwh=300.0,
        carbon_source="file",
        footprint=footprint,
    )
    return WindowFacts(**{**base, **changes})


def test_embodied_and_water_arithmetic_on_a_fake_window():
    embodied = embodied_share(
        FootprintSettings(hardware="gpu_x"), "cuda:0", "", None, 4, {"gpu_x": GPU}
    )
    assert embodied.g_per_hour == pytest.approx(876_000 / 8760)  # 100 g/h
    footprint = Footprint(FootprintSettings(pue=1.5, wue_l_per_kwh=2.0), embodied)
    figures = window_figures(facts(footprint, duration_s=1800.0))
    assert figures["energy_j"] == 3.6e6  # the measured figure untouched
    assert figures["emissions_g"] == pytest.approx(300.0)  # operational: energy only, no PUE
    assert figures["pue"] == 1.5 and figures["facility_energy_j"] == pytest.approx(5.4e6)
    assert figures["embodied_g"] == pytest.approx(50.0)  # half an hour at 100 g/h
    assert figures["embodied_per_unit_g"] == pytest.approx(5.0)
    assert figures["water_l"] == pytest.approx(3.0)  # 1.5 kWh x 2 L/kWh
    assert figures["water_per_unit_l"] == pytest.approx(0.3)
    assert "estimate" in figures["embodied_source"] and "Boavizta" in figures["embodied_source"]
    assert "estimate" in figures["water_source"] and "2 L/kWh" in figures["water_source"]


def test_a_vm_is_charged_its_vcpus_share():
    embodied = embodied_share(
        FootprintSettings(), "cpu", "Intel Xeon", None, 8, {"server_vcpu": VCPU}
    )
    assert embodied.g_per_hour == pytest.approx(8 * 8760 / 8760)
    assert embodied.source.startswith("estimate: 8 x vCPU X")


def test_defaults_pue_1_facility_equals_energy_and_default_wue_is_cited():
    footprint = Footprint(FootprintSettings(), Embodied(None, "none"))
    figures = window_figures(facts(footprint))
    assert figures["pue"] == 1.0 and figures["facility_energy_j"] == figures["energy_j"]
    assert figures["water_l"] == pytest.approx(DEFAULT_WUE_L_PER_KWH)
    assert "LBNL" in figures["water_source"]


def test_unknown_hardware_gives_no_embodied_figure_and_says_why():
    assert hardware_class("cuda:0", "AMD EPYC", "NVIDIA GeForce RTX 4090") is None
    embodied = embodied_share(
        FootprintSettings(), "cuda:0", "AMD EPYC", "NVIDIA GeForce RTX 4090", 16
    )
    assert embodied.g_per_hour is None
    assert "RTX 4090" in embodied.source and "set [footprint] hardware" in embodied.source
    figures = window_figures(facts(Footprint(FootprintSettings(), embodied)))
    assert figures["embodied_g"] is None and figures["embodied_per_unit_g"] is None
    assert figures["embodied_source"] == embodied.source


@pytest.mark.parametrize(
    ("device", "cpu", "gpu", "expected"),
    [
        ("cuda:0", "", "NVIDIA H200", "nvidia_h200"),
        ("cuda:1", "", "NVIDIA H100 80GB HBM3", "nvidia_h100"),
        ("cuda:0", "", "NVIDIA A100-SXM4-80GB", "nvidia_a100"),
        ("cuda:0", "", "AMD Instinct MI300X", "amd_mi300"),
        ("cpu", "Apple M2 Pro", None, "apple_m"),
        ("cpu", "Intel(R) Xeon(R)", None, "server_vcpu"),
    ],
)
def test_hardware_classes_are_detected_and_shipped(device, cpu, gpu, expected):
    assert hardware_class(device, cpu, gpu) == expected
    row = embodied_classes()[expected]
    assert row.embodied_kg > 0 and row.lifetime_years > 0 and row.url.startswith("https://")


def test_producers_without_a_footprint_leave_the_columns_none():
    record = build_record(window_figures(facts(None)))
    assert all(record[c] is None for c in FOOTPRINT_COLUMNS)  # type: ignore[literal-required]


def test_settings_parse_and_travel_in_the_cell_context():
    suite = parse_suite(
        {
            "workloads": ["slm-tiny"],
            "footprint": {"pue": 1.2, "wue_l_per_kwh": 0.5, "hardware": "laptop"},
        },
        "s.toml",
    )
    assert suite.footprint == FootprintSettings(pue=1.2, wue_l_per_kwh=0.5, hardware="laptop")
    assert parse_suite(suite.to_dict(), "run.json").footprint == suite.footprint
    context = cell_context(Cell("slm-tiny", "fp32", "cpu", {}), "r", 1, "s", "GB", suite.footprint)
    assert (
        context["pue"] == 1.2
        and json.loads(json.dumps(context["footprint"]))["hardware"] == "laptop"
    )
    assert "footprint" not in build_record(context)  # settings, not a column


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"pue": 0.9}, "footprint.pue", "between 1 and 5"),
        ({"pue": "high"}, "footprint.pue", "a number"),
        ({"wue_l_per_kwh": -1}, "footprint.wue_l_per_kwh", "between 0"),
        ({"hardware": "toaster"}, "footprint.hardware", "one of server_vcpu"),
        ({"pu": 1.1}, "footprint.pu", "unknown key"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(table, key, words):
    with pytest.raises(SuiteError) as e:
        parse_footprint(table, lambda k, p: SuiteError("s.toml", k, p))
    assert e.value.key == key and words in e.value.problem and "\n" not in str(e.value)


def test_a_footprint_that_is_not_a_table_is_refused():
    with pytest.raises(SuiteError, match="must be a table"):
        parse_suite({"workloads": ["slm-tiny"], "footprint": 1.2}, "s.toml")


def test_old_records_without_the_columns_still_load(tmp_path):
    context = cell_context(Cell("slm-tiny", "fp32", "cpu", {}), "r", 1, "s", "GB")
    where = {"phase": "inference", "repetition": 0}
    row = build_record(context, where, window_figures(facts(None, energy_j=5.0)))
    old = {c: v for c, v in row.items() if c not in FOOTPRINT_COLUMNS}
    run = tmp_path / "r"
    run.mkdir()
    (run / "records.jsonl").write_text(json.dumps(old) + "\n")
    frame = load_results(tmp_path)
    assert len(frame) == 1 and frame["energy_j"][0] == 5.0
    assert frame[FOOTPRINT_COLUMNS].isna().all(axis=None)


def test_the_terminal_line_gives_embodied_and_water_per_unit_with_sources():
    footprint = Footprint(
        FootprintSettings(pue=1.5, wue_l_per_kwh=2.0), Embodied(100.0, "estimate: GPU X, Boavizta")
    )
    where = {"cell_id": "m/fp32/cuda", "status": "ok", "phase": "inference", "repetition": 0}
    rows = [build_record(where, window_figures(facts(footprint, duration_s=1800.0)))]
    rows.append(build_record({**where, "cell_id": "old"}, window_figures(facts(None))))
    line = footprint_line(pd.DataFrame(rows))
    assert line is not None and line.startswith("footprint (estimate, PUE 1.5")
    assert "m/fp32/cuda 5 gCO2e embodied, 0.3 L water per token" in line
    assert "old" not in line  # rows without a footprint are left out
    assert "Boavizta" in line and "2 L/kWh" in line
    assert footprint_line(pd.DataFrame(rows[1:])) is None


def with_footprint(frame, footprint):
    """Synthetic records given the footprint columns their windows would have."""
    rows = [
        {
            **row,
            **footprint_columns(footprint, row["energy_j"], row["duration_s"], row["unit_count"]),
        }
        for row in frame.to_dict("records")
    ]
    return pd.DataFrame(rows)


def test_the_report_stacks_embodied_on_operational_and_gives_water_with_sources():
    footprint = Footprint(
        FootprintSettings(pue=1.2), Embodied(36.0, "estimate: <GPU X>, Boavizta test")
    )
    frame = with_footprint(synthetic_frame({"cnn": ["forward"]}, ["fp32"], runs=2), footprint)
    fig = figures.carbon_over_time(frame)
    embodied = [t for t in fig.data if "embodied" in (t.name or "")]
    assert len(embodied) == 1 and "estimate" in embodied[0].name
    assert list(embodied[0].y) == pytest.approx([36.0 * 15 / 3600] * 2)  # 3 windows of 5 s
    assert fig.layout.barmode == "stack"
    page = build_report(frame, ["x"])
    assert "embodied share stacked on top" in page
    assert "water cnn/fp32/cpu" in page and "&lt;GPU X&gt;" in page and "LBNL" in page


def test_the_report_without_footprint_columns_draws_no_embodied_bar():
    frame = synthetic_frame({"cnn": ["forward"]}, ["fp32"])
    fig = figures.carbon_over_time(frame.drop(columns=FOOTPRINT_COLUMNS))
    assert not [t for t in fig.data if "embodied" in (t.name or "")]
    assert "Estimates, not part" not in build_report(frame, ["x"])


def test_compare_shows_embodied_and_water_per_unit_as_labelled_estimates(tmp_path, capsys):
    store = RunStore.create(tmp_path, {"status": "complete"})
    footprint = Footprint(FootprintSettings(), Embodied(3600.0, "estimate: test"))
    for variant in ("fp32", "bf16"):
        context = cell_context(Cell("slm-tiny", variant, "cpu", {}), store.run_id, 1, "s", "GB")
        store.append(
            build_record(
                context,
                {"phase": "decode", "repetition": r},
                window_figures(facts(footprint, duration_s=10.0, unit_count=100)),
            )
            for r in (1, 2)
        )
    assert main(["compare", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "emb./unit" in out and "water/unit" in out
    assert "0.1 " in out  # 3600 g/h x 10 s / 100 units
    assert "footprint estimates, not measured" in out
    shutil.rmtree(store.path)
    store = RunStore.create(tmp_path, {"status": "complete"})
    context = cell_context(Cell("slm-tiny", "fp32", "cpu", {}), store.run_id, 1, "s", "GB")
    store.append(
        [build_record(context, {"phase": "decode", "repetition": 1}, window_figures(facts(None)))]
    )
    assert main(["compare", str(store.path)]) == 0
    assert "water/unit" not in capsys.readouterr().out


def test_pue_comes_from_the_flag_or_the_api_over_the_suites_and_a_bad_one_is_one_line(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('workloads = ["slm-tiny"]\n[footprint]\npue = 1.2\nhardware = "laptop"\n')
    given = resolve_suite(RunOverrides(suite=str(suite), pue=1.4))
    assert given.footprint == FootprintSettings(pue=1.4, hardware="laptop")  # the rest kept
    assert resolve_suite(RunOverrides(suite=str(suite))).footprint.pue == 1.2
    args = build_parser().parse_args(["run", "--suite", str(suite), "--pue", "1.6"])
    assert resolve_suite(RunOverrides.from_args(args)).footprint.pue == 1.6
    with pytest.raises(SuiteError) as e:
        resolve_suite(RunOverrides(workloads=["slm-tiny"], pue=0.8))
    assert str(e.value).startswith("--pue") and "between 1 and 5" in str(e.value)
    assert "\n" not in str(e.value)
