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
    power_limit_w: int | None = None  # a CUDA GPU's power limit for the cell (None: as it is)

    @property
    def cell_id(self) -> str:
        limit = f"@{self.power_limit_w}W" if self.power_limit_w is not None else ""
        return f"{self.workload}/{self.variant}/{self.device}{limit}"

    @property
    def phases(self) -> tuple[str, ...]:
        return get_preset(self.workload).phases(self.params)
