"""How long does greenbench check's throttling rule take over a year of GPU windows?

    python benchmarks/throttle_rule.py [--windows 100000] [--samples 100]

Records of GPU cells keep each window's power trace (records.Record.gpu_trace: 10 Hz rows of
W, utilization, temperature, SM clock). The rule judges the SM clock under load; records made
since greenbench.gpu_clocks also carry that range as three columns, which the rule reads
instead of parsing the JSON. This times check.verdicts over WINDOWS windows of SAMPLES trace
rows each (a tenth of them throttled), both ways: the traces alone (records from before the
columns) and the columns. Process CPU time. Results go to docs/benchmarks.md by hand, with
this command and the machine.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from report_scale import records_frame

from greenbench.check import verdicts
from greenbench.gpu_clocks import busy_clocks_of_text
from greenbench.records import BUSY_CLOCK_COLUMNS


def trace_text(rng: np.random.Generator, samples: int, throttled: bool) -> str:
    """A window's trace: under load at about 1,980 MHz, the last quarter at 1,500 if
    `throttled`; a few idle rows at its edges."""
    rows = []
    for i in range(samples):
        busy = 2 <= i < samples - 2
        clock = 1500.0 if throttled and i > 0.75 * samples else 1980.0 + rng.normal(0, 5)
        watts = round(float(rng.uniform(280, 320)), 2)
        utilization, clock = (95.0, round(clock, 1)) if busy else (5.0, 600.0)
        rows.append([round(0.1 * i, 3), 0, watts, utilization, 70.0, clock, 1])
    return json.dumps(rows)


def gpu_windows(windows: int, samples: int) -> pd.DataFrame:
    frame = records_frame(windows).iloc[:windows].reset_index(drop=True)
    frame["device"] = "cuda"
    frame["power_limit_w"] = None
    rng = np.random.default_rng(0)
    distinct = [trace_text(rng, samples, throttled=k % 10 == 0) for k in range(200)]
    frame["gpu_trace"] = [distinct[k] for k in rng.integers(0, len(distinct), len(frame))]
    return frame


def timed(what: str, run) -> list:
    started = time.process_time()
    result = run()
    print(f"{what}: {time.process_time() - started:.2f} s CPU", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    frame = gpu_windows(args.windows, args.samples)
    size = frame["gpu_trace"].str.len().mean()
    print(f"{len(frame):,} GPU windows, traces of {args.samples} rows ({size:,.0f} bytes each)")
    old = frame.drop(columns=list(BUSY_CLOCK_COLUMNS))
    before = timed("check.verdicts, every trace parsed (records before gpu_clocks)",
                   lambda: verdicts(old))  # fmt: skip
    recorded = {}
    for text in frame["gpu_trace"].unique():
        busy = busy_clocks_of_text(text)
        recorded[text] = (busy.samples, busy.low_mhz, busy.high_mhz)
    columns = pd.DataFrame(frame["gpu_trace"].map(recorded).tolist(), columns=BUSY_CLOCK_COLUMNS)
    new = frame.assign(**{c: columns[c] for c in BUSY_CLOCK_COLUMNS})
    after = timed("check.verdicts, the busy clock columns read", lambda: verdicts(new))
    assert before == after, "the two ways must reach the same verdicts"
    throttled = sum(any("MHz under load" in r for r in v.reasons) for v in after)
    print(f"verdicts: {len(after)} cells, {throttled} throttled; both ways agree")


if __name__ == "__main__":
    main()
