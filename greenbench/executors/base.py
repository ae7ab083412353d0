"""What every executor shares: the Executor protocol, and the parts of running a cell that do
not depend on where it runs (attempt numbering, context, the pre-start skip check, log path,
sweep groups, and turning a cell that did not return records into its unfinished rows)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from greenbench.protocol import ProtocolSettings
from greenbench.records import Record, Status, unfinished_records
from greenbench.runner import CellSkipped, cell_context, cell_spec, one_line
from greenbench.suite import Cell, Suite

Records = list[Record]
Outcomes = Iterator[tuple[Cell, Records]]
SkipReason = Callable[[Cell], str | None]


class CellFailed(Exception):
    """The cell did not return records; the message is the reason, one line."""


class CellProgress(Protocol):
    """The progress callbacks an executor makes (the run's Reporter has them)."""

    def cell_started(self, cell: Cell) -> None: ...

    def cell_event(self, cell: Cell, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class CellJob:
    """One attempt at one cell, ready for an executor."""

    cell: Cell
    context: dict[str, Any]  # runner.cell_context: the columns every row of this attempt carries
    protocol: ProtocolSettings
    log_path: Path
    skip: str | None  # why it cannot run, known before it starts; None: run it

    @property
    def timeout_s(self) -> float:
        return self.protocol.cell_timeout_s

    def spec(self) -> dict[str, Any]:
        """What the `python -m greenbench.runner` child runs (runner.cell_spec)."""
        return cell_spec(self.cell, self.protocol, self.context)

    def skipped(self) -> Records:
        """The rows of a cell skipped before it started, saying why."""
        assert self.skip is not None
        return self.unfinished("skipped", self.skip)

    def unfinished(
        self, status: Status, reason: str, context: Mapping[str, Any] | None = None
    ) -> Records:
        """The rows of a cell that was skipped or failed; `context` adds what a node set."""
        return unfinished_records(
            {**self.context, **(context or {})}, self.cell.phases, status, reason
        )

    def records_or_reason(
        self, attempt: Callable[[], Records], context: Mapping[str, Any] | None = None
    ) -> Records:
        """`attempt()`'s records, or unfinished rows saying why it returned none."""
        try:
            return attempt()
        except CellSkipped as e:
            return self.unfinished("skipped", str(e), context)
        except CellFailed as e:
            return self.unfinished("failed", str(e), context)
        except OSError as e:
            return self.unfinished("failed", one_line(e), context)


@dataclass(frozen=True)
class JobGroup:
    """Jobs that run in one child: the cells of one sweep (same workload, variant and device),
    their windows interleaved under one idle baseline (runner.run_group); or one job alone."""

    jobs: tuple[CellJob, ...]

    @property
    def runnable(self) -> tuple[CellJob, ...]:
        return tuple(job for job in self.jobs if not job.skip)

    @property
    def lead(self) -> CellJob:
        """The job whose device, log and progress line stand for the group's child."""
        return (self.runnable or self.jobs)[0]

    @property
    def timeout_s(self) -> float:
        """The sum of its runnable cells' timeouts: they run one after another, interleaved."""
        return sum(job.timeout_s for job in self.runnable)

    def spec(self) -> dict[str, Any]:
        """The child's spec: one cell's, or `{"group": [each cell's]}`."""
        runnable = self.runnable
        if len(runnable) == 1:
            return runnable[0].spec()
        return {"group": [job.spec() for job in runnable]}

    def cell_of(self, event: Mapping[str, Any]) -> Cell:
        """The cell an event from the child is about: the one it names, else the lead's."""
        named = event.get("cell_id")
        return next((j.cell for j in self.runnable if j.cell.cell_id == named), self.lead.cell)

    def outcomes(
        self, attempt: Callable[[], Records], context: Mapping[str, Any] | None = None
    ) -> list[tuple[Cell, Records]]:
        """Each cell with its records: those skipped before starting, then the runnable
        cells' records from `attempt()` split by cell; all of them failed (or skipped) with
        the reason when it returned none. `context`: what a node set, as in records_or_reason."""
        found = [(job.cell, job.skipped()) for job in self.jobs if job.skip]
        runnable = self.runnable
        if not runnable:
            return found
        if len(runnable) == 1:
            return [*found, (runnable[0].cell, runnable[0].records_or_reason(attempt, context))]
        try:
            records = attempt()
        except CellSkipped as e:
            return [*found, *((j.cell, j.unfinished("skipped", str(e), context)) for j in runnable)]
        except (CellFailed, OSError) as e:
            reason = str(e) if isinstance(e, CellFailed) else one_line(e)
            return [*found, *((j.cell, j.unfinished("failed", reason, context)) for j in runnable)]
        for job in runnable:
            own = [r for r in records if r.get("cell_id") == job.cell.cell_id]
            if not own:
                own = job.unfinished(
                    "failed", "the sweep's child returned no records for this cell", context
                )
            found.append((job.cell, own))
        return found


def group_jobs(jobs: Sequence[CellJob], interleave: bool = True) -> list[JobGroup]:
    """The jobs in groups that each run in one child: a sweep's cells (same workload,
    variant and device, each with swept parameters) together, at the first one's place, when
    `interleave`; every other job alone."""
    if not interleave:
        return [JobGroup((job,)) for job in jobs]
    groups: dict[Any, list[CellJob]] = {}
    for index, job in enumerate(jobs):
        key = job.cell.group_key if job.cell.swept else index
        groups.setdefault(key, []).append(job)
    return [JobGroup(tuple(members)) for members in groups.values()]


def as_groups(jobs: Sequence[CellJob | JobGroup]) -> list[JobGroup]:
    """Jobs as groups: a bare CellJob runs alone."""
    return [job if isinstance(job, JobGroup) else JobGroup((job,)) for job in jobs]


class Executor(Protocol):
    """Where cells run. Yields each cell with its records as it finishes, in finishing order;
    the cells of a JobGroup together, when its child ends."""

    def run(self, jobs: Sequence[CellJob | JobGroup], progress: CellProgress) -> Outcomes: ...


def log_path(log_dir: Path, cell_id: str, attempt: int) -> Path:
    """The child's stderr for one attempt at a cell: logs/WORKLOAD_VARIANT_DEVICE.ATTEMPT.log."""
    return log_dir / f"{cell_id.replace('/', '_')}.{attempt}.log"


def plan_jobs(
    cells: Sequence[Cell],
    suite: Suite,
    run_id: str,
    log_dir: Path,
    attempts: Mapping[str, int],
    skip_reason: SkipReason,
) -> list[CellJob]:
    """Each cell's next attempt (one after its latest in `attempts`), with its skip reason."""
    jobs = []
    for cell in cells:
        attempt = attempts.get(cell.cell_id, 0) + 1
        context = cell_context(cell, run_id, attempt, suite.name, suite.zone, suite.footprint)
        path = log_path(log_dir, cell.cell_id, attempt)
        jobs.append(CellJob(cell, context, suite.protocol, path, skip_reason(cell)))
    return jobs
