"""greenbench: energy benchmarks for ML workloads, with an idle baseline, confidence intervals
and a label saying how every figure was measured."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("greenbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from greenbench.api import RunResult, run  # noqa: E402
from greenbench.results import load_results  # noqa: E402
from greenbench.suite import Cell, Suite, load_suite  # noqa: E402

__all__ = ["Cell", "RunResult", "Suite", "__version__", "load_results", "load_suite", "run"]
