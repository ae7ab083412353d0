"""The report's views at scale (issue 19, item 3): the vectorised tables and figure helpers
against the row-by-row implementations they replaced, kept here as the reference.

Every view is built twice, once with the reference implementations patched in, and must give
the same JSON: the same traces, points in the same order, hover text and layout."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from greenbench.check import with_verdicts
from greenbench.compare import quality_change
from greenbench.formatting import fmt, fmt_joules
from greenbench.report import data, figures, sweeps
from greenbench.report.latency import LATENCY_COLUMNS, parse_latency_target
from greenbench.report.sample import sweep_frame, synthetic_frame
from greenbench.stats import CELL_KEYS, SUMMARY_COLUMNS, ratio, summarize_frame, summary_of
from greenbench.variants import BASELINE

# --- the implementations the vectorised ones replaced, kept as the reference ------------------


def old_pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for i, row in points.iterrows():
        dominated = (
            (points["j_per_unit"] <= row["j_per_unit"])
            & (points["throughput"] >= row["throughput"])
            & (
                (points["j_per_unit"] < row["j_per_unit"])
                | (points["throughput"] > row["throughput"])
            )
        ).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values("throughput")


def _old_pair_verdict(row: Any, base: Any, base_name: str = "fp32") -> tuple[bool, str]:
    reasons = [*row.get("cell_reasons", ())]
    reasons += [f"{base_name}: {r}" for r in base.get("cell_reasons", ())]
    valid = bool(row.get("cell_valid", True)) and bool(base.get("cell_valid", True))
    return valid, "<br>".join(reasons)


def old_tradeoffs(summary: pd.DataFrame, include_invalid: bool = False) -> pd.DataFrame:
    if summary.empty:
        return pd.DataFrame()
    rows = []
    scored = summary[summary["fidelity_top1"].notna()]
    for _, row in scored.iterrows():
        base = summary[
            (summary["workload"] == row["workload"])
            & (summary["phase"] == row["phase"])
            & (summary["device"] == row["device"])
            & (summary["variant"] == BASELINE)
        ]
        if base.empty:
            continue
        valid, validity = _old_pair_verdict(row, base.iloc[0])
        if not (valid or include_invalid):
            continue
        r = ratio(summary_of(row), summary_of(base.iloc[0]))
        rows.append(
            {
                **{k: row[k] for k in ("workload", "phase", "variant", "device", "label")},
                "saving": 1 - r.value,
                "saving_low": 1 - r.high,
                "saving_high": 1 - r.low,
                "fidelity_top1": row["fidelity_top1"],
                "fidelity_kl": row["fidelity_kl"],
                "quality_metric": row.get("quality_metric"),
                "quality_change": quality_change(row, base.iloc[0]),
                "quantized_share": row.get("quantized_share", float("nan")),
                "cell_valid": valid,
                "validity": validity,
            }
        )
    return pd.DataFrame(rows)


def old_comparison(
    now: pd.DataFrame, before: pd.DataFrame, include_invalid: bool = False
) -> pd.DataFrame:
    from greenbench.check import with_group_verdicts

    now, _ = data.valid_cells(now, include_invalid)
    before, _ = data.valid_cells(before, include_invalid)
    a = with_group_verdicts(summarize_frame(now, CELL_KEYS), now, CELL_KEYS)
    b = with_group_verdicts(summarize_frame(before, CELL_KEYS), before, CELL_KEYS)
    if a.empty or b.empty:
        return pd.DataFrame()
    joined = a.merge(b, on=CELL_KEYS, suffixes=("", "_before"))
    rows = []
    for _, row in joined.iterrows():
        earlier = {k: row[f"{k}_before"] for k in (*SUMMARY_COLUMNS, "cell_valid", "cell_reasons")}
        valid, validity = _old_pair_verdict(row, pd.Series(earlier), "baseline")
        r = ratio(summary_of(row), summary_of(earlier))
        rows.append(
            {
                **{k: row[k] for k in CELL_KEYS},
                "label": f"{row['workload']} / {row['phase']} / {row['variant']} / {row['device']}",
                "ratio": r.value,
                "low": r.low,
                "high": r.high,
                "regression": valid and math.isfinite(r.low) and r.low > 1,
                "improvement": valid and math.isfinite(r.high) and r.high < 1,
                "cell_valid": valid,
                "validity": validity,
            }
        )
    return pd.DataFrame(rows)


def old_customdata(part: pd.DataFrame) -> list[list[str]]:
    keys = part[figures.FILTER_KEYS].astype(str).values.tolist()
    reasons = part["validity"] if "validity" in part else [""] * len(part)
    return [[*k, figures._invalid_hover(r)] for k, r in zip(keys, reasons, strict=True)]


def old_cluster_labels(x: pd.Series, y: pd.Series, labels: pd.Series) -> dict[Any, str]:
    gap = figures.CLUSTER_GAP
    spread_x = float(x.max() - x.min()) or 1.0
    spread_y = float(y.max() - y.min()) or 1.0
    order = sorted(x.index, key=lambda i: (-y[i], x[i]))
    clusters: list[list[Any]] = []
    for i in order:
        near = next(
            (
                c
                for c in clusters
                if any(
                    abs(x[i] - x[j]) / spread_x < gap and abs(y[i] - y[j]) / spread_y < gap
                    for j in c
                )
            ),
            None,
        )
        if near is None:
            clusters.append([i])
        else:
            near.append(i)
    drawn = {}
    for cluster in clusters:
        drawn[cluster[0]] = "<br>".join(str(labels[i]) for i in cluster)
        drawn.update({i: "" for i in cluster[1:]})
    return drawn


def old_segments(windows: pd.DataFrame, values: pd.Series) -> tuple[list, list, list]:
    xs: list = []
    ys: list = []
    custom: list = []
    for (_, w), value in zip(windows.iterrows(), values, strict=True):
        start = w["start"]
        end = start + pd.to_timedelta(w["duration_s"], unit="s")
        xs += [start, end, None]
        ys += [value, value, None]
        custom += [[w[k] for k in figures.FILTER_KEYS]] * 3
    return xs, ys, custom


def old_latest_windows(frame: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    ok = frame[(frame["status"] == "ok") & frame["window_start"].notna()]
    if ok.empty:
        return None
    run = ok.sort_values("window_start")["run_id"].iloc[-1]
    return run, ok[ok["run_id"] == run]


def old_hover_data(rows: pd.DataFrame, metric: str = "p90") -> list[list[str]]:
    column = LATENCY_COLUMNS[metric]
    return [
        [
            *keys,
            str(row["label"]),
            fmt_joules(row["j_per_unit"], row["j_per_unit_ci95"]),
            f"{fmt(row.get(column, math.nan) * 1e3)} ms",
            f"{fmt(row['throughput'])} {row['unit']}s/s",
        ]
        for keys, (_, row) in zip(sweeps._customdata(rows), rows.iterrows(), strict=True)
    ]


def old_point_labels(points: pd.DataFrame, devices: int) -> pd.Series:
    def label(row: pd.Series) -> str:
        device = [str(row["device"])] if devices > 1 else []
        return " ".join([str(row["variant"]), *device, data.sweep_text(row["sweep"])]).strip()

    return pd.Series([label(r) for _, r in points.iterrows()], index=points.index, dtype=object)


REFERENCE: list[tuple[Any, str, Callable[..., Any]]] = [
    (data, "pareto_front", old_pareto_front),
    (figures, "pareto_front", old_pareto_front),
    (data, "tradeoffs", old_tradeoffs),
    (data, "comparison", old_comparison),
    (figures, "_customdata", old_customdata),
    (sweeps, "_customdata", old_customdata),
    (figures, "_cluster_labels", old_cluster_labels),
    (sweeps, "_cluster_labels", old_cluster_labels),
    (figures, "_segments", old_segments),
    (figures, "latest_windows", old_latest_windows),
    (sweeps, "_hover_data", old_hover_data),
    (sweeps, "_point_labels", old_point_labels),
]


# --- the records the views are drawn from -------------------------------------------------------

WORKLOADS = {"slm": ["prefill", "decode"], "cnn": ["forward"]}
VARIANTS = ["fp32", "bf16", "int8-dynamic"]


def _unstable(frame: pd.DataFrame, workload: str, variant: str) -> pd.DataFrame:
    """`frame` with that cell's repetitions far apart: greenbench check judges it invalid."""
    frame = frame.copy()
    cell = (frame["workload"] == workload) & (frame["variant"] == variant)
    for phase in frame.loc[cell, "phase"].unique():
        rows = frame.index[cell & (frame["phase"] == phase)]
        spread = [1.0, 1.6, 0.6] * (len(rows) // 3 + 1)
        frame.loc[rows, "energy_per_unit_j"] *= spread[: len(rows)]
    return frame


def _with_quality(frame: pd.DataFrame) -> pd.DataFrame:
    """Labelled-input quality on the slm cells (perplexity), none on the others."""
    frame = frame.copy()
    slm = frame["workload"] == "slm"
    frame.loc[slm, "quality_metric"] = "perplexity"
    frame.loc[slm, "quality"] = 12.0 + frame.loc[slm, "fidelity_kl"].fillna(0) * 100
    return frame


def _unscored(frame: pd.DataFrame) -> pd.DataFrame:
    """No net figure for one cell, no fidelity for another."""
    frame = frame.copy()
    frame.loc[(frame["workload"] == "cnn") & (frame["variant"] == "bf16"), "energy_per_unit_j"] = (
        math.nan
    )
    gone = (frame["workload"] == "slm") & (frame["variant"] == "int8-dynamic")
    frame.loc[gone & (frame["phase"] == "decode"), "fidelity_top1"] = math.nan
    return frame


def _with_failures(frame: pd.DataFrame) -> pd.DataFrame:
    """A failed cell in the latest run, and one in a run of its own that started last."""
    latest = frame["run_id"].max()
    failed = frame[frame["run_id"] == latest].iloc[[0]].assign(status="failed", error="boom")
    later = failed.assign(run_id="29991231-220000-ffff", window_start="2999-12-31T22:00:00.000")
    return pd.concat([frame, failed, later], ignore_index=True)


def _gpu_traced(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["gpu_trace"] = "[[0.0, 0, 250.0, 90, 60, 1700], [0.1, 0, 260.0, 91, 60, 1700]]"
    return frame


def _cases() -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame | None]]:
    """(name, records, baseline records)."""
    two = synthetic_frame(WORKLOADS, VARIANTS, devices=("cpu", "cuda"))
    before = synthetic_frame(WORKLOADS, VARIANTS, devices=("cpu", "cuda"), seed=5)
    invalid = _with_failures(_unstable(_unstable(two, "cnn", "fp32"), "slm", "bf16"))
    yield "two devices, invalid and failed cells", invalid, _unscored(before)
    no_base = (two["workload"] == "slm") & (two["device"] == "cuda") & (two["variant"] == "fp32")
    yield "no fp32 baseline on one device, NaN figures", _unscored(two[~no_base]), None
    one = _gpu_traced(_with_quality(synthetic_frame(WORKLOADS, VARIANTS, runs=2, seed=2)))
    yield "one device, two runs, quality, gpu trace", one, None
    sweep = sweep_frame({"slm": ["decode"], "cnn": ["forward"]}, VARIANTS, (1, 4, 16))
    yield "sweep with an invalid cell", _unstable(sweep, "slm", "int8-dynamic"), None


