"""What every executor shares: the Executor protocol, and the parts of running a cell that do
not depend on where it runs (attempt numbering, context, the pre-start skip check, log path,
and turning a cell that did not return records into its unfinished rows)."""

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


class Executor(Protocol):
    """Where cells run. Yields each cell with its records as it finishes, in finishing order."""

    def run(self, jobs: Sequence[CellJob], progress: CellProgress) -> Outcomes: ...


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
