"""Run a suite's cells as Ray tasks across a cluster; records stream back as cells finish.

Each task runs the cell exactly as the local executor does (a fresh `python -m
greenbench.runner` child with its timeout), on a node that has the device. CodeCarbon measures
the CPU and RAM of a whole machine, so a cell takes the node's `greenbench-node` resource (one
per node): two cells never share a node, hence never a device. What else a cell asks for is its
backend's `ray_request`: CUDA cells (and onnxruntime:CUDA) take one GPU (Ray sets
CUDA_VISIBLE_DEVICES, and the cell runs on that GPU as cuda:0); mps, xpu and npu cells a custom
resource of that name; openvino:GPU|NPU `intel-gpu` or `intel-npu`; onnxruntime providers other
than CPU and CUDA `onnxruntime-PROVIDER` (lower case). CPU cells need nothing more.

A task that dies with its worker or node fails only its cell (Ray does not retry it: a rerun
would be a new measurement); `greenbench run --resume` reruns it.

A cell's GPU power limit (`power_limit_w`) is set and restored on the node, by the worker around
its child, exactly as the local executor does (run_in_child): a child that fails, times out or
is killed gets the original limit back from the worker. A worker killed itself leaves it in the
node's state file, and the next power-limited cell (or greenbench run, or `greenbench devices`)
on that node restores it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from greenbench.backends import backend_for
from greenbench.errors import GreenbenchError
from greenbench.executors.base import (
    CellFailed,
    CellJob,
    CellProgress,
    JobGroup,
    Outcomes,
    Records,
    as_groups,
)
from greenbench.executors.local import run_in_child
from greenbench.runner import CellSkipped

NODE_RESOURCE = "greenbench-node"
INSTALL_HINT = "--executor ray needs Ray: pip install 'greenbench[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GreenbenchError(INSTALL_HINT) from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at `address` (`auto`, `ray://HOST:PORT`), or start a local one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a one-node cluster on this machine, with the resource cells ask for
            ray.init(resources={NODE_RESOURCE: 1}, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds; one line names the fix
        raise GreenbenchError(
            f"--address {address or '(local)'}: could not connect to Ray ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); start one with `ray start --head` or check it"
        ) from None
    if not any(NODE_RESOURCE in node.get("Resources", {}) for node in ray.nodes() if node["Alive"]):
        raise GreenbenchError(
            f"no Ray node offers the '{NODE_RESOURCE}' resource: start each node with "
            f"ray start ... --resources='{{\"{NODE_RESOURCE}\": 1}}' (see docs/cluster.md)"
        )
    return ray


def task_options(device: str) -> dict[str, Any]:
    """What a cell on `device` asks Ray for."""
    request = backend_for(device).ray_request(device)
    options: dict[str, Any] = {
        "num_cpus": 0,
        "max_retries": 0,
        "resources": {NODE_RESOURCE: 1, **request.resources},
    }
    if request.gpus:
        options["num_gpus"] = request.gpus
    return options


def node_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as this node runs it: its own zone if it sets one, its GPU as cuda:0; a sweep
    group's every cell so."""
    if "group" in spec:
        return {"group": [node_spec(member) for member in spec["group"]]}
    spec = {**spec, "cell": dict(spec["cell"]), "context": dict(spec["context"])}
    zone = os.environ.get("GREENBENCH_ZONE")
    if zone:
        spec["context"]["zone"] = zone.strip().upper()
    device = spec["cell"]["device"]
    spec["cell"]["device"] = backend_for(device).node_device(device)
    spec["context"]["node"] = socket.gethostname()
    return spec


def run_on_node(
    spec: dict[str, Any], log_path: str, timeout_s: float, pid_file: str
) -> dict[str, Any]:
    """The Ray task: run the cell in a child process here; its records, or why it failed."""
    Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
    Path(pid_file).write_text(str(os.getpid()))  # where the cell runs, for people and tests
    spec = node_spec(spec)
    context = node_context(spec)
    try:
        records = run_in_child(spec, Path(log_path), timeout_s, lambda event: None)
        return {"records": records, "context": context}
    except CellSkipped as e:
        return {"skipped": str(e), "context": context}
    except CellFailed as e:
        return {"failed": str(e), "context": context}


def node_context(spec: dict[str, Any]) -> dict[str, Any]:
    """The columns the node set (its name, its zone): a cell's whole context, or for a sweep
    group only those, which every cell of it shares."""
    if "group" in spec:
        first = spec["group"][0]["context"]
        return {key: first[key] for key in ("node", "zone")}
    context: dict[str, Any] = spec["context"]
    return context


class RayExecutor:
    """Every runnable cell submitted to Ray at once; records as each finishes."""

    def __init__(self, address: str | None = None) -> None:
        import_ray()  # says how to install Ray before anything is written
        self.address = address

    def run(self, jobs: Sequence[CellJob | JobGroup], progress: CellProgress) -> Outcomes:
        runnable = []
        for group in as_groups(jobs):
            for job in group.jobs:
                if job.skip:
                    yield job.cell, job.skipped()
            if group.runnable:
                runnable.append(JobGroup(group.runnable))
        ray = connect(self.address)
        remote = ray.remote(run_on_node)
        pending: dict[Any, JobGroup] = {}
        for group in runnable:  # a sweep group is one task, its cells in one child
            for job in group.jobs:
                progress.cell_started(job.cell)
            lead = group.lead
            pid_file = str(lead.log_path.with_suffix(".worker.pid"))
            ref = remote.options(**task_options(lead.cell.device)).remote(
                group.spec(), str(lead.log_path), group.timeout_s, pid_file
            )
            pending[ref] = group
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(done[0])
            outcome = _outcome(ray, done[0])
            for record in outcome.get("records", []):
                progress.cell_event(
                    group.cell_of(record),
                    {
                        "type": "window",
                        "phase": record["phase"],
                        "repetition": record["repetition"],
                        "cell_id": record.get("cell_id"),
                    },
                )
            yield from group.outcomes(partial(_records, outcome), outcome.get("context"))


def _outcome(ray: Any, ref: Any) -> dict[str, Any]:
    """run_on_node's dict, or {"failed": reason} when the task itself was lost."""
    try:
        outcome: dict[str, Any] = ray.get(ref)
        return outcome
    except Exception as e:  # noqa: BLE001 - a lost worker or node fails this cell only
        reason = " ".join(str(e).split())[:300]
        return {"failed": f"the Ray task was lost ({type(e).__name__}): {reason}"}


def _records(outcome: dict[str, Any]) -> Records:
    """The outcome's records; raises what run_in_child raised on the node."""
    if "records" in outcome:
        records: Records = outcome["records"]
        return records
    if "skipped" in outcome:
        raise CellSkipped(outcome["skipped"])
    raise CellFailed(outcome["failed"])
