"""Run cells one after another, each in its own child process (a sweep group's cells in one),
with a timeout."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import greenbench
from greenbench.energy.power_limit import PowerLimitSkip, cell_power_limit, with_power_limit
from greenbench.executors.base import (
    CellFailed,
    CellJob,
    CellProgress,
    JobGroup,
    Outcomes,
    Records,
    as_groups,
)
from greenbench.runner import CellSkipped

__all__ = ["CellFailed", "LocalExecutor", "run_in_child"]

OnEvent = Callable[[dict[str, Any]], None]


class LocalExecutor:
    """One cell after another, each in a child process of this machine."""

    def run(self, jobs: Sequence[CellJob | JobGroup], progress: CellProgress) -> Outcomes:
        for group in as_groups(jobs):
            for job in group.jobs:
                progress.cell_started(job.cell)
            yield from self._outcomes(group, progress)

    @staticmethod
    def _outcomes(group: JobGroup, progress: CellProgress) -> Outcomes:
        def on_event(event: dict[str, Any]) -> None:
            progress.cell_event(group.cell_of(event), event)

        lead = group.lead
        yield from group.outcomes(
            lambda: run_in_child(group.spec(), lead.log_path, group.timeout_s, on_event)
        )


def run_in_child(
    spec: dict[str, Any], log_path: Path, timeout_s: float, on_event: OnEvent
) -> Records:
    """The cell's records, from a fresh `python -m greenbench.runner` process.

    Raises CellFailed with the reason when the child raises, is killed or times out, and
    CellSkipped when the child finds the device cannot run the cell's variant, or when the
    cell's GPU power limit cannot be set (it is set here, around the child, and restored
    however the child ends: energy/power_limit.py).
    """
    cell = spec["group"][0]["cell"] if "group" in spec else spec["cell"]  # one limit a group
    try:
        with cell_power_limit(cell["device"], cell.get("power_limit_w")) as limit:
            records = _run_child(spec, log_path, timeout_s, on_event)
    except PowerLimitSkip as e:
        raise CellSkipped(str(e)) from None
    return with_power_limit(records, limit)


def _run_child(
    spec: dict[str, Any], log_path: Path, timeout_s: float, on_event: OnEvent
) -> Records:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        with open(log_path, "ab") as log:
            return _supervise(spec_path, log, log_path, timeout_s, on_event)
    finally:
        os.unlink(spec_path)


def child_command(spec_path: str) -> list[str]:
    """The cell's child: `python -m greenbench.runner SPEC` (tests start stand-ins here)."""
    return [sys.executable, "-m", "greenbench.runner", spec_path]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    source_root = str(Path(greenbench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _supervise(
    spec_path: str, log: Any, log_path: Path, timeout_s: float, on_event: OnEvent
) -> Records:
    proc = subprocess.Popen(
        child_command(spec_path),
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=_child_env(),
        start_new_session=True,  # its own process group, so a kill takes its helpers too
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    records: Records | None = None
    error: str | None = None
    skipped: str | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(proc)
                raise CellFailed(
                    f"timed out after {timeout_s:.0f} s; raise protocol.cell_timeout_s "
                    "or shrink the workload"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("type") == "records":
                records = event["records"]
            elif event.get("type") == "error":
                error = event["error"]
            elif event.get("type") == "skipped":
                skipped = event["reason"]
            else:
                on_event(event)
    except BaseException:
        _kill(proc)
        raise
    code = proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()  # the pump has read it to the end
    if records is not None:
        return records
    if skipped is not None:
        raise CellSkipped(skipped)
    if error is not None:
        raise CellFailed(error)
    raise CellFailed(_exit_reason(code, log_path))


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL me if the process that started me dies.

    The child has its own session, so killing the parent (Ctrl-C aside) would otherwise leave it
    measuring on, unobserved: a killed greenbench, Ray worker or node must not leak cells.
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _exit_reason(code: int, log_path: Path) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (often the out-of-memory killer: try a smaller batch)" if name == "SIGKILL" else ""
        return f"child process killed by {name}{hint}; log: {log_path}"
    return f"child process exited with code {code} without a result; log: {log_path}"
