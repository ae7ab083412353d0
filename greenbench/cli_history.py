"""`greenbench history`: each cell's J/unit over runs, and whether the newest run regressed."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from greenbench.drift import BASELINE_RUNS, DEFAULT_PCT, FLOOR_K, MIN_RUNS
from greenbench.errors import GreenbenchError
from greenbench.exit_codes import EXIT_OK, EXIT_REGRESSION
from greenbench.formatting import energy_scale, fmt

if TYPE_CHECKING:
    from greenbench.history import History

FLAGS = {"regression": "REGRESSION", "improvement": "improved", "steady": "-", "short": "short"}


def add_history_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    history = sub.add_parser(
        "history",
        help="each cell's J/unit over runs; flag the newest run against the history",
        description=f"Each cell's J/unit over runs, per machine. The newest run is flagged "
        f"when it moved from the median of its previous {BASELINE_RUNS} runs by more than "
        f"PCT (default {DEFAULT_PCT:g}) and {FLOOR_K:g} noise floors (the history's own "
        f"run-to-run spread), with the 95% CIs apart; at least {MIN_RUNS} runs are needed.",
    )
    history.set_defaults(func=cmd_history)
    history.add_argument("paths", nargs="*", help="results folders or runs (default: --out)")
    history.add_argument("--workload", help="only this workload's cells")
    history.add_argument(
        "--fail-on-regression",
        type=float,
        metavar="PCT",
        help="exit 1 when the newest run of any cell regressed by more than PCT %% (and beyond "
        "the noise floor)",
    )
    history.add_argument(
        "--markdown", metavar="FILE", help="write a short Markdown summary to FILE (- for stdout)"
    )
    return history


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    from greenbench.history import enough_history, load_history  # pandas: not for --help
    from greenbench.history_markdown import history_markdown

    pct = DEFAULT_PCT if args.fail_on_regression is None else args.fail_on_regression
    if not (math.isfinite(pct) and pct >= 0):
        raise GreenbenchError(
            f"--fail-on-regression {args.fail_on_regression:g}: give a percentage >= 0, e.g. 5"
        )
    history = load_history(args.paths, args.workload, pct)
    if history.points.empty:
        console.print(f"no valid measured cells under {', '.join(args.paths)}")
        return EXIT_OK
    markdown = history_markdown(history)
    if args.markdown:
        write_markdown(args.markdown, markdown)
    if args.markdown != "-":
        print_history(history, console)
    if not enough_history(history):
        if args.markdown == "-":  # stdout is the summary alone; its counts say this
            return EXIT_OK
        console.print(
            f"not enough history to judge: {history.runs} run(s), at least {MIN_RUNS} of a cell "
            "on one node are needed; nothing is flagged",
            style="yellow",
        )
        return EXIT_OK
    regressed = int((history.verdicts["status"] == "regression").sum())
    if args.fail_on_regression is not None and regressed:
        return EXIT_REGRESSION
    return EXIT_OK


def write_markdown(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        Path(target).write_text(text, encoding="utf-8")
    except OSError as e:
        raise GreenbenchError(
            f"--markdown {target}: cannot write it ({e.strerror or e}); give a writable file path"
        ) from None


def print_history(history: History, console: Console) -> None:
    """One row per cell and node: runs, the newest J/unit, its change against the baseline,
    the noise floor and the flag."""
    verdicts = history.verdicts
    factor, scale = energy_scale(verdicts["j_per_unit"])
    nodes = verdicts["node"].nunique() > 1
    params = verdicts.groupby(["workload", "phase", "variant", "device", "node"])[
        "params"
    ].nunique().max() > 1  # fmt: skip
    table = Table(
        title=f"history: {history.runs} run(s); the newest run of each cell against the median "
        f"of its previous {BASELINE_RUNS}",
        title_justify="left",
    )
    for header in ("workload", "phase", "variant", "device"):
        table.add_column(header, no_wrap=True)
    if nodes:
        table.add_column("node", no_wrap=True)
    if params:
        table.add_column("params")
    table.add_column("runs", justify="right")
    table.add_column("newest run", no_wrap=True)
    table.add_column(f"{scale}/unit ± CI95", justify="right", no_wrap=True)
    table.add_column("vs baseline", justify="right")
    table.add_column("noise floor", justify="right")
    table.add_column("flag")
    for _, row in verdicts.iterrows():
        style = {"regression": "red", "improvement": "green", "short": "dim"}.get(row["status"], "")
        ci = row["j_per_unit_ci95"]
        energy = fmt(row["j_per_unit"] / factor)
        energy += f" ± {fmt(ci / factor, 2)}" if math.isfinite(ci) else ""
        table.add_row(
            row["workload"],
            f"{row['phase']} ({row['unit']})",
            row["variant"],
            row["device"],
            *([row["node"] or "-"] if nodes else []),
            *([row["params"]] if params else []),
            str(row["runs"]),
            f"{row['started_at']:%Y-%m-%d %H:%M}",
            energy,
            "-" if not math.isfinite(row["change"]) else f"{row['change'] * 100:+.1f}%",
            "-" if not math.isfinite(row["floor"]) else f"{row['floor'] * 100:.1f}%",
            FLAGS[row["status"]],
            style=style,
        )
    console.print(table)
    console.print(
        f"flagged: a change beyond {history.pct:g}% and {FLOOR_K:g} noise floors, the 95% CIs "
        f"apart; short: fewer than {MIN_RUNS} runs"
    )
    changed = verdicts[verdicts["recent_changes"] != ""]
    for _, row in changed[changed["status"] != "steady"].iterrows():
        console.print(
            f"{row['workload']} / {row['phase']} / {row['variant']}: environment changed: "
            f"{row['recent_changes']}",
            style="yellow",
        )
