"""Latency percentiles (TTFT/TPOT), latency targets, `compare --latency`, J per response."""

import functools
import json
import math

import pandas as pd
import pytest
from conftest import WINDOW_FACTS

from greenbench.compare import compare
from greenbench.errors import GreenbenchError
from greenbench.latency_rank import rank_by_latency
from greenbench.latency_target import parse_latency_target, parse_latency_targets
from greenbench.protocol import TokenLatency
from greenbench.records import COLUMNS, build_record, token_latency_columns, window_figures
from greenbench.response_energy import response_energy, target_tokens_energy, weighted_sum
from greenbench.stats import SUMMARY_KEYS, Summary, summarize, summarize_frame, t975

# --- the target parser ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "op", "limit_s"),
    [
        ("p90<=50ms", "call_p90_s", "<=", 0.050),
        ("p99<1s", "call_p99_s", "<", 1.0),
        ("ttft_p90<=200ms", "ttft_p90_s", "<=", 0.200),
        ("tpot_p50<=30ms", "tpot_p50_s", "<=", 0.030),
        (" P50 <= 250us ", "call_p50_s", "<=", 250e-6),
        ("tpot_p99<1.5e1ms", "tpot_p99_s", "<", 0.015),
    ],
)
def test_latency_targets_read_metric_comparison_and_limit(text, column, op, limit_s):
    target = parse_latency_target(text)
    assert (target.column, target.op) == (column, op)
    assert target.limit_s == pytest.approx(limit_s)


def test_a_target_is_met_strictly_or_not_and_never_by_a_missing_figure():
    at_most, below = parse_latency_target("p90<=50ms"), parse_latency_target("p90<50ms")
    assert at_most.met_by(0.050) and not below.met_by(0.050) and below.met_by(0.0499)
    assert not at_most.met_by(0.051) and not at_most.met_by(math.nan)
    assert str(parse_latency_target("TTFT_P90 <= 200 MS")) == "ttft_p90<=200ms"
    assert parse_latency_target("ttft_p90<=200ms").name == "ttft_p90"


@pytest.mark.parametrize(
    "text", ["p95<=50ms", "p90>=50ms", "p90<=50", "p90<=50min", "latency<1s", "p90<=0ms", ""]
)
def test_bad_targets_fail_in_one_line_naming_the_accepted_forms(text):
    with pytest.raises(GreenbenchError) as found:
        parse_latency_targets(["p90<=1s", text])
    message = str(found.value)
    assert "\n" not in message and "--latency" in message and "ttft_p90<=200ms" in message


# --- TTFT/TPOT from the measured call times ------------------------------------------------


def test_ttft_and_tpot_percentiles_come_from_the_call_times():
    times = sorted([0.10 + 0.01 * i for i in range(10)])  # 0.10 .. 0.19 s
    decode = token_latency_columns(times, TokenLatency("tpot", tokens_per_call=16))
    assert decode["tpot_p50_s"] == pytest.approx(0.14 / 16)  # nearest rank: the 5th of 10
    assert decode["tpot_p90_s"] == pytest.approx(0.18 / 16)
    assert decode["tpot_p99_s"] == pytest.approx(0.19 / 16)
    assert decode["ttft_p90_s"] is None
    prefill = token_latency_columns(times, TokenLatency("ttft"))
    assert prefill["ttft_p90_s"] == pytest.approx(0.18) and prefill["tpot_p50_s"] is None
    assert set(token_latency_columns(times, None).values()) == {None}  # other kinds


def test_a_windows_record_carries_its_phases_token_latency():
    import dataclasses

    facts = dataclasses.replace(
        WINDOW_FACTS, call_times_s=(0.4, 0.2, 0.3), token_latency=TokenLatency("tpot", 4)
    )
    figures = window_figures(facts)
    assert figures["call_p50_s"] == pytest.approx(0.3)
    assert figures["tpot_p50_s"] == pytest.approx(0.3 / 4)
    assert figures["tpot_p99_s"] == pytest.approx(0.4 / 4) and figures["ttft_p50_s"] is None
    assert list(build_record(figures)).index("tpot_p99_s") == COLUMNS.index("tpot_p99_s")


# --- hand-made records ----------------------------------------------------------------------


