"""A cell: one workload x variant x device (x swept parameter values), the unit of results."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenbench.workloads import get_preset


def swept_suffix(params: Mapping[str, Any], swept: tuple[str, ...]) -> str:
    """`batch=4/prompt_tokens=128`: the swept parameters' values, in the sweep's key order."""
    return "/".join(f"{key}={json.dumps(params[key])}" for key in swept)


@dataclass(frozen=True)
class Cell:
    """One workload x variant x device, with the workload's resolved parameters; `swept` names
    the parameters a sweep varies (their values are part of the cell's id)."""

    workload: str
    variant: str
    device: str
    params: Mapping[str, Any]
    swept: tuple[str, ...] = ()
    power_limit_w: int | None = None  # a CUDA GPU's power limit for the cell (None: as it is)

    def __post_init__(self) -> None:
        object.__setattr__(self, "swept", tuple(self.swept))  # a list from a JSON spec

    @property
    def cell_id(self) -> str:
        """`workload/variant/device`, `@300W` with a GPU power limit, then `/key=value` per
        swept parameter: a cell that is neither keeps the id it always had, so older runs
        resume."""
        limit = f"@{self.power_limit_w}W" if self.power_limit_w is not None else ""
        base = f"{self.workload}/{self.variant}/{self.device}{limit}"
        return f"{base}/{swept_suffix(self.params, self.swept)}" if self.swept else base

    @property
    def group_key(self) -> tuple[str, str, str, int | None]:
        """The cells of one sweep share it: they may run interleaved, in one child (under one
        GPU power limit, which the parent sets around the child)."""
        return (self.workload, self.variant, self.device, self.power_limit_w)

    @property
    def label(self) -> str:
        """`slm-135m batch=4`: the workload and its swept values, for people."""
        values = " ".join(swept_suffix(self.params, self.swept).split("/")) if self.swept else ""
        return f"{self.workload} {values}".strip()

    @property
    def phases(self) -> tuple[str, ...]:
        return get_preset(self.workload).phases(self.params)
