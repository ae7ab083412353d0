"""A cell: one workload x variant x device, the unit that runs in its own child process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenbench.workloads import get_preset


@dataclass(frozen=True)
class Cell:
    """One workload x variant x device, with the workload's resolved parameters."""

    workload: str
    variant: str
    device: str
    params: Mapping[str, Any]

    @property
    def cell_id(self) -> str:
        return f"{self.workload}/{self.variant}/{self.device}"

    @property
    def phases(self) -> tuple[str, ...]:
        return get_preset(self.workload).phases(self.params)