def lm_rows(variant, batch, prefill_j, decode_j, ttft_s, tpot_s, new_tokens=16):
    """Three repetitions of an LM cell's prefill and decode windows."""
    params = json.dumps({"batch": batch, "new_tokens": new_tokens, "prompt_tokens": 32})
    out = []
    for phase, values, latency in (("prefill", prefill_j, ttft_s), ("decode", decode_j, tpot_s)):
        for i, value in enumerate(values):
            call = latency if phase == "prefill" else latency * new_tokens
            out.append(
                {
                    "run_id": "r",
                    "cell_id": f"slm/{variant}/cpu/b{batch}",
                    "attempt": 1,
                    "suite": "s",
                    "workload": "slm",
                    "task": "inference",
                    "phase": phase,
                    "params": params,
                    "variant": variant,
                    "device": "cpu",
                    "node": "n",
                    "repetition": i + 1,
                    "unit": "token",
                    "energy_per_unit_j": value,
                    "method_cpu": "rapl",
                    "method_gpu": "none",
                    "method_ram": "none",
                    "estimated": False,
                    "reliable": True,
                    "status": "ok",
                    "call_p50_s": call * 0.9,
                    "call_p90_s": call,
                    f"{'ttft' if phase == 'prefill' else 'tpot'}_p90_s": latency,
                    f"{'ttft' if phase == 'prefill' else 'tpot'}_p50_s": latency * 0.9,
                }
            )
    return out


def lm_frame(*groups):
    return pd.DataFrame([r for g in groups for r in g]).reindex(columns=COLUMNS)


SWEEP = lm_frame(
    # variant, batch, prefill J/token, decode J/token, TTFT p90, TPOT p90
    lm_rows("fp32", 1, [1.0, 1.02, 0.98], [4.0, 4.1, 3.9], 0.020, 0.010),
    lm_rows("fp32", 16, [0.3, 0.31, 0.29], [0.5, 0.52, 0.48], 0.300, 0.040),
    lm_rows("int8", 1, [0.8, 0.82, 0.78], [3.0, 3.1, 2.9], 0.030, 0.008),
    lm_rows("int8", 16, [0.2, 0.21, 0.19], [0.4, 0.41, 0.39], 0.250, 0.030),
)


