"""What a backend is: one device family (a torch device type, or a graph runtime) and all it
owns: its device strings, availability, variant rules, preparing a cell's phases, its meter,
synchronisation, what a Ray task asks for, and its rows in `greenbench devices`.

A new backend is one module that defines a Backend plus one line in backends/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from greenbench.carbon.zones import Zone
from greenbench.cell import Cell
from greenbench.energy.meter import Meter
from greenbench.fidelity import Fidelity
from greenbench.protocol import Phase
from greenbench.quality import Quality
from greenbench.tasks.base import WorkloadKind
from greenbench.variants import Variant

Emit = Callable[[dict[str, Any]], None]  # progress events from the child, one JSON dict each


@dataclass(frozen=True)
class DeviceInfo:
    """One row of `greenbench devices`."""

    device: str  # what --device takes
    present: bool
    what: str
    method: str  # how its energy is measured, or why it cannot be used


@dataclass(frozen=True)
class RayRequest:
    """What a Ray task running a cell on this device needs beyond a whole node."""

    gpus: int = 0
    resources: Mapping[str, float] = field(default_factory=dict)  # custom node resources


@dataclass(frozen=True)
class Prepared:
    """A cell ready to measure: its phases, and the cell's own record columns."""

    phases: list[Phase]
    fidelity: Fidelity | None = None  # inference variants against fp32 eager
    quantized_share: float | None = None  # quantization variants: share of Linear weights
    quality: Quality | None = None  # real inputs with labels: task quality (fp32 too)

    def record_columns(self) -> dict[str, Any]:
        columns = self.fidelity.as_record() if self.fidelity else {}
        if self.quality is not None:
            columns.update(self.quality.as_record())
        if self.quantized_share is not None:
            columns["quantized_share"] = self.quantized_share
        return columns


class Backend(Protocol):
    @property
    def name(self) -> str:
        """Shown in messages: "CUDA", "ONNX Runtime"."""
        ...

    @property
    def forms(self) -> tuple[str, ...]:
        """The device strings it takes, for messages: ("cuda", "cuda:N")."""
        ...

    @property
    def variants(self) -> frozenset[str] | None:
        """Variant bases whose kernels run on it; None where the backend rules on variants
        itself (graph runtimes: `skip_reason`)."""
        ...

    @property
    def device_type(self) -> str:
        """What a variant's "runs on ..." message calls it: "cpu", "cuda"."""
        ...

    def parse(self, name: str) -> str | None:
        """The normalised device, None when `name` is not this backend's, or ValueError when
        it is but is malformed (the message names the fix)."""
        ...

    def check_available(self, device: str) -> None:
        """GreenbenchError naming what to install or fix when `device` cannot be used here."""
        ...

    def skip_reason(self, kind: WorkloadKind, variant: Variant) -> str | None:
        """Why this backend cannot run `variant` of a `kind` workload, known from names alone."""
        ...

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        """Why the device itself cannot run `variant` (e.g. compute capability); in the child."""
        ...

    def prepare(self, cell: Cell, emit: Emit) -> Prepared:
        """The cell's phases, ready to measure, and the cell's own record columns."""
        ...

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        """The meter of a cell on `device`: which components it measures, and how."""
        ...

    def synchronize(self, device: str) -> None:
        """Wait for queued device work, so a window edge marks the end of real work."""
        ...

    def free_memory_bytes(self, device: str) -> int | None:
        """Memory free for a new model on `device`, or None where we cannot tell."""
        ...

    def ray_request(self, device: str) -> RayRequest: ...

    def node_device(self, device: str) -> str:
        """The device as a Ray node runs it (Ray renumbers the GPUs it makes visible)."""
        ...

    def device_rows(self) -> list[DeviceInfo]:
        """This family's rows in `greenbench devices`, present or not."""
        ...
