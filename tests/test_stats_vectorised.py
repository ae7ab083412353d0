"""stats.summarize_frame (every group at once) against the one-group-at-a-time loop it
replaced: the same rows, order, columns, dtypes and figures on varied record frames."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from greenbench.energy.meter import COMPONENTS
from greenbench.history import run_summaries
from greenbench.report.sample import (
    nightly_levels,
    sweep_frame,
    synthetic_frame,
    write_nightly_runs,
)
from greenbench.results import load_results
from greenbench.stats import (
    LATENCY_COLUMNS,
    SUMMARY_KEYS,
    as_keys,
    idle_error,
    key_column,
    key_text,
    summarize,
    summarize_frame,
    valid_mask,
)

# --- the loop implementation summarize_frame had, kept as the reference ----------------------


def _median(part: pd.DataFrame, column: str) -> float:
    if column not in part:
        return math.nan
    return float(pd.to_numeric(part[column], errors="coerce").median())


def _first(part: pd.DataFrame, column: str) -> str | None:
    if column not in part:
        return None
    values = part[column].dropna()
    return str(values.iloc[0]) if len(values) else None


def _mean(part: pd.DataFrame, column: str) -> float:
    if column not in part:
        return math.nan
    return float(pd.to_numeric(part[column], errors="coerce").mean())


def reference_summarize_frame(
    frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS
) -> pd.DataFrame:
    ok = as_keys(frame[frame["status"] == "ok"], keys)
    rows = []
    for group, cell in ok.groupby(list(keys), sort=True, dropna=False):
        part = cell[valid_mask(cell)]
        per_unit = summarize(part["energy_per_unit_j"], *idle_error(part))
        methods = sorted(
            {
                f"{c}:{m}"
                for c in COMPONENTS
                for m in cell[f"method_{c}"].dropna().unique()
                if m != "none"
            }
        )
        rows.append(
            {
                **dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                "n": per_unit.n,
                "invalid": len(cell) - len(part),
                "unit": cell["unit"].iloc[0],
                "j_per_unit": per_unit.mean,
                "j_per_unit_ci95": per_unit.ci95,
                "j_per_unit_cv": per_unit.cv,
                "j_per_unit_std": per_unit.std,
                "j_per_unit_idle_se": per_unit.idle_se,
                "j_per_unit_idle_df": per_unit.idle_df,
                "gross_j_per_unit": _mean(part, "gross_energy_per_unit_j"),
                "j_per_call": _mean(part, "energy_per_call_j"),
                "j_per_token": per_unit.mean / _mean(cell, "tokens_per_unit"),
                "fidelity_top1": _mean(cell, "fidelity_top1"),
                "fidelity_kl": _mean(cell, "fidelity_kl"),
                "quality_metric": _first(cell, "quality_metric"),
                "quality": _mean(cell, "quality"),
                "fidelity_cosine": _mean(cell, "fidelity_cosine"),
                "quantized_share": _mean(cell, "quantized_share"),
                "throughput": _mean(cell, "throughput"),
                "power_w": _mean(part, "power_w"),
                "g_per_1k_units": _mean(part, "emissions_per_1k_units_g"),
                "embodied_g_per_unit": _mean(part, "embodied_per_unit_g"),
                "water_l_per_unit": _mean(part, "water_per_unit_l"),
                "methods": " ".join(methods),
                "estimated": bool(cell["estimated"].astype(bool).any()),
                "reliable": bool(cell["reliable"].astype(bool).all()),
                **{column: _median(part, column) for column in LATENCY_COLUMNS},
            }
        )
    return pd.DataFrame(rows)


# --- comparison -------------------------------------------------------------------------------


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = got[column], want[column]
        assert a.dtype == b.dtype, (column, a.dtype, b.dtype)
        if pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(), b.to_numpy()
            # a spread of equal values is 0 up to rounding: measured against the mean's size
            scale = np.nanmax(np.abs(want["j_per_unit"].to_numpy()), initial=1.0)
            atol = (
                1e-12 * scale
                if column in ("j_per_unit_std", "j_per_unit_cv", "j_per_unit_ci95")
                else 0.0
            )
            same = np.isclose(x, y, rtol=1e-12, atol=atol, equal_nan=True) | (x == y)
            assert same.all(), (column, x[~same], y[~same])
        else:
            assert a.tolist() == b.tolist(), column


def check(frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS) -> pd.DataFrame:
    got = summarize_frame(frame, keys)
    assert_same(got, reference_summarize_frame(frame, keys))
    return got


WORKLOADS = {"tiny-lm": ["prefill", "decode"], "cnn": ["forward"]}


def varied() -> pd.DataFrame:
    """Two runs of synthetic records, edited into the shapes real records take."""
    frame = synthetic_frame(WORKLOADS, ["fp32", "bf16", "int8"], runs=2, repetitions=3)
    rng = np.random.default_rng(1)
    frame["idle_power_se_w"] = rng.uniform(0.05, 0.5, len(frame))
    frame["idle_samples"] = rng.integers(3, 40, len(frame)).astype(float)
    frame.loc[::7, "idle_samples"] = math.nan  # unknown sample count: df 1
    frame.loc[::11, "idle_power_se_w"] = math.nan  # no idle error for the window
    frame.loc[::5, "valid"] = False  # invalid windows
    # a group whose windows are all invalid keeps its row with n = 0
    all_invalid = (frame["workload"] == "cnn") & (frame["variant"] == "int8")
    frame.loc[all_invalid, "valid"] = False
    # a failed window is left out
    frame.loc[3, "status"] = "failed"
    # a group of one window: CI NaN
    one = frame[(frame["workload"] == "tiny-lm") & (frame["variant"] == "bf16")].index
    frame = frame.drop(one[1:])
    # a second attempt of a cell, with its own idle baseline
    retry = frame[frame["variant"] == "fp32"].head(3).copy()
    retry["attempt"] = 2
    retry["idle_samples"] = 9.0
    frame = pd.concat([frame, retry], ignore_index=True)
    # missing keys, several methods, quality columns, a non-finite value, latency gaps
    frame.loc[::4, "node"] = None
    frame["power_limit_w"] = np.where(np.arange(len(frame)) % 3 == 0, math.nan, 300.0)
    frame.loc[::6, "method_gpu"] = "nvml"
    frame.loc[::9, "method_cpu"] = None
    frame["quality_metric"] = None
    frame.loc[frame["variant"] == "bf16", "quality_metric"] = "accuracy"
    frame.loc[frame["variant"] == "bf16", "quality"] = 0.7
    frame.loc[8, "energy_per_unit_j"] = math.inf
    frame.loc[::3, "call_p90_s"] = math.nan
    frame.loc[::4, "estimated"] = True
    frame.loc[::10, "reliable"] = False
    return frame


def test_synthetic_and_sweep_frames_match_the_loop():
    check(synthetic_frame(WORKLOADS, ["fp32", "bf16", "int8"], runs=2))
    check(sweep_frame(WORKLOADS, ["fp32", "int8"], batches=(1, 8)))


def test_varied_record_shapes_match_the_loop():
    summary = check(varied())
    assert summary["n"].eq(0).any()  # the all-invalid group
    assert summary["n"].eq(1).any() and summary["j_per_unit_ci95"].isna().any()
    assert summary["methods"].str.contains("gpu:nvml").any()
    assert summary["quality_metric"].eq("accuracy").any()


@pytest.mark.parametrize("keys", [["workload", "variant"], ["variant"], [*SUMMARY_KEYS, "run_id"]])
def test_other_keys_match_the_loop(keys):
    check(varied(), keys)


def test_records_without_idle_columns_match_the_loop():
    frame = varied().drop(columns=["idle_samples"])
    check(frame)
    check(frame.drop(columns=["idle_power_se_w", "quality_metric", "call_p50_s"]))


def test_no_ok_records_give_an_empty_summary():
    frame = synthetic_frame(WORKLOADS, ["fp32"]).assign(status="failed")
    assert summarize_frame(frame).empty and reference_summarize_frame(frame).empty


def test_nightly_history_matches_the_loop_and_run_summaries(tmp_path):
    levels = {
        ("tiny-lm", "decode", "fp32"): nightly_levels(4, seed=1),
        ("tiny-lm", "decode", "int8"): nightly_levels(4, seed=2, base=0.7),
    }
    write_nightly_runs(tmp_path, levels, repetitions=3)
    frame = load_results([tmp_path])
    frame["idle_power_se_w"] = 0.2
    frame["idle_samples"] = 12.0
    keys = [*SUMMARY_KEYS, "run_id"]
    summary = check(frame, keys)
    runs = run_summaries(frame[frame["status"] == "ok"], keys)
    joined = summary.merge(runs, on=keys, suffixes=("", "_runs"))
    assert len(joined) == len(runs) == len(summary)
    assert np.allclose(joined["j_per_unit"], joined["j_per_unit_runs"], rtol=1e-12)
    assert np.allclose(
        joined["j_per_unit_ci95"], joined["j_per_unit_ci95_runs"], rtol=1e-12, equal_nan=True
    )


def test_run_summaries_take_a_cells_idle_samples_from_its_first_window_as_idle_error():
    frame = synthetic_frame({"cnn": ["forward"]}, ["fp32"], repetitions=4)
    frame["idle_power_se_w"] = 2.0
    frame["idle_samples"] = [math.nan, 30.0, 30.0, 30.0]  # unknown in the first: df 1
    keys = [*SUMMARY_KEYS, "run_id"]
    (want,) = check(frame, keys).to_dict("records")
    (got,) = run_summaries(frame, keys).to_dict("records")
    assert want["j_per_unit_idle_df"] == pytest.approx(1.0)
    assert got["j_per_unit_ci95"] == pytest.approx(want["j_per_unit_ci95"], rel=1e-12)


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["a", None, "b", "a"], dtype="str"),
        pd.Series(["a", None, np.nan, "a", 3], dtype=object),
        pd.Series([300.0, np.nan, 250.5, 300.0]),
        pd.Series([1, 2, 1]),
        pd.Series([True, False]),
        pd.Series([np.nan, np.nan]),
        pd.Series([None, None], dtype=object),
        pd.Series([], dtype=float),
    ],
)
def test_key_column_is_the_per_row_conversion_it_replaces(column):
    """Each distinct value converted once gives what converting every row gave, dtype too."""
    if pd.api.types.is_numeric_dtype(column):
        as_text = column.astype(object).map(key_text)
    else:
        as_text = column.astype(object).fillna("")
    pd.testing.assert_series_equal(key_column(column, numbers_as_text=True), as_text)
    pd.testing.assert_series_equal(key_column(column), column.astype(object).fillna(""))


def test_floats_is_to_numeric_as_floats_an_all_missing_column_at_once():
    from greenbench.stats import floats

    columns = [
        pd.Series([None, None, None], dtype=object, name="ttft_p50_s"),  # no record filled it
        pd.Series([None, math.nan, pd.NA], dtype=object),
        pd.Series([0.5, None, "2", "x"], dtype=object),
        pd.Series([1, 2, 3]),
        pd.Series([1.5, math.nan]),
        pd.Series([], dtype=object),
    ]
    for column in columns:
        expected = pd.to_numeric(column, errors="coerce").astype(float)
        pd.testing.assert_series_equal(floats(column), expected)
