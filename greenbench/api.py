"""`greenbench.run()`: resolve a suite, check it, run its cells, store and return the records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from greenbench.backends import check_available
from greenbench.backends import skip_reason as backend_skip_reason
from greenbench.errors import GreenbenchError
from greenbench.executors.local import CellFailed, run_in_child
from greenbench.records import COLUMNS, unfinished_records
from greenbench.results import load_results
from greenbench.runner import CellSkipped, cell_context, cell_spec, one_line
from greenbench.store import RunStore
from greenbench.suite import DEFAULT_SUITE, Cell, Suite, apply_overrides, load_suite
from greenbench.variants import get_variant
from greenbench.workloads import get_preset


class Reporter(Protocol):
    """Progress callbacks; the CLI draws a progress bar from them."""

    def run_started(self, run_id: str, path: Path, cells: list[Cell], windows: int) -> None: ...

    def cell_started(self, cell: Cell) -> None: ...

    def cell_event(self, cell: Cell, event: dict[str, Any]) -> None: ...

    def cell_finished(self, cell: Cell, records: list[dict[str, Any]]) -> None: ...


class SilentReporter:
    def run_started(self, run_id: str, path: Path, cells: list[Cell], windows: int) -> None:
        pass

    def cell_started(self, cell: Cell) -> None:
        pass

    def cell_event(self, cell: Cell, event: dict[str, Any]) -> None:
        pass

    def cell_finished(self, cell: Cell, records: list[dict[str, Any]]) -> None:
        pass


@dataclass
class RunResult:
    run_id: str
    path: Path
    suite: Suite
    records: list[dict[str, Any]] = field(default_factory=list)  # latest attempt of each cell

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=COLUMNS)


def run(
    suite: Suite | str | None = None,
    *,
    workloads: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    repetitions: int | None = None,
    min_window_s: float | None = None,
    zone: str | None = None,
    out: str | os.PathLike = "results",
    resume: str | None = None,
    reporter: Reporter | None = None,
    carbon_sources: Sequence[str] | None = None,
    executor: str = "local",
    address: str | None = None,
) -> RunResult:
    """Run a suite (or resume a run) and return its records. Takes what `greenbench run` takes.

    With `carbon_sources` (names as for `greenbench forecast`), each window's emissions are also
    computed from the time-weighted grid intensity over its actual time. `executor="ray"` runs
    the cells as Ray tasks on the cluster at `address` (or a local one).
    """
    if executor not in EXECUTORS:
        raise GreenbenchError(f"--executor: unknown '{executor}'; use {' or '.join(EXECUTORS)}")
    if executor == "ray":
        from greenbench.executors.ray_executor import import_ray

        import_ray()  # says how to install Ray before anything is written
    reporter = reporter or SilentReporter()
    if resume is not None:
        overrides = (suite, workloads, variants, devices, repetitions, min_window_s, zone)
        if any(v is not None for v in overrides):
            raise GreenbenchError(
                "--resume reruns the run's own suite; drop --suite, --workload, --variant, "
                "--device, --repetitions, --min-window and --zone"
            )
        store = RunStore.open(out, resume)
        meta = store.read_meta()
        if "suite" not in meta:
            raise GreenbenchError(
                f"run '{resume}' was imported ({meta.get('source', 'not run here')}); "
                "there is nothing to resume"
            )
        resolved = Suite.from_dict(meta["suite"], source=str(store.path / "run.json"))
    else:
        if isinstance(suite, Suite):
            base = suite
        else:
            base = load_suite(suite or DEFAULT_SUITE)
            if suite is None and any(v is not None for v in (workloads, variants, devices)):
                # flags alone: an ad-hoc suite from the quick suite's defaults
                base = dataclasses.replace(base, name="adhoc", description="from flags")
        resolved = apply_overrides(
            base, workloads, variants, devices, repetitions, min_window_s, zone
        )
    for device in resolved.devices:
        check_available(device)

    if resume is not None:
        earlier = load_results(store.path)  # each cell's latest attempt
        attempts = earlier.groupby("cell_id")["attempt"].max().astype(int).to_dict()
        done = _finished_cells(earlier, resolved)
        store.update_meta(status="running", resumed_at=_now())
    else:
        from greenbench.environment import collect_environment

        attempts, done = {}, set()
        store = RunStore.create(
            out,
            {
                "status": "running",
                "started_at": _now(),
                "suite": resolved.to_dict(),
                "environment": collect_environment(),
            },
        )

    cells = [c for c in resolved.cells() if c.cell_id not in done]
    windows = sum(
        len(c.phases) * resolved.protocol.repetitions for c in cells if not skip_reason(c)
    )
    reporter.run_started(store.run_id, store.path, cells, windows)
    outcomes = _local_cells if executor == "local" else _ray_cells
    try:
        for cell, records in outcomes(cells, resolved, store, attempts, reporter, address):
            if carbon_sources:
                _account(records, carbon_sources, resolved.zone, store)
            store.append(records)
            reporter.cell_finished(cell, records)
    except KeyboardInterrupt:
        store.update_meta(status="interrupted", ended_at=_now())
        raise
    frame = load_results(store.path)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    status = "failed" if any(r["status"] == "failed" for r in rows) else "complete"
    store.update_meta(status=status, ended_at=_now())
    return RunResult(store.run_id, store.path, resolved, rows)


EXECUTORS = ("local", "ray")
Outcomes = Iterator[tuple[Cell, list[dict[str, Any]]]]


def _local_cells(
    cells: list[Cell],
    suite: Suite,
    store: RunStore,
    attempts: dict[str, int],
    reporter: Reporter,
    address: str | None,
) -> Outcomes:
    """One cell after another, each in a child process of this machine."""
    for cell in cells:
        reporter.cell_started(cell)
        yield cell, _run_cell(cell, suite, store, attempts.get(cell.cell_id, 0) + 1, reporter)


def _ray_cells(
    cells: list[Cell],
    suite: Suite,
    store: RunStore,
    attempts: dict[str, int],
    reporter: Reporter,
    address: str | None,
) -> Outcomes:
    """Every runnable cell submitted to Ray at once; records as each finishes."""
    from greenbench.executors.ray_executor import run_cells

    contexts = {}
    runnable = []
    for cell in cells:
        attempt = attempts.get(cell.cell_id, 0) + 1
        contexts[cell.cell_id] = cell_context(cell, store.run_id, attempt, suite.name, suite.zone)
        reason = skip_reason(cell)
        if reason:
            yield cell, unfinished_records(contexts[cell.cell_id], cell.phases, "skipped", reason)
        else:
            runnable.append(cell)

    def make_spec(cell: Cell) -> tuple[dict, Path, float]:
        reporter.cell_started(cell)
        attempt = contexts[cell.cell_id]["attempt"]
        log_path = store.log_dir / f"{cell.cell_id.replace('/', '_')}.{attempt}.log"
        spec = cell_spec(cell, suite.protocol, contexts[cell.cell_id])
        return spec, log_path, suite.protocol.cell_timeout_s

    for cell, outcome in run_cells(runnable, make_spec, address):
        context = {**contexts[cell.cell_id], **outcome.get("context", {})}
        if "records" in outcome:
            for record in outcome["records"]:
                reporter.cell_event(
                    cell,
                    {
                        "type": "window",
                        "phase": record["phase"],
                        "repetition": record["repetition"],
                    },
                )
            yield cell, outcome["records"]
        elif "skipped" in outcome:
            yield cell, unfinished_records(context, cell.phases, "skipped", outcome["skipped"])
        else:
            yield cell, unfinished_records(context, cell.phases, "failed", outcome["failed"])


def _run_cell(
    cell: Cell, suite: Suite, store: RunStore, attempt: int, reporter: Reporter
) -> list[dict[str, Any]]:
    context = cell_context(cell, store.run_id, attempt, suite.name, suite.zone)
    phases = cell.phases
    reason = skip_reason(cell)
    if reason:
        return unfinished_records(context, phases, "skipped", reason)
    spec = cell_spec(cell, suite.protocol, context)
    log_path = store.log_dir / f"{cell.cell_id.replace('/', '_')}.{attempt}.log"
    try:
        return run_in_child(
            spec,
            log_path,
            suite.protocol.cell_timeout_s,
            lambda event: reporter.cell_event(cell, event),
        )
    except CellSkipped as e:
        return unfinished_records(context, phases, "skipped", str(e))
    except CellFailed as e:
        return unfinished_records(context, phases, "failed", str(e))
    except OSError as e:
        return unfinished_records(context, phases, "failed", one_line(e))


def _account(records: list[dict], names: Sequence[str], zone: str, store: RunStore) -> None:
    """Time-weighted emissions from the first source that answers; if none, why, in run.json."""
    from greenbench.carbon.accounting import account
    from greenbench.carbon.green import intensity_around

    try:
        result = intensity_around(zone, names, store.path.parent)
    except GreenbenchError as e:
        store.update_meta(carbon_series_error=str(e))
        return
    account(records, result.series, result.source)


def skip_reason(cell: Cell) -> str | None:
    """Why the cell's variant cannot run its workload on its device, known without running."""
    kind = get_preset(cell.workload).kind
    return backend_skip_reason(kind, get_variant(cell.variant), cell.device)


def _finished_cells(latest: pd.DataFrame, suite: Suite) -> set[str]:
    """Cells whose latest attempt recorded every row it should: all ok, or all skipped."""
    done = set()
    for cell in suite.cells():
        statuses = list(latest.loc[latest["cell_id"] == cell.cell_id, "status"])
        expected_ok = len(cell.phases) * suite.protocol.repetitions
        all_ok = len(statuses) == expected_ok and all(s == "ok" for s in statuses)
        all_skipped = len(statuses) == len(cell.phases) and all(s == "skipped" for s in statuses)
        if statuses and (all_ok or all_skipped):
            done.add(cell.cell_id)
    return done


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
