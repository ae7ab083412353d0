import pandas as pd
import pytest

from greenbench.compare import compare
from greenbench.errors import GreenbenchError
from greenbench.records import COLUMNS


def rows(variant, values, device="cpu", status="ok"):
    return [
        {
            "run_id": "r",
            "cell_id": f"w/{variant}/{device}",
            "attempt": 1,
            "suite": "s",
            "workload": "w",
            "task": "inference",
            "phase": "decode",
            "params": "{}",
            "variant": variant,
            "device": device,
            "repetition": i + 1,
            "unit": "token",
            "energy_per_unit_j": v,
            "gross_energy_per_unit_j": v * 2,
            "throughput": 10.0,
            "power_w": 20.0,
            "emissions_per_1k_units_g": 0.1,
            "method_cpu": "rapl",
            "method_gpu": "none",
            "method_ram": "ram-estimate",
            "estimated": True,
            "reliable": True,
            "status": status,
        }
        for i, v in enumerate(values)
    ]


def frame(*groups):
    return pd.DataFrame([r for g in groups for r in g]).reindex(columns=COLUMNS)


def test_compare_by_variant_ratios_against_fp32_with_ci():
    table = compare(
        frame(
            rows("fp32", [1.0, 1.02, 0.98]),
            rows("int8", [0.5, 0.52, 0.48]),
            rows("bf16", [9.9], status="failed"),
        ),
        by="variant",
    )
    assert list(table["variant"]) == ["fp32", "int8"]  # failed rows are not summarised
    fp32, int8 = table.iloc[0], table.iloc[1]
    assert fp32["ratio"] == pytest.approx(1.0) and not fp32["significant"]
    assert int8["ratio"] == pytest.approx(0.5)
    assert int8["ratio_low"] < 0.5 < int8["ratio_high"] < 1 and int8["significant"]
    assert int8["n"] == 3 and int8["methods"] == "cpu:rapl ram:ram-estimate"


def test_compare_with_a_named_baseline_and_matching_on_the_other_keys():
    data = frame(
        rows("fp32", [1.0, 1.0]), rows("int8", [2.0, 2.0]), rows("fp32", [4.0, 4.0], device="cuda")
    )
    table = compare(data, by="variant", baseline="int8")
    cuda = table[table["device"] == "cuda"].iloc[0]
    assert pd.isna(cuda["ratio"])  # no int8 on cuda to compare with
    cpu_fp32 = table[(table["device"] == "cpu") & (table["variant"] == "fp32")].iloc[0]
    assert cpu_fp32["ratio"] == pytest.approx(0.5)


def test_compare_rejects_unknown_axis_and_baseline():
    data = frame(rows("fp32", [1.0, 1.0]))
    with pytest.raises(GreenbenchError, match="--by: unknown axis"):
        compare(data, by="colour")
    with pytest.raises(GreenbenchError, match="--baseline: no variant 'int4'.*have fp32"):
        compare(data, by="variant", baseline="int4")


def test_rows_from_two_machines_or_two_batch_sizes_are_never_pooled(capsys):
    def on(node, variant, values, batch=1):
        group = rows(variant, values)
        for row in group:  # another machine or batch size: another run of the cell
            row.update(node=node, params=f'{{"batch": {batch}}}', run_id=f"{node}-{batch}")
        return group

    data = frame(
        on("a", "fp32", [1.0, 1.0]), on("a", "int8", [0.5, 0.5]),
        on("b", "fp32", [4.0, 4.0]), on("b", "int8", [1.0, 1.0]),
        on("a", "fp32", [9.0, 9.0], batch=8),
    )  # fmt: skip
    table = compare(data, "variant")
    int8 = table[table["variant"] == "int8"].set_index("node")
    assert int8.loc["a", "ratio"] == 0.5 and int8.loc["b", "ratio"] == 0.25  # each on its own
    assert len(table[(table["variant"] == "fp32") & (table["node"] == "a")]) == 2  # two batches


def test_the_compare_table_shows_the_machine_only_where_it_tells_rows_apart(tmp_path, capsys):
    from greenbench.cli import main
    from greenbench.records import build_record
    from greenbench.store import RunStore

    store = RunStore.create(tmp_path, {"status": "complete"})
    for node in ("alpha", "beta"):
        store.append([build_record(r, {"run_id": store.run_id, "node": node}) for r in
                      rows("fp32", [1.0, 1.1])])  # fmt: skip
    assert main(["compare", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "node" in out and "alpha" in out and "beta" in out
