"""How long does a year of nightly history take to load, and to report? (issue 19, item 3)

    python benchmarks/history_scale.py [--nights 365] [--machines 10] [--skip-cold] [--browser]

Writes NIGHTS x MACHINES runs of records in the real schema (greenbench.report.sample's shapes:
10 workloads, 15 phases, 5 variants, 2 devices, 5 repetitions: 750 records a run) into a
temporary results folder, then times: the cold load from JSONL alone, the load that builds
every run's Parquet cache, the warm load from the caches, and the report (build time, size;
with --browser, the time headless Chromium takes to draw it, as report_scale.py). A full year
(365 x 10, 2.7 M records) needs about 25 GB of memory for the cold load's rows: --skip-cold
leaves it out. Results go to docs/benchmarks.md by hand, with this command and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

from report_scale import browser_seconds, records_frame

from greenbench.report.page import build_report
from greenbench.results import load_results
from greenbench.store import RECORDS_FILE, RUN_FILE

TEMPLATE_DAY = "2026-11-01T"  # report.sample's START: the one night the template rows hold


def template_lines() -> str:
    """One run's records (750) as JSONL, with the run id and node as placeholders."""
    frame = records_frame(750)
    lines = []
    for row in frame.to_dict("records"):
        row = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        row["run_id"], row["node"] = "@RUN@", "@NODE@"
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def write_history(root: Path, nights: int, machines: int) -> int:
    template = template_lines()
    start = dt.date(2025, 11, 1)
    for night in range(nights):
        day = start + dt.timedelta(days=night)
        for machine in range(machines):
            run_id = f"{day:%Y%m%d}-220000-{machine:04x}"
            folder = root / run_id
            folder.mkdir()
            text = (
                template.replace("@RUN@", run_id)
                .replace("@NODE@", f"node-{machine:02d}")
                .replace(TEMPLATE_DAY, f"{day:%Y-%m-%d}T")
            )
            (folder / RECORDS_FILE).write_text(text)
            meta = {"run_id": run_id, "status": "complete", "suite": "synthetic"}
            (folder / RUN_FILE).write_text(json.dumps(meta))
    return template.count("\n") * nights * machines


def timed(what: str, action):
    """Run `action`, printing its wall time and this process's CPU time (on a shared machine
    the CPU time is the figure to trust: the wall time includes waiting for a core)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{what}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--skip-cold", action="store_true", help="no JSONL-only load")
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="greenbench-history-"))
    try:
        count = timed("write the runs", lambda: write_history(root, args.nights, args.machines))
        print(f"records: {count:,} in {args.nights * args.machines} runs", flush=True)
        if not args.skip_cold:
            cold = timed("cold load (JSONL only)", lambda: load_results(root, use_cache=False))
            del cold
        timed("load that builds the caches", lambda: load_results(root))
        cache_mb = sum(p.stat().st_size for p in root.glob("*/.*.parquet")) / 1e6
        print(f"caches: {cache_mb:.1f} MB", flush=True)
        frame = timed("warm load (caches)", lambda: load_results(root))
        html = timed("build the report", lambda: build_report(frame, [str(root)]))
        page = root / "report.html"
        page.write_text(html, encoding="utf-8")
        print(f"report size: {page.stat().st_size / 1e6:.2f} MB", flush=True)
        if args.browser:
            seconds, plots = browser_seconds(page)
            print(f"chromium load and draw: {seconds:.2f} s, plots: {plots}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
