"""From paths on disk to a written report: load, pick the baseline, write the page."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from greenbench.errors import GreenbenchError
from greenbench.history import run_environments
from greenbench.report.latency import parse_latency_target
from greenbench.report.page import build_report
from greenbench.results import load_results


def load_baseline(baseline: str, paths: list[str]) -> pd.DataFrame:
    """A baseline given as a path (results folder, run folder, records file) or a run id."""
    if Path(baseline).exists():
        return load_results(baseline)
    for root in paths:
        candidate = Path(root) / baseline
        if candidate.is_dir():
            return load_results(candidate)
    raise GreenbenchError(
        f"--baseline: no run '{baseline}' under {', '.join(paths)} and no such path; give a run "
        "id or a results path"
    )


def write_report(
    paths: list[str],
    output: str | os.PathLike,
    baseline: str | None = None,
    include_invalid: bool = False,
    latency: str | None = None,
) -> tuple[Path, int]:
    """Write the report for the records under `paths`; returns its path and record count.

    Cells that `greenbench check` judges invalid are left out of the ratio views unless
    `include_invalid`; `latency` (e.g. "p90<=50ms") keeps only the cells meeting it in the
    energy, frontier and sweep views."""
    target = parse_latency_target(latency) if latency is not None else None
    out = report_path(output)
    frame = load_results(paths)
    before = None
    if baseline is not None:
        before = load_baseline(baseline, paths)
        if not frame.empty and not before.empty:
            frame = frame[~frame["run_id"].isin(set(before["run_id"]))].reset_index(drop=True)
    runs = run_environments(paths)  # the Trends view's environment markers
    html = build_report(
        frame, [str(p) for p in paths], before, baseline or "", include_invalid, target, runs
    )
    write_atomically(out, html)
    return out, len(frame)


def report_path(output: str | os.PathLike) -> Path:
    """-o checked before the report is built: a folder is not a file name."""
    out = Path(output)
    if out.is_dir():
        raise GreenbenchError(
            f"-o {output}: is a folder; give a file name, e.g. -o {out / 'report.html'}"
        )
    return out


def write_atomically(out: Path, text: str) -> None:
    """Write beside `out`, then rename: a reader never sees half a page, and a failed write
    leaves neither a stray temporary file nor a damaged earlier report."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise GreenbenchError(
            f"-o {out}: cannot write the report ({e.strerror or e}); give a writable file path"
        ) from None
