"""How long does a year of nightly history take to load, and to report? (issue 19, item 3)

    python benchmarks/history_scale.py [--nights 365] [--machines 10] [--cold] [--browser]
                                       [--dir DIR]

Writes NIGHTS x MACHINES runs of records in the real schema (greenbench.report.sample's shapes:
10 workloads, 15 phases, 5 variants, 2 devices, 5 repetitions: 750 records a run; every float
of every record times its own random factor within +-3 %, so no two runs are alike) into a
temporary results folder, then times, each in this process's CPU time and wall time:

- with --cold, the load from JSONL alone (every row a Python dict: about 25 GB for a full year);
- the first load, which builds each run's Parquet cache and the folder's Arrow cache;
- the warm load through the folder's cache, and through the per-run caches alone;
- the load after one more night's run (the folder's cache rewritten with it);
- the report (build time, size; with --browser, the time headless Chromium takes to load and
  draw it, as report_scale.py).

With --dir the runs are written there and kept; a DIR that holds runs already is reused (no
writing, no first load; the new night's run of an earlier pass is taken out first). Results go
to docs/benchmarks.md by hand, with this command and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from report_scale import records_frame

from greenbench import folder_cache
from greenbench.report.page import build_report
from greenbench.results import load_results
from greenbench.store import RECORDS_FILE, RUN_FILE

TEMPLATE_DAY = "2026-11-01T"  # report.sample's START: the one night the template rows hold
NOISE = 0.03


def template_frame() -> pd.DataFrame:
    """One run's records (750), as report.sample makes them."""
    return records_frame(750)


def run_text(template: pd.DataFrame, run_id: str, node: str, day: dt.date, seed: int) -> str:
    """The template as one night's records.jsonl: its own ids, dates and float figures."""
    rows = template.copy()
    floats = rows.select_dtypes("float").columns
    rng = np.random.default_rng(seed)
    rows[floats] = rows[floats] * (1 + rng.uniform(-NOISE, NOISE, size=(len(rows), len(floats))))
    for column in ("window_start", "recorded_at"):
        rows[column] = rows[column].str.replace(TEMPLATE_DAY, f"{day:%Y-%m-%d}T", regex=False)
    rows["run_id"], rows["node"] = run_id, node
    return rows.to_json(orient="records", lines=True, double_precision=15)


def write_run(root: Path, template: pd.DataFrame, night: int, machine: int) -> Path:
    day = dt.date(2025, 11, 1) + dt.timedelta(days=night)
    run_id = f"{day:%Y%m%d}-220000-{machine:04x}"
    folder = root / run_id
    folder.mkdir()
    text = run_text(template, run_id, f"node-{machine:02d}", day, night * 1000 + machine)
    (folder / RECORDS_FILE).write_text(text)
    meta = {"run_id": run_id, "status": "complete", "suite": "synthetic"}
    (folder / RUN_FILE).write_text(json.dumps(meta))
    return folder


def write_history(root: Path, nights: int, machines: int) -> int:
    template = template_frame()
    for night in range(nights):
        for machine in range(machines):
            write_run(root, template, night, machine)
    return len(template) * nights * machines


