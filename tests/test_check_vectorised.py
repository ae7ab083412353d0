"""check.verdicts and with_verdicts (every cell at once) against the cell-at-a-time loop they
replaced: the same verdicts in the same order, the same reasons word for word, the same
`cell_valid`/`cell_reasons` columns, on frames built to trip every rule and edge case."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenbench import check
from greenbench.check import (
    CELL,
    MAX_CV,
    MIN_VALID_WINDOWS,
    RULE_COLUMNS,
    THROTTLE_DROP,
    Verdict,
    verdicts,
    with_verdicts,
)
from greenbench.energy.meter import COMPONENTS
from greenbench.energy.methods import METHODS
from greenbench.gpu_clocks import BUSY_PCT, busy_clocks_of_text
from greenbench.protocol import RELIABLE_WINDOW_S
from greenbench.records import BUSY_CLOCK_COLUMNS, COLUMNS
from greenbench.report.sample import (
    nightly_levels,
    sweep_frame,
    synthetic_frame,
    write_nightly_runs,
)
from greenbench.results import load_results
from greenbench.stats import SUMMARY_KEYS, as_keys, summarize

# --- the loop implementation verdicts had, kept as the reference -----------------------------


def reference_verdicts(frame: pd.DataFrame) -> list[Verdict]:
    ok = frame.loc[frame["status"] == "ok", [c for c in RULE_COLUMNS if c in frame]]
    if "valid" not in ok:
        ok = ok.assign(valid=True)
    columns = {c: ok[c].tolist() for c in ok}
    found = []
    for (run_id, cell_id, phase), rows in ok.groupby(CELL, sort=False).indices.items():
        part = {c: [values[i] for i in rows] for c, values in columns.items()}
        reasons = tuple(_reasons(part))
        found.append(Verdict(str(run_id), str(cell_id), str(phase), not reasons, reasons))
    return found


def reference_with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    bad = {(v.run_id, v.cell_id, v.phase): v.reasons for v in reference_verdicts(frame)}
    bad = {cell: reasons for cell, reasons in bad.items() if reasons}
    out = frame.copy()
    cells = list(zip(*(out[c].astype(str) for c in CELL), strict=True)) if len(out) else []
    out["cell_reasons"] = [bad.get(cell, ()) for cell in cells]
    out["cell_valid"] = [cell not in bad for cell in cells]
    return out


def reference_group_verdicts(
    frame: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS
) -> pd.DataFrame:
    judged = as_keys(frame if "cell_valid" in frame else reference_with_verdicts(frame), keys)
    ok = judged.loc[judged["status"] == "ok", [*dict.fromkeys([*keys, *CELL]), "cell_reasons"]]
    cells = ok.drop_duplicates(CELL)
    rows = []
    for group, part in cells.groupby(list(keys), sort=False, dropna=False):
        several_runs = part["run_id"].nunique() > 1
        reasons = tuple(
            f"run {run_id}: {reason}" if several_runs else reason
            for run_id, cell_reasons in zip(part["run_id"], part["cell_reasons"], strict=True)
            for reason in cell_reasons
        )
        rows.append(
            {
                **dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                "cell_valid": not reasons,
                "cell_reasons": reasons,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "cell_valid", "cell_reasons"])


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _present(values: list[Any]) -> list[Any]:
    return [v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))]


def _reasons(part: dict[str, list[Any]]) -> list[str]:
    mask = [v != False for v in part["valid"]]  # noqa: E712 - numpy's False_ too
    reasons = [
        f"repetition {_number(repetition)}: {validity}"
        for repetition, validity, ok in zip(part["repetition"], part["validity"], mask, strict=True)
        if not ok
    ]
    valid = [e for e, ok in zip(part["energy_per_unit_j"], mask, strict=True) if ok]
    if len(valid) < MIN_VALID_WINDOWS:
        reasons.append(
            f"{len(valid)} valid window(s): at least {MIN_VALID_WINDOWS} give an interval"
        )
    short = sum(not bool(r) for r in part["reliable"])
    if short:
        reasons.append(
            f"{short} window(s) shorter than {RELIABLE_WINDOW_S:.0f} s, the meter's resolution: "
            "raise --min-window"
        )
    cv = summarize(valid).cv
    if cv > MAX_CV:
        reasons.append(f"J per unit varies {cv:.0%} over its windows (at most {MAX_CV:.0%})")
    pids = sorted({p for text in _present(part["gpu_foreign_pids"]) for p in json.loads(text)})
    if pids:
        reasons.append(f"other processes computed on the measured GPU (pids {pids})")
    if not _present(part.get("power_limit_w", [])):
        reasons += _throttling(part)
    labels = {m for c in COMPONENTS for m in _present(part[f"method_{c}"])}
    reasons += [f"unknown method label '{m}'" for m in sorted(labels - set(METHODS))]
    return reasons


def _throttling(part: dict[str, list[Any]]) -> list[str]:
    found = []
    for repetition, trace in zip(part["repetition"], part["gpu_trace"], strict=True):
        if not _present([trace]):
            continue
        busy = [r for r in json.loads(trace) if r[3] >= BUSY_PCT]
        clocks = [r[5] for r in busy]
        if clocks and min(clocks) < (1 - THROTTLE_DROP) * max(clocks):
            found.append(
                f"repetition {_number(repetition)}: the SM clock fell from {max(clocks):.0f} to "
                f"{min(clocks):.0f} MHz under load (thermal or power throttling)"
            )
    return found


# --- frames that trip every rule ---------------------------------------------------------------

WORKLOADS = {"tiny-lm": ["prefill", "decode"], "cnn": ["forward"]}
STEADY = [[0.1 * i, 0, 300.0, 95.0, 70.0, 1980.0] for i in range(8)]
THROTTLED = STEADY[:4] + [[0.5 + 0.1 * i, 0, 250.0, 95, 87.0, 1500] for i in range(4)]
IDLE_DIP = STEADY + [[1.0, 0, 50.0, 10.0, 60.0, 600.0]]  # the clock falls, but not under load
JETSON = [[0.1 * i, 0, 10.0, 80.0, 50.0, 0.0, 1.0] for i in range(5)]  # seven fields, clock 0
TRACES = [json.dumps(t) for t in (STEADY, THROTTLED, IDLE_DIP, JETSON, [])]


def _pick(rng: np.random.Generator, choices: list[Any], n: int, common: Any) -> list[Any]:
    """`common` mostly, now and then one of `choices`."""
    return [
        choices[rng.integers(len(choices))] if rng.random() < 0.25 else common for _ in range(n)
    ]


def varied(seed: int = 0) -> pd.DataFrame:
    frame = synthetic_frame(
        WORKLOADS, ["fp32", "bf16", "int8"], devices=("cpu", "cuda"), runs=3, repetitions=4
    )
    rng = np.random.default_rng(seed)
    n = len(frame)
    frame["valid"] = _pick(rng, [False, None, np.False_, math.nan, np.True_, 0], n, True)
    frame["validity"] = _pick(rng, ["net energy -1 J <= 0", "idle <moved> & more", None], n, None)
    frame["reliable"] = _pick(rng, [False, None, math.nan, np.False_, 0.0, "no"], n, True)
    frame["gpu_foreign_pids"] = _pick(rng, ["[]", "[4242]", "[7, 3]", math.nan], n, None)
    frame["gpu_trace"] = _pick(rng, [*TRACES, math.nan], n, None)
    # about half the windows with a trace also carry its busy clock range, as records made
    # since gpu_clocks do (the rule reads those, and parses the others' traces)
    for row in np.flatnonzero(frame["gpu_trace"].notna() & (rng.random(n) < 0.5)):
        busy = busy_clocks_of_text(frame.at[row, "gpu_trace"])
        frame.loc[row, list(BUSY_CLOCK_COLUMNS)] = [busy.samples, busy.low_mhz, busy.high_mhz]
    frame["method_cpu"] = _pick(rng, ["guesswork", "<b>odd</b>", None, math.nan], n, "rapl")
    frame["method_gpu"] = _pick(rng, ["nvml-counter", "zz-unknown", None], n, "none")
    frame.loc[frame["cell_id"].str.startswith("cnn/int8/cuda"), "valid"] = np.False_  # none valid
    # spread: a cell's windows vary by its own factor, some well past MAX_CV
    cells = frame.groupby(CELL, sort=False).ngroup().to_numpy()
    spread = rng.choice([0.0, 0.01, 0.05, 0.08, 0.12, 0.3, 1.0], cells.max() + 1)[cells]
    frame["energy_per_unit_j"] *= 1 + spread * rng.standard_normal(n)
    frame.loc[rng.random(n) < 0.05, "energy_per_unit_j"] = math.nan
    frame.loc[rng.random(n) < 0.03, "energy_per_unit_j"] = math.inf
    # a set power limit on some cells' windows (one window is enough to leave the cell out)
    frame["power_limit_w"] = np.where(rng.random(n) < 0.1, 300.0, math.nan)
    # failed and skipped rows inside measured cells (floats in repetition: 1.0 prints as 1)
    frame.loc[rng.random(n) < 0.08, "status"] = "failed"
    frame.loc[rng.random(n) < 0.04, "status"] = "skipped"
    frame.loc[frame["status"] == "failed", "repetition"] = math.nan
    frame.loc[rng.random(n) < 0.03, "run_id"] = None  # a row with a missing key is in no cell
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # cells interleaved


def assert_same(frame: pd.DataFrame) -> list[Verdict]:
    found = verdicts(frame)
    assert found == reference_verdicts(frame)
    judged, reference = with_verdicts(frame), reference_with_verdicts(frame)
    assert list(judged.columns) == list(reference.columns)  # the records' columns: a copy
    verdict = ["cell_reasons", "cell_valid"]
    pd.testing.assert_frame_equal(judged[verdict], reference[verdict])
    for keys in (SUMMARY_KEYS, ["variant"]):  # a group of many runs: each reason names its run
        pd.testing.assert_frame_equal(
            check.group_verdicts(judged, keys), reference_group_verdicts(reference, keys)
        )
    return found


def test_varied_frames_match_the_loop_and_trip_every_rule():
    found = [v for seed in range(3) for v in assert_same(varied(seed))]
    reasons = " | ".join(r for v in found for r in v.reasons)
    assert re.search(r"repetition \d: net energy -1 J <= 0", reasons)  # 2.0 written as 2
    assert re.search(r"repetition \d: nan", reasons)  # no reason given
    for words in (
        "1 valid window(s): at least 2",
        "0 valid window(s): at least 2",
        "shorter than 5 s",
        "over its windows (at most 10%)",
        "(pids [3, 7])",
        "MHz under load",
        "unknown method label '<b>odd</b>'",
    ):
        assert words in reasons
    assert any(v.valid for v in found) and not all(v.valid for v in found)
    several = check.group_verdicts(varied(0), ["variant"])["cell_reasons"].sum()
    assert several and all(reason.startswith("run ") for reason in several)


def test_plain_dtypes_and_missing_columns_match_the_loop():
    frame = varied(3)
    frame = frame[frame["run_id"].notna()].reset_index(drop=True)
    plain = frame.assign(
        valid=frame["valid"].map(lambda v: v is not False and v != 0),
        reliable=np.arange(len(frame)) % 9 != 0,
        repetition=frame["repetition"].fillna(0).astype(int),
    )
    assert_same(plain)
    assert_same(plain.drop(columns=["valid", "power_limit_w"]))  # records from before them
    assert_same(plain.assign(valid=plain["valid"].astype(float), reliable=0.0))
    assert_same(plain.assign(valid=plain["valid"].astype(int), reliable=math.nan))
    assert_same(plain.assign(energy_per_unit_j=plain["energy_per_unit_j"].astype(object)))
    throttled = plain.assign(power_limit_w=None, gpu_trace=json.dumps(THROTTLED))
    assert_same(throttled.drop(columns=list(BUSY_CLOCK_COLUMNS)))  # every trace parsed
    busy = busy_clocks_of_text(json.dumps(THROTTLED))
    recorded = (busy.samples, busy.low_mhz, busy.high_mhz)  # as window_figures writes them
    assert_same(throttled.assign(**dict(zip(BUSY_CLOCK_COLUMNS, recorded, strict=True))))


def test_spreads_at_the_limit_match_summarize_to_the_last_bit():
    rows = []
    # two windows a, b have CV sqrt(2) |a - b| / (a + b): around MAX_CV, and where the printed
    # percent rounds (12.5 %), a rounding of the mean or std would show
    for i, cv in enumerate([MAX_CV * (1 - 1e-12), MAX_CV, MAX_CV * (1 + 1e-12), 0.125, 0.135]):
        c = cv / math.sqrt(2)
        for repetition, value in enumerate([1.0, (1 + c) / (1 - c)], start=1):
            rows.append(
                {"cell_id": f"w/v{i}/cpu", "repetition": repetition, "energy_per_unit_j": value}
            )
    rows += [  # mean 0: no CV
        {"cell_id": "w/zero/cpu", "repetition": 1, "energy_per_unit_j": -1.0},
        {"cell_id": "w/zero/cpu", "repetition": 2, "energy_per_unit_j": 1.0},
    ]
    frame = pd.DataFrame(rows).assign(
        run_id="r", phase="decode", status="ok", valid=True, reliable=True, method_cpu="rapl",
        method_gpu="none", method_ram="none",
    ).reindex(columns=COLUMNS)  # fmt: skip
    found = assert_same(frame)
    assert [v.valid for v in found] == [True, True, False, False, False, True]


def test_sample_frames_and_nightly_history_match_the_loop(tmp_path):
    assert_same(synthetic_frame(WORKLOADS, ["fp32", "bf16", "int8"], runs=2))
    assert_same(sweep_frame(WORKLOADS, ["fp32", "int8"], batches=(1, 8)))
    levels = {
        ("tiny-lm", "decode", v): nightly_levels(3, seed=i) for i, v in enumerate(["fp32", "int8"])
    }
    write_nightly_runs(tmp_path, levels, repetitions=3)
    assert_same(load_results([tmp_path]))


def test_frames_without_measured_cells_match_the_loop():
    frame = varied(4)
    assert_same(frame.iloc[:0])
    assert_same(frame.assign(status="failed"))
    assert verdicts(frame.iloc[:0]) == []


def test_a_failed_row_of_an_invalid_cell_carries_its_verdict():
    """As before: a row belongs to a cell by its keys, whatever its status."""
    frame = varied(5)
    judged = with_verdicts(frame)
    failed = judged[(judged["status"] == "failed") & ~judged["cell_valid"]]
    assert len(failed) and all(failed["cell_reasons"].map(len))


def test_the_throttling_rule_reads_one_trace():
    assert check._throttling(2.0, json.dumps(THROTTLED)) == (
        "repetition 2: the SM clock fell from 1980 to 1500 MHz under load "
        "(thermal or power throttling)"
    )
    assert check._throttling(1, json.dumps(IDLE_DIP)) is None
