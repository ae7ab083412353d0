"""`greenbench.run()`: resolve a suite, check it, run its cells, store and return the records."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from greenbench.backends import check_available
from greenbench.backends import skip_reason as backend_skip_reason
from greenbench.carbon.accounting import RunCarbon
from greenbench.carbon.green import build_sources, carbon_store
from greenbench.carbon.sources.chain import Source
from greenbench.energy.power_limit import check_limits, restore_left_limits
from greenbench.environment import collect_environment
from greenbench.errors import GreenbenchError
from greenbench.executors import DEFAULT_EXECUTOR, make_executor
from greenbench.executors.base import CellProgress, Executor, group_jobs, plan_jobs
from greenbench.protocol import ProtocolSettings
from greenbench.python_workload import PythonWorkloadError, Workload
from greenbench.records import COLUMNS, Record
from greenbench.results import load_results
from greenbench.store import RunStore
from greenbench.suite import Cell, RunOverrides, Suite, resolve_suite
from greenbench.variants import get_variant
from greenbench.workload_factories import workload_name
from greenbench.workloads import get_preset

# a workload as greenbench.run takes it: a name, a Python factory, or the Workload it returns
WorkloadLike = str | Workload | Callable[[], Workload]


class Reporter(CellProgress, Protocol):
    """Progress callbacks; the CLI draws a progress bar from them."""

    def run_started(
        self, run_id: str, path: Path, cells: list[Cell], windows: int, plan: RunPlan
    ) -> None: ...

    def cell_finished(self, cell: Cell, records: list[Record]) -> None: ...


@dataclass(frozen=True)
class RunPlan:
    """What a reporter needs to time the run: the protocol, and the cells that will be
    measured (not those skipped before they start)."""

    protocol: ProtocolSettings
    measured: tuple[Cell, ...]
    # the measured cells as they run: a sweep's together in one child, windows interleaved
    groups: tuple[tuple[Cell, ...], ...] = ()


class SilentReporter:
    def run_started(
        self, run_id: str, path: Path, cells: list[Cell], windows: int, plan: RunPlan
    ) -> None:
        pass

    def cell_started(self, cell: Cell) -> None:
        pass

    def cell_event(self, cell: Cell, event: dict[str, Any]) -> None:
        pass

    def cell_finished(self, cell: Cell, records: list[Record]) -> None:
        pass


@dataclass
class RunResult:
    run_id: str
    path: Path
    suite: Suite
    records: list[dict[str, Any]] = field(default_factory=list)  # latest attempt of each cell
    carbon_series_error: str | None = None  # why carbon_sources charged nothing (or stopped)

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
    workloads: Sequence[WorkloadLike] | None = None,
    variants: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    repetitions: int | None = None,
    min_window_s: float | None = None,
    zone: str | None = None,
    params: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    power_limit_w: Sequence[int | str] | int | None = None,
    pue: float | None = None,
    out: str | os.PathLike = "results",
    resume: str | None = None,
    reporter: Reporter | None = None,
    carbon_sources: Sequence[str] | None = None,
    executor: str = DEFAULT_EXECUTOR,
    address: str | None = None,
    workload: WorkloadLike | None = None,
) -> RunResult:
    """Run a suite (or resume a run) and return its records. Takes what `greenbench run` takes.

    With `carbon_sources` (names as for `greenbench forecast`), each window's emissions are also
    computed from the time-weighted grid intensity over its actual time. `executor="ray"` runs
    the cells as Ray tasks on the cluster at `address` (or a local one). `params` are
    `--param` settings: "batch=4" for every workload with a batch, "resnet50.batch=4" for one,
    "batch=1,4" to sweep; or a {workload: {key: value}} dict, a list value to sweep.
    `power_limit_w` (W, one or a list) runs every CUDA cell once per GPU power limit, set
    through NVML around the cell and restored after it (needs root). `pue` replaces the
    suite's [footprint] pue.

    `workload` (one) or `workloads` also take Python workloads as objects: a greenbench.Workload
    or the module-level factory returning one (workload_factories.workload_name says how the
    cells' children find it again).
    """
    try:
        names = _workload_names(workloads, workload)
    except PythonWorkloadError as e:
        raise GreenbenchError(str(e)) from None
    # the keywords above are suite.RunOverrides' fields (a test holds them equal)
    overrides = RunOverrides(
        suite=suite,
        workloads=names,
        variants=variants,
        devices=devices,
        repetitions=repetitions,
        min_window_s=min_window_s,
        zone=zone,
        params=params,
        power_limit_w=power_limit_w,
        pue=pue,
    )
    cells_executor = make_executor(executor, address)  # a bad name or no Ray: nothing written
    resolved, resumed = _resolve(overrides, out, resume)
    # a bad source name or a missing credential: said now, with nothing written
    sources = build_sources(resolved.zone, carbon_sources) if carbon_sources else []
    with _open_store(resolved, out, resumed) as opened:  # the run's lock, held to the end
        return _execute(opened, cells_executor, reporter or SilentReporter(), sources)


def _workload_names(
    workloads: Sequence[WorkloadLike] | None, workload: WorkloadLike | None
) -> list[str] | None:
    """Every workload as the name a cell carries; objects become their factory's name."""
    given: list[WorkloadLike] = [workloads] if isinstance(workloads, str) else [*(workloads or [])]
    if workload is not None:
        given.append(workload)
    return [workload_name(w) for w in given] if given else None


@dataclass
class _OpenRun:
    """A run's store, ready to take records: the suite and what earlier attempts left."""

    store: RunStore
    suite: Suite
    attempts: dict[str, int]  # cell id -> its latest attempt
    done: set[str]  # cells already finished: not run again


def _resolve(
    overrides: RunOverrides, out: str | os.PathLike, resume: str | None
) -> tuple[Suite, RunStore | None]:
    """The suite to run, checked against this machine's devices; and the resumed run's store."""
    if resume is None:
        resolved, store = resolve_suite(overrides), None
    else:
        if overrides.given():
            raise GreenbenchError(resume_conflict())
        store = RunStore.open(out, resume)
        meta = store.read_meta()
        if "suite" not in meta:
            raise GreenbenchError(
                f"run '{resume}' was imported ({meta.get('source', 'not run here')}); "
                "there is nothing to resume"
            )
        resolved = Suite.from_dict(meta["suite"], source=str(store.path / "run.json"))
    for device in resolved.devices:
        check_available(device)
    check_limits(resolved.devices, resolved.power_limit_w)  # out of a GPU's range: said now
    restore_left_limits()  # what a killed greenbench left set on this machine's GPUs
    return resolved, store


def resume_conflict() -> str:
    """Why --resume takes no suite flags, naming every one of them."""
    flags = [option.flag for option in RunOverrides.options().values()]
    return f"--resume reruns the run's own suite; drop {', '.join(flags[:-1])} and {flags[-1]}"


@contextlib.contextmanager
def _open_store(
    suite: Suite, out: str | os.PathLike, resumed: RunStore | None
) -> Iterator[_OpenRun]:
    """A new run's store, or the resumed one with its cells' attempts and finished cells; the
    run locked against a second writer (a concurrent --resume) until the block ends."""
    if resumed is not None:
        with resumed.lock():
            earlier = load_results(resumed.path)  # each cell's latest attempt
            attempts = earlier.groupby("cell_id")["attempt"].max().astype(int).to_dict()
            done = _finished_cells(earlier, suite)
            resumed.update_meta(status="running", resumed_at=_now())
            yield _OpenRun(resumed, suite, attempts, done)
        return

    store = RunStore.create(
        out,
        {
            "status": "running",
            "started_at": _now(),
            "suite": suite.to_dict(),
            "environment": collect_environment(),
        },
    )
    with store.lock():
        yield _OpenRun(store, suite, {}, set())


def _execute(
    opened: _OpenRun,
    executor: Executor,
    reporter: Reporter,
    carbon_sources: Sequence[Source],
) -> RunResult:
    """Run the unfinished cells, store each one's records as it finishes, set the status."""
    store, suite = opened.store, opened.suite
    carbon = RunCarbon(carbon_sources, carbon_store(store.path.parent))
    cells = [c for c in suite.cells() if c.cell_id not in opened.done]
    jobs = plan_jobs(cells, suite, store.run_id, store.log_dir, opened.attempts, skip_reason)
    windows = sum(len(job.cell.phases) * suite.protocol.repetitions for job in jobs if not job.skip)
    measured = tuple(job.cell for job in jobs if not job.skip)
    groups = group_jobs(jobs, suite.protocol.interleave_sweeps)
    running = tuple(tuple(job.cell for job in g.runnable) for g in groups if g.runnable)
    reporter.run_started(
        store.run_id, store.path, cells, windows, RunPlan(suite.protocol, measured, running)
    )
    try:
        # a cell alone goes as its CellJob: an executor sees a JobGroup only for a sweep
        runs = [g.jobs[0] if len(g.jobs) == 1 else g for g in groups]
        for cell, records in executor.run(runs, reporter):
            try:
                _account(carbon, records, store)
            finally:  # the measured records are saved whatever the accounting did
                store.append(records)
            reporter.cell_finished(cell, records)
    except KeyboardInterrupt:
        store.update_meta(status="interrupted", ended_at=_now())
        raise
    frame = load_results(store.path)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    status = "failed" if any(r["status"] == "failed" for r in rows) else "complete"
    store.update_meta(status=status, ended_at=_now())
    return RunResult(store.run_id, store.path, suite, rows, carbon.error)


def _account(carbon: RunCarbon, records: list[Record], store: RunStore) -> None:
    """Time-weighted emissions from the first source that answers; if none, why, in run.json."""
    before, dropped = carbon.error, len(carbon.dropped)
    carbon.charge(records)  # never raises: the accounting is optional
    if carbon.error != before:
        store.update_meta(carbon_series_error=carbon.error)
    if len(carbon.dropped) != dropped:  # a later source answered: say why the earlier failed
        store.update_meta(carbon_series_dropped=carbon.dropped)


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
