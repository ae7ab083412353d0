"""The batch-sweep table in docs/benchmarks.md (issue 17): J/token and latency per batch size.

    greenbench run --workload slm-135m --param batch=1,4,16 --variant fp32,int8-dynamic --out R
    python benchmarks/sweep_table.py R [--include-invalid]

Prints one markdown row per cell and phase of the run(s) under R, from the same summary
`greenbench compare` shows (net of idle, 95 % CI over the repetitions, latencies the median of
the valid windows' percentiles), and J per response (prefill + decode, per sequence). Cells that
`greenbench check` judges invalid are left out unless --include-invalid, and counted below.
"""

from __future__ import annotations

import argparse
import math

from greenbench.check import leave_out_invalid, with_group_verdicts
from greenbench.formatting import ESTIMATE_MARK
from greenbench.response_energy import RESPONSE, with_responses
from greenbench.results import load_results
from greenbench.stats import SUMMARY_KEYS, in_catalogue_order, param_columns, summarize_frame


def _ms(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1e3:.0f}"


def _j(value: float, ci95: float, estimated: bool) -> str:
    """`~0.65 ± 0.14`: `~` where the figure rests on a modelled component (records.estimated)."""
    if not math.isfinite(value):
        return "-"
    mark = ESTIMATE_MARK if estimated else ""
    return f"{mark}{value:.4g} ± {ci95:.2g}" if math.isfinite(ci95) else f"{mark}{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--include-invalid", action="store_true")
    args = parser.parse_args()
    frame = load_results(args.paths)
    left_out = 0
    if not args.include_invalid:
        frame, left_out = leave_out_invalid(frame)
    summary = with_group_verdicts(summarize_frame(frame), frame)
    summary = with_responses(summary, SUMMARY_KEYS)
    summary, swept = param_columns(summary)
    summary = in_catalogue_order(summary, ["workload", *swept, "variant", "phase"], swept)
    heads = ["workload", *swept, "variant", "phase", "n", "J per unit ± CI95", "p50 ms", "p90 ms"]
    heads += ["TTFT p90 ms", "TPOT p90 ms", "units/s", "valid"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    any_estimate = False
    for _, row in summary.iterrows():
        unit = "response" if row["phase"] == RESPONSE else row["unit"]
        cells = [str(row["workload"]), *(str(row[k]) for k in swept), str(row["variant"])]
        cells += [f"{row['phase']} (J/{unit})", str(row.get("n", "-"))]
        estimated = bool(row.get("estimated", False))
        any_estimate = any_estimate or estimated
        cells += [_j(row["j_per_unit"], row["j_per_unit_ci95"], estimated)]
        cells += [_ms(row.get("call_p50_s", math.nan)), _ms(row.get("call_p90_s", math.nan))]
        cells += [_ms(row.get("ttft_p90_s", math.nan)), _ms(row.get("tpot_p90_s", math.nan))]
        throughput = row.get("throughput", math.nan)
        cells += ["-" if not math.isfinite(throughput) else f"{throughput:.3g}"]
        cells += ["yes" if row.get("cell_valid", True) else "no"]
        print("| " + " | ".join(cells) + " |")
    if any_estimate:
        methods = ", ".join(sorted(set(summary["methods"].dropna())))
        print(f"\n{ESTIMATE_MARK} estimate: a component that varies with the work was modelled,")
        print(f"not read from an energy counter (methods: {methods}).")
    if left_out:
        print(f"\n{left_out} invalid cell(s) left out (--include-invalid shows them).")


if __name__ == "__main__":
    main()
