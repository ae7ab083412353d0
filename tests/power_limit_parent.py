"""A greenbench parent for tests/test_power_limit.py to signal: it runs one cell at a 250 W power
limit whose child hangs, on a fake GPU whose power limit lives in a file (as a real driver keeps
it for every process, after the one that set it is gone).

    python tests/power_limit_parent.py LIMIT_FILE READY_FILE LOG

READY_FILE gets the child's PID once it runs, under the limit. On SIGTERM this process restores
the limit and exits with 143; on SIGKILL it leaves the limit and greenbench's state file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_h100 import FakeH100, FakePynvml, SimClock  # noqa: E402

from greenbench.energy import gpu_meter  # noqa: E402
from greenbench.energy.power_limit import Terminated  # noqa: E402
from greenbench.executors import local  # noqa: E402

HANG = (
    "import os, pathlib, sys, time\n"
    "pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))\n"
    "time.sleep(60)\n"
)


class SharedLimitPynvml(FakePynvml):
    """The fake NVML with each GPU's power limit kept in a file, seen by every process."""

    def __init__(self, gpus: list[FakeH100], limit_file: Path) -> None:
        super().__init__(gpus)
        self.limit_file = limit_file

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:
        if self.limit_file.exists():
            handle.power_limit_mw = int(self.limit_file.read_text())
        return super().nvmlDeviceGetPowerManagementLimit(handle)

    def nvmlDeviceSetPowerManagementLimit(self, handle: Any, limit_mw: int) -> None:
        super().nvmlDeviceSetPowerManagementLimit(handle, limit_mw)
        self.limit_file.write_text(str(handle.power_limit_mw))


def shared_nvml(limit_file: Path) -> SharedLimitPynvml:
    return SharedLimitPynvml([FakeH100(SimClock())], limit_file)


def main(limit_file: Path, ready: Path, log: Path) -> int:
    nvml = shared_nvml(limit_file)
    gpu_meter._pynvml = lambda: nvml  # type: ignore[attr-defined]
    gpu_meter.torch_uuid_of = lambda index: None  # type: ignore[attr-defined] # NVML's GPU 0
    local.child_command = lambda spec_path: [sys.executable, "-c", HANG, str(ready)]  # type: ignore[attr-defined]
    spec = {"cell": {"device": "cuda:0", "power_limit_w": 250}, "context": {}}
    try:
        local.run_in_child(spec, log, 60, lambda event: None)
    except Terminated:
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main(*map(Path, sys.argv[1:4])))