def _json(view: Any) -> Any:
    if isinstance(view, figures.Missing):
        return view
    if isinstance(view, pd.DataFrame):
        return view.to_json(orient="split", date_format="iso", default_handler=str)
    return view.to_json()


def views(
    safe: pd.DataFrame,
    summary: pd.DataFrame,
    ratio_summary: pd.DataFrame,
    before: pd.DataFrame | None,
    include_invalid: bool,
) -> list:
    """Every view that draws on the replaced code, as JSON, from escaped, judged records, their
    cell summary and the summary the ratio views use (as report.page.sections has them)."""
    tradeoffs = data.tradeoffs(ratio_summary, include_invalid)
    out = [
        figures.efficiency_frontier(summary, include_invalid),
        tradeoffs,
        figures.quantization_tradeoff(tradeoffs),
        sweeps.latency_frontier(summary, include_invalid),
    ]
    if not include_invalid:  # these views draw invalid cells either way
        out.append(figures.power_over_time(safe))
        if summary["sweep"].map(bool).any():
            target = parse_latency_target("p50<=400ms")
            out += [sweeps.sweep_view(summary), sweeps.latency_frontier(summary, False, target)]
    if before is not None:
        ratios = data.comparison(safe, before, include_invalid)
        out += [ratios, figures.comparison(ratios, "before")]
    return [_json(v) for v in out]