def timed(what: str, action):
    """Run `action`, printing its wall time and this process's CPU time (on a shared machine
    the CPU time is the figure to trust: the wall time includes waiting for a core)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{what}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    return result


# after the load: time each Plotly.newPlot from its call to its promise (the lazy plots)
TIME_DRAWS = """
window.greenbenchDraws = [];
var newPlot = Plotly.newPlot;
Plotly.newPlot = function (div) {
  var started = performance.now();
  return newPlot.apply(this, arguments).then(function (plot) {
    window.greenbenchDraws.push([div.id, div.dataset.view, performance.now() - started]);
    return plot;
  });
};
"""


def browser_timings(page: Path) -> None:
    """Headless Chromium: the load event (the page's scripts run, the figures near the view
    drawn), how many plots are drawn then, how long the rest take once scrolled to (the report
    draws a large figure only when it comes near the view, one at a time), each one's draw,
    and the load of a page holding plotly.js alone (what any report pays first)."""
    from plotly.offline import get_plotlyjs
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1300,2400"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    drawn = "return Array.from(document.querySelectorAll('div.plot')).filter(d => d.data).length"
    try:
        bare = page.with_name(f"{page.stem}-plotly-only.html")
        bare.write_text(f"<html><head><script>{get_plotlyjs()}</script></head></html>")
        started = time.perf_counter()
        driver.get(bare.as_uri())
        print(f"chromium, a page of plotly.js alone: {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        driver.get(page.as_uri())
        loaded = time.perf_counter() - started
        total = driver.execute_script("return document.querySelectorAll('div.plot').length")
        print(f"chromium load event: {loaded:.2f} s, plots drawn {driver.execute_script(drawn)}"
              f" of {total}", flush=True)  # fmt: skip
        driver.execute_script(TIME_DRAWS)
        started = time.perf_counter()  # down the page a screen at a time, as a reader would
        while driver.execute_script(drawn) < total and time.perf_counter() - started < 300:
            driver.execute_script("window.scrollBy(0, 1200)")
            time.sleep(0.05)
        rest = time.perf_counter() - started
        print(f"chromium: every plot drawn {rest:.2f} s after scrolling down", flush=True)
        draws = driver.execute_script("return window.greenbenchDraws")
        if draws:
            slowest = max(draws, key=lambda d: d[2])
            views = sorted({view for _, view, _ in draws})
            print(f"chromium: {len(draws)} plots drawn late ({', '.join(views)}): "
                  f"{sum(d[2] for d in draws) / 1000:.2f} s in all, the slowest "
                  f"{slowest[2] / 1000:.2f} s ({slowest[1]}, {slowest[0]})")  # fmt: skip
            for view in views:
                mine = [d[2] / 1000 for d in draws if d[1] == view]
                print(f"  {view}: {len(mine)} plot(s), {sum(mine):.2f} s, "
                      f"each {min(mine):.2f}-{max(mine):.2f} s")  # fmt: skip
    finally:
        driver.quit()


def per_run_caches_only(root: Path):
    """A warm load as before the folder's cache: through each run's Parquet cache."""
    kept = folder_cache.FOLDER_MIN
    folder_cache.FOLDER_MIN = 10**9
    try:
        return load_results(root)
    finally:
        folder_cache.FOLDER_MIN = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--cold", action="store_true", help="also the JSONL-only load")
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium")
    parser.add_argument("--dir", type=Path, help="write the runs here and keep them (or reuse)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="greenbench-history-"))
    root.mkdir(parents=True, exist_ok=True)
    extra = root / f"{dt.date(2025, 11, 1) + dt.timedelta(days=args.nights):%Y%m%d}-220000-0000"
    shutil.rmtree(extra, ignore_errors=True)  # an earlier pass's extra night
    reused = any(root.glob(f"*/{RECORDS_FILE}"))
    try:
        if not reused:
            count = timed("write the runs", lambda: write_history(root, args.nights, args.machines))
            print(f"records: {count:,} in {args.nights * args.machines} runs", flush=True)
        if args.cold:
            cold = timed("cold load (JSONL only)", lambda: load_results(root, use_cache=False))
            del cold
        if not reused:
            timed("first load: builds the caches", lambda: load_results(root))
        run_mb = sum(p.stat().st_size for p in root.glob("*/.*.parquet")) / 1e6
        folder_mb = (root / folder_cache.FOLDER_CACHE).stat().st_size / 1e6
        print(f"caches: per-run Parquet {run_mb:.0f} MB, folder Arrow {folder_mb:.0f} MB")
        timed("warm load, per-run caches only", lambda: per_run_caches_only(root))
        frame = timed("warm load, folder cache", lambda: load_results(root))
        print(f"records: {len(frame):,} in {frame['run_id'].nunique()} runs", flush=True)
        print(f"frame: {frame.memory_usage(deep=True).sum() / 1e9:.2f} GB in memory", flush=True)
        write_run(root, template_frame(), args.nights, 0)
        timed("load after one more run", lambda: load_results(root))
        html = timed("build the report", lambda: build_report(frame, [str(root)]))
        page = root.parent / f"{root.name}-report.html" if args.dir else root / "report.html"
        page.write_text(html, encoding="utf-8")
        print(f"report size: {page.stat().st_size / 1e6:.2f} MB", flush=True)
        if args.browser:
            browser_timings(page)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"peak memory of this process: {peak:.1f} GB")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