def test_a_cells_latency_is_the_median_of_its_windows_percentiles():
    rows = lm_rows("fp32", 1, [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 0.02, 0.01)
    for row, p90 in zip(rows[:3], (0.02, 0.5, 0.03), strict=True):  # one disturbed window
        row["ttft_p90_s"] = p90
    summary = summarize_frame(lm_frame(rows)).set_index("phase")
    assert summary.loc["prefill", "ttft_p90_s"] == pytest.approx(0.03)
    assert summary.loc["decode", "tpot_p90_s"] == pytest.approx(0.01)
    assert math.isnan(summary.loc["decode", "ttft_p90_s"])


# --- J per response and J for N tokens -----------------------------------------------------


def test_a_weighted_sum_adds_spread_variances_and_idle_errors_linearly():
    prefill = Summary(3, 1.0, 0.1, math.nan, math.nan, idle_se=0.02, idle_df=4)
    decode = Summary(4, 2.0, 0.4, math.nan, math.nan, idle_se=0.01, idle_df=5)
    total = weighted_sum([(32.0, prefill), (16.0, decode)])
    assert total.mean == pytest.approx(32 + 32)
    spread = [(32 * 0.1) ** 2 / 3, (16 * 0.4) ** 2 / 4]
    idle = 32 * 0.02 + 16 * 0.01  # one baseline under both phases: the errors add
    assert total.se == pytest.approx(math.sqrt(sum(spread) + idle**2))
    df = (sum(spread) + idle**2) ** 2 / (spread[0] ** 2 / 2 + spread[1] ** 2 / 3 + idle**4 / 4)
    assert total.df == pytest.approx(df)
    assert total.ci95 == pytest.approx(t975(df) * total.se)
    assert total.n == 3


def test_j_per_response_and_for_target_tokens_count_the_prompts_needed():
    prefill, decode = summarize([1.0, 1.1, 0.9]), summarize([4.0, 4.2, 3.8])
    response = response_energy(prefill, decode, (32, 16))
    assert response.mean == pytest.approx(32 * 1.0 + 16 * 4.0)
    assert response.ci95 > 0
    # 100 tokens at 16 per sequence: 7 sequences' prompts, 100 decoded tokens
    target = target_tokens_energy(prefill, decode, (32, 16), 100)
    assert target.mean == pytest.approx(7 * 32 * 1.0 + 100 * 4.0)
    assert target.ci95 > response.ci95
    one = weighted_sum([(1.0, summarize([2.0]))])
    assert one.n == 1 and math.isnan(one.ci95)  # one window: no interval


def test_compare_adds_a_response_row_per_lm_configuration_with_its_ratio():
    table = compare(SWEEP, "variant", target_tokens=64)
    response = table[table["phase"] == "response"].set_index(["variant", "params"])
    assert len(response) == 4
    b1 = json.dumps({"batch": 1, "new_tokens": 16, "prompt_tokens": 32})
    fp32, int8 = response.loc[("fp32", b1)], response.loc[("int8", b1)]
    assert fp32["j_per_unit"] == pytest.approx(32 * 1.0 + 16 * 4.0)
    assert int8["ratio"] == pytest.approx((32 * 0.8 + 16 * 3.0) / (32 + 64))
    assert int8["ratio_low"] < int8["ratio"] < int8["ratio_high"]
    assert fp32["j_for_target"] == pytest.approx(4 * 32 * 1.0 + 64 * 4.0)
    assert fp32["ttft_p90_s"] == pytest.approx(0.020) and fp32["tpot_p90_s"] == 0.010
    plain = compare(SWEEP, "variant")
    assert "j_for_target" not in plain and (plain["phase"] == "response").sum() == 4
    with pytest.raises(GreenbenchError, match="--target-tokens"):
        compare(SWEEP, "variant", target_tokens=0)


# --- ranking under targets ------------------------------------------------------------------


@functools.cache
def compared(target_tokens=None):
    """compare(SWEEP) once per target_tokens: the rankings below only read it."""
    return compare(SWEEP, "variant", target_tokens=target_tokens)


def ranked(*targets, target_tokens=None):
    table = compared(target_tokens)
    keys = [k for k in SUMMARY_KEYS if k in table]
    return rank_by_latency(table, keys, parse_latency_targets(list(targets)))


def batch_of(params):
    return json.loads(params)["batch"]


def test_targets_keep_configurations_meeting_all_of_them_ranked_by_energy():
    ranking = ranked("ttft_p90<=260ms", "tpot_p90<35ms")
    response = ranking.kept[ranking.kept["phase"] == "response"]
    # fp32 b16 misses TTFT (300 ms) and TPOT (40 ms): dropped, with the first miss
    kept = zip(response["variant"], response["params"].map(batch_of), strict=True)
    assert list(kept) == [("int8", 16), ("int8", 1), ("fp32", 1)]
    assert list(response["rank"]) == [1, 2, 3]
    assert len(ranking.dropped) == 1
    dropped = ranking.dropped.iloc[0]
    assert dropped["variant"] == "fp32" and batch_of(dropped["params"]) == 16
    assert "ttft_p90 300 ms misses ttft_p90<=260ms" in dropped["reason"]
    assert "tpot_p90 40 ms misses tpot_p90<35ms" in dropped["reason"]
    decode = ranking.kept[ranking.kept["phase"] == "decode"]
    assert list(decode["j_per_unit"]) == sorted(decode["j_per_unit"])  # each phase ranked


def test_the_ladder_names_the_cheapest_configuration_for_each_tighter_target():
    ranking = ranked("ttft_p90<=1s")
    response = ranking.kept[ranking.kept["phase"] == "response"].set_index("rank")
    # by J/response: int8 b16 (250 ms), fp32 b16 (300 ms), int8 b1 (30 ms), fp32 b1 (20 ms)
    assert list(response["cheapest_at"]) == ["ttft_p90<=250ms", "", "ttft_p90<=30ms",
                                             "ttft_p90<=20ms"]  # fmt: skip
    best = response.loc[1, "j_per_unit"]
    assert response.loc[3, "cost"] == pytest.approx(response.loc[3, "j_per_unit"] / best)
    assert response.loc[1, "cost"] == 1 and math.isnan(response.loc[2, "cost"])


def test_a_target_no_phase_measures_drops_the_configuration():
    rows = lm_rows("fp32", 1, [1.0, 1.0], [2.0, 2.0], 0.02, 0.01)
    table = compare(lm_frame([r for r in rows if r["phase"] == "decode"]), "variant")
    keys = [k for k in SUMMARY_KEYS if k in table]
    ranking = rank_by_latency(table, keys, [parse_latency_target("ttft_p90<=1s")])
    assert ranking.kept.empty
    assert "no ttft_p90 measured" in ranking.dropped.iloc[0]["reason"]


def test_target_tokens_rank_responses_by_the_same_work():
    ranking = ranked("p90<=10s", target_tokens=1000)
    response = ranking.kept[ranking.kept["phase"] == "response"]
    energies = list(response["rank_energy"])
    assert energies == sorted(energies)
    assert energies[0] == pytest.approx(1000 * 0.4 + 63 * 32 * 0.2)  # int8 b16; ceil(1000/16)


# --- the command ----------------------------------------------------------------------------


def test_compare_latency_prints_the_ranking_and_what_was_dropped(tmp_path, capsys):
    from greenbench.cli import main
    from greenbench.store import RunStore

    store = RunStore.create(tmp_path, {"status": "complete"})
    records = SWEEP.astype(object).where(SWEEP.notna(), None).to_dict("records")
    store.append([build_record(r, {"run_id": store.run_id}) for r in records])
    argv = ["compare", str(store.path), "--latency", "ttft_p90<=260ms", "--target-tokens", "64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "response: meeting ttft_p90<=260ms, ranked by J for 64 generated tokens" in out
    assert "TTFT p90 ms" in out and "cheapest at" in out
    assert "dropped for latency: fp32 batch=16: prefill ttft_p90 300 ms misses" in out
    assert main(["compare", str(store.path), "--latency", "p95<1s"]) == 2
    assert "--latency: cannot read 'p95<1s'" in capsys.readouterr().err
    # without --target-tokens the response rows rank by J per response (no target column)
    assert main(["compare", str(store.path), "--latency", "ttft_p90<=260ms"]) == 0
    out = capsys.readouterr().out
    assert "response: meeting ttft_p90<=260ms, ranked by energy per response" in out


def test_the_runs_tables_show_ttft_tpot_in_ms_and_a_derived_response_table():
    from rich.console import Console

    from greenbench.terminal import results_tables

    tables = {t.title.split(":")[0]: t for t in results_tables(SWEEP)}
    headers = {phase: [str(c.header) for c in t.columns] for phase, t in tables.items()}
    assert headers["prefill"][-2:] == ["TTFT p50 ms", "TTFT p90 ms"]
    assert headers["decode"][-2:] == ["TPOT p50 ms", "TPOT p90 ms"]
    assert "J/response ± CI95" in headers["response"] and "TPOT p90 ms" in headers["response"]
    assert "derived" in tables["response"].title
    console = Console(width=200, record=True)
    console.print(tables["decode"])
    assert "│          10 │" in console.export_text()  # fp32 batch=1: TPOT p90 10 ms


def test_records_older_than_the_latency_columns_summarise_without_them():
    old = SWEEP.drop(columns=["call_p50_s", "call_p90_s", "ttft_p90_s", "tpot_p90_s"])
    summary = summarize_frame(old)
    assert summary["call_p90_s"].isna().all() and summary["ttft_p90_s"].isna().all()
    ranking = rank_by_latency(
        compare(old, "variant"), SUMMARY_KEYS, [parse_latency_target("p90<1s")]
    )
    assert ranking.kept.empty and len(ranking.dropped) == 4


def test_a_configuration_without_valid_windows_is_dropped_saying_so():
    rows = lm_rows("fp32", 1, [1.0, 1.0], [2.0, 2.0], 0.02, 0.01)
    for row in rows:
        row.update(valid=False, validity="net energy -1 J <= 0")
    table = compare(lm_frame(rows), "variant", include_invalid=True)
    keys = [k for k in SUMMARY_KEYS if k in table]
    ranking = rank_by_latency(table, keys, [parse_latency_target("tpot_p90<=1s")])
    assert "no valid window to read tpot_p90 from" in ranking.dropped.iloc[0]["reason"]