@pytest.mark.parametrize(("name", "frame", "before"), list(_cases()))
def test_every_view_is_the_same_as_the_row_by_row_code_drew(name, frame, before):
    safe = with_verdicts(data.escaped(frame))
    before = None if before is None else with_verdicts(data.escaped(before))
    summary = data.cell_summary(safe)
    for include_invalid in (False, True):
        kept = data.valid_cells(safe, include_invalid)[0]
        inputs = (safe, summary, summary if include_invalid else data.cell_summary(kept), before)
        now = views(*inputs, include_invalid)
        with pytest.MonkeyPatch.context() as patch:
            for module, attribute, reference in REFERENCE:
                patch.setattr(module, attribute, reference)
            then = views(*inputs, include_invalid)
        assert len(now) == len(then)
        for i, (new, old) in enumerate(zip(now, then, strict=True)):
            assert new == old, f"{name}, include_invalid={include_invalid}: view {i} differs"


# --- the helpers on points chosen to hit their edge cases ----------------------------------------


def _points(seed: int, n: int) -> pd.DataFrame:
    """Points with ties, duplicates, NaN and a shuffled index, as the helpers may get them."""
    rng = random.Random(seed)
    grid = [rng.choice([0.5, 1.0, 1.0, 2.0, 3.0, 4.0, 8.0]) for _ in range(n)]
    energy = [g if rng.random() < 0.5 else rng.uniform(0.1, 10) for g in grid]
    speed = [rng.choice([1.0, 2.0, 2.0, 5.0]) if rng.random() < 0.5 else rng.uniform(1, 9)
             for _ in range(n)]  # fmt: skip
    for values in (energy, speed):
        for i in rng.sample(range(n), n // 10):
            values[i] = math.nan
    index = rng.sample(range(10 * n), n)
    return pd.DataFrame({"j_per_unit": energy, "throughput": speed}, index=index)


@pytest.mark.parametrize("seed", range(4))
def test_the_pareto_front_is_the_pairwise_one(seed):
    points = _points(seed, 40 + 40 * seed)
    pd.testing.assert_frame_equal(data.pareto_front(points), old_pareto_front(points))


def test_the_pareto_front_of_no_points_and_of_infinite_points():
    empty = pd.DataFrame({"j_per_unit": [], "throughput": []}, dtype=float)
    pd.testing.assert_frame_equal(data.pareto_front(empty), old_pareto_front(empty))
    odd = pd.DataFrame(
        {"j_per_unit": [math.inf, 1.0, -math.inf, 1.0], "throughput": [math.inf, 2.0, 1.0, -1.0]}
    )
    pd.testing.assert_frame_equal(data.pareto_front(odd), old_pareto_front(odd))


@pytest.mark.parametrize("seed", range(4))
def test_cluster_labels_group_the_points_as_the_pairwise_search_did(seed):
    points = _points(seed, 40 + 60 * seed)
    x, y = points["throughput"], points["j_per_unit"]
    if seed % 2:  # crowded: most points near another
        x, y = x.round(0), y.round(0)
    labels = pd.Series([f"p{i}" for i in points.index], index=points.index)
    assert figures._cluster_labels(x, y, labels) == old_cluster_labels(x, y, labels)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf
@pytest.mark.parametrize(
    "values",
    [[1.0, 1.0, 1.0], [math.inf, 1.0, 2.0], [math.nan, math.nan, math.nan], [3.0], [1.0, np.nan]],
)
def test_cluster_labels_of_degenerate_axes(values):
    x = pd.Series(values, index=range(5, 5 + len(values)))
    y = pd.Series([2.0] * len(values), index=x.index)
    labels = pd.Series([str(i) for i in x.index], index=x.index)
    assert figures._cluster_labels(x, y, labels) == old_cluster_labels(x, y, labels)
    assert figures._cluster_labels(y, x, labels) == old_cluster_labels(y, x, labels)


def test_customdata_reads_keys_of_any_dtype_as_the_frame_wide_cast_did():
    part = pd.DataFrame(
        {
            "workload": pd.Series(["slm", None, "cnn"], dtype="str"),
            "variant": pd.Series(["fp32", None, math.nan], dtype=object),
            "device": [1.0, math.nan, 2.0],
            "validity": ["", "unstable", None],
        },
        index=[7, 3, 5],
    )
    for rows in (part, part.drop(columns="validity")):  # repr: NaN equals NaN
        assert repr(figures._customdata(rows)) == repr(old_customdata(rows))
