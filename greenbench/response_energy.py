"""Energy to a result for text generation: J per response, and J for N generated tokens.

Both are derived from an LM configuration's two measured phases, never measured on their own:

- J/response = prefill J/token x prompt_tokens + decode J/token x new_tokens: one sequence's
  prompt read once and its new_tokens generated (the first of them comes from the prefill's
  logits; the decode phase measures exactly new_tokens steps).
- J for N tokens (`--target-tokens N`) = decode J/token x N + prefill J/token x prompt_tokens x
  ceil(N / new_tokens): the prompts of the sequences needed to generate N tokens. Per-token
  figures already spread a batch's energy over its rows, so batch=1 and batch=16 compare on the
  same work (full batches assumed: a last, part-filled batch is not charged extra).

The interval of a sum of the two phases: their windows are independent measurements, so the
variances of their spread add (Welch-Satterthwaite degrees of freedom); both phases subtract the
same idle baseline, whose error has the same sign in each, so the idle parts add linearly before
squaring (the conservative choice; added as independent they would understate it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from greenbench.records import TOKEN_LATENCY_COLUMNS
from greenbench.stats import Summary, summary_of, t975

RESPONSE = "response"  # the derived rows' phase and unit
PREFILL, DECODE = "prefill", "decode"


def weighted_sum(terms: Sequence[tuple[float, Summary]]) -> Summary:
    """sum(w * mean) of one configuration's phases, with its 95% CI (see the module's note).

    The result carries its whole standard error as the fixed part (`idle_se`, with `std` 0 and
    the combined degrees of freedom as `idle_df`), so that `se`, `df` and stats.ratio read it
    back exactly; `n` is the fewest windows of any phase.
    """
    mean = sum(w * s.mean for w, s in terms)
    n = min(s.n for _, s in terms)
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    spreads = [((w * s.std) ** 2 / s.n, s.n - 1.0) for w, s in terms]
    idle = sum(w * s.idle_se for w, s in terms)
    idle_df = min(s.idle_df for _, s in terms)
    variance = sum(v for v, _ in spreads) + idle**2
    if variance == 0:
        return Summary(n, mean, 0.0, 0.0, math.nan, 0.0, math.inf)
    denominator = sum(v**2 / df for v, df in spreads) + (idle**4 / idle_df if idle else 0.0)
    df = variance**2 / denominator if denominator else math.inf
    se = math.sqrt(variance)
    return Summary(n, mean, 0.0, t975(df) * se, math.nan, se, df)


def _lengths(params: Any) -> tuple[int, int] | None:
    """(prompt_tokens, new_tokens) from a summary row's params JSON, None if it lacks them."""
    try:
        values = json.loads(params) if isinstance(params, str) and params else {}
    except ValueError:
        return None
    prompt, new = values.get("prompt_tokens"), values.get("new_tokens")
    if isinstance(prompt, int) and isinstance(new, int) and prompt > 0 and new > 0:
        return prompt, new
    return None


def _summary_columns(summary: Summary) -> dict[str, float]:
    return {
        "n": summary.n,
        "j_per_unit": summary.mean,
        "j_per_unit_ci95": summary.ci95,
        "j_per_unit_cv": math.nan,
        "j_per_unit_std": summary.std,
        "j_per_unit_idle_se": summary.idle_se,
        "j_per_unit_idle_df": summary.idle_df,
    }


def target_tokens_energy(
    prefill: Summary, decode: Summary, lengths: tuple[int, int], n: int
) -> Summary:
    """J for `n` generated tokens (see the module's note)."""
    prompt, new = lengths
    return weighted_sum([(prompt * math.ceil(n / new), prefill), (float(n), decode)])


def response_energy(prefill: Summary, decode: Summary, lengths: tuple[int, int]) -> Summary:
    """J per response: one sequence's prompt tokens and new tokens."""
    prompt, new = lengths
    return weighted_sum([(float(prompt), prefill), (float(new), decode)])


def with_responses(
    summary: pd.DataFrame, keys: Sequence[str], target_tokens: int | None = None
) -> pd.DataFrame:
    """`summary` (summarize_frame + check.with_group_verdicts rows over `keys`) with one
    derived `response` row per LM configuration that measured both prefill and decode in
    tokens; with `target_tokens`, those rows also hold `j_for_target` (and its CI95) and
    `target_tokens`. Other rows are unchanged."""
    if summary.empty or "phase" not in summary:
        return summary
    config = [k for k in keys if k != "phase"]
    derived = []
    for _, part in summary.groupby(config, sort=False, dropna=False):
        phases = {row["phase"]: row for _, row in part.iterrows()}
        if PREFILL not in phases or DECODE not in phases:
            continue
        prefill, decode = phases[PREFILL], phases[DECODE]
        lengths = _lengths(prefill.get("params"))
        if lengths is None or not prefill["unit"] == decode["unit"] == "token":
            continue
        derived.append(_response_row(prefill, decode, lengths, target_tokens))
    if not derived:
        return summary
    return pd.concat([summary, pd.DataFrame(derived)], ignore_index=True)


def _response_row(
    prefill: Mapping[str, Any],
    decode: Mapping[str, Any],
    lengths: tuple[int, int],
    target_tokens: int | None,
) -> dict[str, Any]:
    first, second = summary_of(prefill), summary_of(decode)
    row: dict[str, Any] = {
        **{k: v for k, v in prefill.items() if not _per_phase(k)},
        "phase": RESPONSE,
        "unit": RESPONSE,
        **_summary_columns(response_energy(first, second, lengths)),
        "invalid": prefill.get("invalid", 0) + decode.get("invalid", 0),
        "estimated": bool(prefill.get("estimated")) or bool(decode.get("estimated")),
        "reliable": bool(prefill.get("reliable", True)) and bool(decode.get("reliable", True)),
        "cell_valid": bool(prefill.get("cell_valid", True) and decode.get("cell_valid", True)),
        "cell_reasons": (*prefill.get("cell_reasons", ()), *decode.get("cell_reasons", ())),
        "prompt_tokens": lengths[0],
        "new_tokens": lengths[1],
    }
    # the configuration's latency: TTFT is the prefill's, TPOT the decode's
    for column in TOKEN_LATENCY_COLUMNS:
        row[column] = (prefill if column.startswith("ttft") else decode).get(column, math.nan)
    if target_tokens is not None:
        target = target_tokens_energy(first, second, lengths, target_tokens)
        row.update(
            target_tokens=target_tokens, j_for_target=target.mean, j_for_target_ci95=target.ci95
        )
    return row


# per-phase figures a response row does not inherit from its prefill row
_PER_PHASE = {"gross_j_per_unit", "j_per_call", "j_per_token", "throughput", "power_w"}


def _per_phase(column: str) -> bool:
    return column in _PER_PHASE or column.startswith(("j_per_unit", "call_", "g_per_1k"))
