"""The terminal view of `compare --latency`: one ranked table per phase, then what was dropped."""

from __future__ import annotations

import json

import pandas as pd
from rich.console import Console
from rich.table import Table

from greenbench.formatting import energy_scale, energy_text, fmt, fmt_ms, window_count
from greenbench.latency_rank import ENERGY, ENERGY_CI, LatencyRanking
from greenbench.response_energy import RESPONSE
from greenbench.stats import phase_order
from greenbench.sweep import varying_params

IDENTITY = ("workload", "variant", "device", "node", "params")
# the latency columns a table shows (ms), beside any column a target names: an LM response
# both of its own; a prefill its TTFT, a decode its TPOT, any other phase its calls'
RESPONSE_LATENCY = ("ttft_p50_s", "ttft_p90_s", "tpot_p50_s", "tpot_p90_s")
PHASE_LATENCY = (
    ("tpot_p50_s", "tpot_p90_s"),
    ("ttft_p50_s", "ttft_p90_s"),
    ("call_p50_s", "call_p90_s"),
)


def phase_latency_columns(part: pd.DataFrame) -> list[str]:
    """The p50 and p90 columns that say most about one phase's latency (see PHASE_LATENCY)."""
    for columns in PHASE_LATENCY:
        if all(c in part for c in columns) and part[columns[1]].notna().any():
            return list(columns)
    return []


def params_labels(params: pd.Series) -> dict[str, str]:
    """Each params JSON -> only the keys whose values differ between them: `batch=16`."""
    texts = list(dict.fromkeys(str(p) for p in params))
    parsed = [json.loads(p) if p.startswith("{") else {} for p in texts]
    differ = varying_params((None, p) for p in parsed)
    return {
        t: " ".join(f"{k}={p.get(k)}" for k in differ) for t, p in zip(texts, parsed, strict=True)
    }


def _named(ranking: LatencyRanking) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Kept and dropped rows with short params labels, and the identity keys that vary."""
    both = pd.concat([ranking.kept, ranking.dropped], ignore_index=True)
    labels = params_labels(both["params"]) if "params" in both else {}
    apart = [k for k in IDENTITY if k in both and both[k].astype(str).nunique() > 1]

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        if "params" not in frame or frame.empty:
            return frame
        return frame.assign(params=frame["params"].astype(str).map(labels))

    return named(ranking.kept), named(ranking.dropped), apart


def latency_header(column: str) -> str:
    """`ttft_p90_s` -> `TTFT p90 ms`; `call_p50_s` -> `p50 ms`."""
    metric, percentile, _ = column.split("_")
    return f"{percentile} ms" if metric == "call" else f"{metric.upper()} {percentile} ms"


def _latency_columns(part: pd.DataFrame, ranking: LatencyRanking) -> list[str]:
    if part["phase"].iloc[0] == RESPONSE:
        wanted = [*RESPONSE_LATENCY, *(t.column for t in ranking.targets)]
    else:  # a target's TTFT or TPOT is the phase's own p50 or p90 column, or in the response's
        wanted = [*phase_latency_columns(part)]
        wanted += [t.column for t in ranking.targets if t.metric == "call"]
    return [c for c in dict.fromkeys(wanted) if c in part and part[c].notna().any()]


def latency_tables(ranking: LatencyRanking) -> list[Table]:
    kept, _, apart = _named(ranking)
    targets = " and ".join(str(t) for t in ranking.targets)
    tables = []
    for phase in sorted(kept["phase"].unique(), key=phase_order):
        part = kept[kept["phase"] == phase]
        unit = part["unit"].iloc[0]
        with_target = "j_for_target" in part and part["j_for_target"].notna().any()
        derived = phase == RESPONSE and with_target
        if derived:
            what = f"J for {int(part['target_tokens'].iloc[0])} generated tokens (derived)"
        elif phase == RESPONSE:
            what = f"energy per {unit} (derived: prefill + decode)"
        else:
            what = f"energy per {unit}"
        factor, scale = energy_scale(part[ENERGY])
        table = Table(
            title=f"{phase}: meeting {targets}, ranked by {what}, net of idle",
            title_justify="left",
        )
        table.add_column("rank", justify="right")
        for key in apart:
            table.add_column(key, no_wrap=True)
        table.add_column("n", justify="right")
        latency = _latency_columns(part, ranking)
        for column in latency:
            table.add_column(latency_header(column), justify="right")
        energy_header = f"{scale} ± CI95" if derived else f"{scale}/{unit} ± CI95"
        table.add_column(energy_header, justify="right", no_wrap=True)
        table.add_column("cheapest at", no_wrap=True)
        table.add_column("x #1", justify="right", no_wrap=True)
        for _, row in part.iterrows():
            table.add_row(
                str(row["rank"]),
                *(str(row[k]) for k in apart),
                window_count(row["n"], row.get("invalid", 0)),
                *(fmt_ms(row[c]) for c in latency),
                energy_text(row[ENERGY], row[ENERGY_CI], bool(row["estimated"]), factor),
                row["cheapest_at"],
                fmt(row["cost"]),
            )
        tables.append(table)
    return tables


def print_latency_ranking(ranking: LatencyRanking, console: Console) -> None:
    """The ranked tables, how to read their ladder, and each configuration dropped and why."""
    if ranking.kept.empty:
        console.print(f"no configuration meets {' and '.join(map(str, ranking.targets))}")
    for table in latency_tables(ranking):
        console.print(table)
    if not ranking.kept.empty and ranking.targets:
        first = ranking.targets[0]
        console.print(
            f"cheapest at: the cheapest configuration for any {first.name} limit down to this "
            f"one; x #1: its energy against the cheapest meeting {first} (the cost of the "
            "tighter target)",
            markup=False,
        )
    _, dropped, apart = _named(ranking)
    for _, row in dropped.iterrows():
        name = " ".join(str(row[k]) for k in apart if str(row[k])) or "every configuration"
        console.print(f"dropped for latency: {name}: {row['reason']}", style="dim", markup=False)
