"""`compare --latency`: the configurations that meet latency targets, ranked by energy per unit.

A configuration is one summary row's identity without its phase (workload, variant, device,
machine, parameters: batch=1 and batch=16 are two). A target holds for a configuration when
every phase that measured its metric meets it (`p90` judges each phase's calls; `ttft_*` the
prefill, `tpot_*` the decode); a configuration measuring none of it is dropped, and so is one
that misses a target, with the reason. Kept rows are ranked by energy per unit within each
phase (units only compare within a phase), lowest first; LM `response` rows rank by J per
response, or by J for N tokens with `--target-tokens`.

The energy cost of tighter targets rides in the same table: walking a phase's ranking from the
cheapest, a row whose first-target metric beats every cheaper row's is the cheapest
configuration for any limit down to its own value (`cheapest_at`), at `cost` times the energy
of rank 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from greenbench.formatting import fmt_ms
from greenbench.latency_target import LatencyTarget

ENERGY = "rank_energy"  # the figure ranked by (J/unit, or J for N tokens on response rows)
ENERGY_CI = "rank_energy_ci95"


@dataclass(frozen=True)
class LatencyRanking:
    kept: pd.DataFrame  # summary rows meeting every target, with rank, ENERGY, cheapest_at, cost
    dropped: pd.DataFrame  # one row per dropped configuration: its keys and `reason`
    targets: tuple[LatencyTarget, ...]


def _miss(part: pd.DataFrame, target: LatencyTarget) -> str | None:
    """Why a configuration's phases miss `target`, or None when it holds."""
    if target.column in part:
        measured = part[pd.to_numeric(part[target.column], errors="coerce").notna()]
    else:
        measured = part.iloc[0:0]
    if measured.empty:
        if (pd.to_numeric(part["n"], errors="coerce").fillna(0) == 0).any():
            # latency, like energy, is read from valid windows only
            return f"no valid window to read {target.name} from (greenbench check says why)"
        return f"no {target.name} measured (needed by {target})"
    for _, row in measured.iterrows():
        value = float(row[target.column])
        if not target.met_by(value):
            return f"{row['phase']} {target.name} {fmt_ms(value)} ms misses {target}"
    return None


def rank_by_latency(
    summary: pd.DataFrame, keys: Sequence[str], targets: Sequence[LatencyTarget]
) -> LatencyRanking:
    """`summary` (compare's rows over `keys`, response rows included) filtered by `targets`
    (all must hold) and ranked; see the module's note."""
    config = [k for k in keys if k != "phase"]
    kept_parts, dropped = [], []
    for names, part in summary.groupby(config, sort=False, dropna=False):
        reasons = [r for r in (_miss(part, t) for t in targets) if r]
        if reasons:
            values = names if isinstance(names, tuple) else (names,)
            dropped.append({**dict(zip(config, values, strict=True)), "reason": "; ".join(reasons)})
        else:
            kept_parts.append(part)
    dropped_frame = pd.DataFrame(dropped, columns=[*config, "reason"])
    if not kept_parts:
        return LatencyRanking(summary.iloc[0:0], dropped_frame, tuple(targets))
    kept = pd.concat(kept_parts, ignore_index=True)
    kept[ENERGY], kept[ENERGY_CI] = kept["j_per_unit"], kept["j_per_unit_ci95"]
    if "j_for_target" in kept:
        derived = kept["j_for_target"].notna()
        kept.loc[derived, ENERGY] = kept.loc[derived, "j_for_target"]
        kept.loc[derived, ENERGY_CI] = kept.loc[derived, "j_for_target_ci95"]
    ranked = [
        _ladder(part.sort_values(ENERGY, na_position="last"), targets[0] if targets else None)
        for _, part in kept.groupby(["phase", "unit"], sort=False)
    ]
    return LatencyRanking(pd.concat(ranked, ignore_index=True), dropped_frame, tuple(targets))


def _ladder(part: pd.DataFrame, target: LatencyTarget | None) -> pd.DataFrame:
    """Rank 1, 2, ... and, for the first target's metric, the frontier of tighter limits."""
    part = part.reset_index(drop=True)
    part["rank"] = range(1, len(part) + 1)
    best = float(part[ENERGY].iloc[0])
    cheapest_at: list[str] = []
    costs: list[float] = []
    fastest = math.inf
    for _, row in part.iterrows():
        value = float(row.get(target.column, math.nan)) if target else math.nan
        if math.isfinite(value) and value < fastest and math.isfinite(row[ENERGY]):
            fastest = value
            assert target is not None
            cheapest_at.append(f"{target.name}<={fmt_ms(value)}ms")
            costs.append(row[ENERGY] / best if best > 0 else math.nan)
        else:
            cheapest_at.append("")
            costs.append(math.nan)
    part["cheapest_at"] = cheapest_at
    part["cost"] = costs
    return part
