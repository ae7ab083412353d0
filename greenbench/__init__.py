"""greenbench: energy benchmarks for ML workloads, with an idle baseline, confidence intervals
and a label saying how every figure was measured.

The public names load on first use (PEP 562): `import greenbench` alone, as the pytest plugin's
entry point does in every pytest session, must not load pandas or torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("greenbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

if TYPE_CHECKING:
    from greenbench.api import RunResult, run
    from greenbench.python_workload import Workload, WorkloadPhase
    from greenbench.results import load_results
    from greenbench.suite import Cell, Suite, load_suite
    from greenbench.tasks.base import input_dtype

_HOMES = {
    "Cell": "greenbench.suite",
    "RunResult": "greenbench.api",
    "Suite": "greenbench.suite",
    "Workload": "greenbench.python_workload",
    "WorkloadPhase": "greenbench.python_workload",
    "input_dtype": "greenbench.tasks.base",
    "load_results": "greenbench.results",
    "load_suite": "greenbench.suite",
    "run": "greenbench.api",
}

__all__ = [
    "Cell",
    "RunResult",
    "Suite",
    "Workload",
    "WorkloadPhase",
    "__version__",
    "input_dtype",
    "load_results",
    "load_suite",
    "run",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'greenbench' has no attribute '{name}'")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
