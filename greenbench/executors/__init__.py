"""Executors: where cells run. `local` runs each in a child process on this machine, `ray`
as Ray tasks on a cluster. Each name maps to a factory taking the run's `address`."""

from __future__ import annotations

from collections.abc import Callable

from greenbench.errors import GreenbenchError
from greenbench.executors.base import Executor
from greenbench.executors.local import LocalExecutor
from greenbench.executors.ray_executor import RayExecutor

ExecutorFactory = Callable[[str | None], Executor]


def _local(address: str | None) -> Executor:
    return LocalExecutor()  # this machine: an address means nothing to it


EXECUTORS: dict[str, ExecutorFactory] = {"local": _local, "ray": RayExecutor}
DEFAULT_EXECUTOR = "local"


def make_executor(name: str, address: str | None = None) -> Executor:
    """The executor called `name`; raises with the known names when there is none."""
    if name not in EXECUTORS:
        raise GreenbenchError(f"--executor: unknown '{name}'; use {' or '.join(EXECUTORS)}")
    return EXECUTORS[name](address)
