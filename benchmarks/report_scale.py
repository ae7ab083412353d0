"""How large and how slow is the report for 10,000 records? (issue 5)

    python benchmarks/report_scale.py [--records 10000] [--browser]

Builds synthetic records in the real schema (greenbench.report.sample), writes the page, and
prints the build time and file size; with --browser, also the time headless Chromium takes to
load the page and draw every plot. Results go to docs/benchmarks.md by hand, with this command.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

from greenbench.report.page import build_report
from greenbench.report.sample import synthetic_frame


def records_frame(target: int):
    workloads = {f"model-{i}": ["prefill", "decode"] for i in range(5)}
    workloads |= {f"cnn-{i}": ["forward"] for i in range(5)}
    variants = ["fp32", "bf16", "fp16", "int8-dynamic", "int8-wo"]
    per_run = sum(len(p) for p in workloads.values()) * len(variants) * 2 * 5
    runs = max(1, math.ceil(target / per_run))
    return synthetic_frame(workloads, variants, devices=["cpu", "cuda"], runs=runs, repetitions=5)


def browser_seconds(page: Path) -> tuple[float, int]:
    """Headless Chromium's load of `page` in seconds, and the plots drawn by then."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1300,2400"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        started = time.perf_counter()
        driver.get(page.as_uri())  # returns after the load event: every inline script has run
        plots = driver.execute_script("return document.querySelectorAll('.js-plotly-plot').length")
        return time.perf_counter() - started, plots
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium")
    args = parser.parse_args()
    frame = records_frame(args.records)
    started = time.perf_counter()
    html = build_report(frame, ["synthetic"])
    built = time.perf_counter() - started
    page = Path(tempfile.mkdtemp()) / "report.html"
    page.write_text(html, encoding="utf-8")
    print(f"records: {len(frame)}, runs: {frame['run_id'].nunique()}")
    print(f"build: {built:.2f} s, size: {page.stat().st_size / 1e6:.2f} MB")
    if args.browser:
        seconds, plots = browser_seconds(page)
        print(f"chromium load and draw: {seconds:.2f} s, plots: {plots}")


if __name__ == "__main__":
    main()
