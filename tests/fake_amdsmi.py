"""A fake `amdsmi` module (AMD SMI's Python API) over any clock: what the library returns, for
tests. Nothing here sleeps; energy is power integrated over the clock between reads.

As amdsmi does (ROCm 6.2+ shapes, the older ones where noted):
- amdsmi_get_energy_count: {"energy_accumulator": ticks, "counter_resolution": uJ per tick,
  "timestamp": ns}; before amdsmi 6.2.1 the ticks were under "power" (`old_key=True`); ticks
  wrap at `wrap_ticks` (2**64 by default; 2**32 on older firmware);
- amdsmi_get_power_info: W as int, "N/A" for a field the GPU lacks (`power_fields` picks which
  of socket_power, current_socket_power, average_socket_power it has);
- amdsmi_get_gpu_activity: {"gfx_activity": %, ...}; amdsmi_get_temp_metric: °C;
- amdsmi_get_gpu_process_list: [{"pid": ..., "name": ...}] (ROCm 6.1+);
- amdsmi_get_gpu_asic_info: {"market_name", "asic_serial": "0x..."}; the device UUID, BDF and
  (amdsmi 6.4+) amdsmi_get_gpu_enumeration_info {"hip_id": ...};
- every call before amdsmi_init or after amdsmi_shut_down raises AmdSmiLibraryException.

Degraded cases, on a FakeAmdGpu: `counter="missing"` (NOT_SUPPORTED), `"denied"` (NO_PERM),
`"frozen"` (stops moving: ROCm/amdsmi#38), `counter_scale` (a counter off by a factor);
`gpu.back_step_ticks` makes the next read step back (ROCm/amdsmi#115).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

NOT_SUPPORTED, NO_PERMISSION, NOT_INIT = 2, 10, 32


class AmdSmiException(Exception):
    pass


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, code: int) -> None:
        super().__init__(f"AMD SMI error {code}")
        self.err_code = code

    def get_error_code(self) -> int:
        return self.err_code


class FakeAmdGpu:
    def __init__(
        self,
        clock: Callable[[], float],
        bdf: str = "0000:c1:00.0",
        serial: str = "0xD0D3C2A1B0E1F203",
        name: str = "AMD Instinct MI300X",
        hip_id: int | None = 0,
        power_w: float = 140.0,
        resolution_uj: float = 15.3,
        counter: str = "ok",
        counter_scale: float = 1.0,
        wrap_ticks: int = 2**64,
        boot_ticks: int = 10_000,
        power_fields: Sequence[str] = ("current_socket_power", "average_socket_power"),
    ) -> None:
        self.clock, self.bdf, self.serial, self.name, self.hip_id = clock, bdf, serial, name, hip_id
        self.uuid = f"{serial[-8:].lower()}-0000-1000-80ec-0c20ec9c3b6b"
        self.resolution_uj, self.counter, self.counter_scale = resolution_uj, counter, counter_scale
        self.wrap_ticks, self.boot_ticks, self.power_fields = wrap_ticks, boot_ticks, power_fields
        self._power_w, self.activity = power_w, 0.0
        self.energy_j, self._since = 0.0, clock()
        self.temperature_c = 40.0
        self.pids: list[int] = [os.getpid()]
        self.back_step_ticks = 0
        self._frozen_ticks: int | None = None

    def _advance(self) -> None:
        now = self.clock()
        self.energy_j += self._power_w * (now - self._since)
        self._since = now

    @property
    def power_w(self) -> float:
        return self._power_w

    @power_w.setter
    def power_w(self, value: float) -> None:
        self._advance()
        self._power_w = value

    def ticks(self) -> int:
        self._advance()
        true = self.boot_ticks + self.energy_j * 1e6 / self.resolution_uj * self.counter_scale
        ticks = int(true) - self.back_step_ticks
        if self.counter == "frozen":
            if self._frozen_ticks is None:
                self._frozen_ticks = ticks
            ticks = self._frozen_ticks
        return ticks % self.wrap_ticks


class FakeAmdSmi(SimpleNamespace):
    """The module: put it in sys.modules["amdsmi"], or pass it where amdsmi is injected."""

    def __init__(self, gpus: Sequence[FakeAmdGpu], old_key: bool = False) -> None:
        super().__init__(
            AmdSmiException=AmdSmiException,
            AmdSmiLibraryException=AmdSmiLibraryException,
            AmdSmiInitFlags=SimpleNamespace(INIT_AMD_GPUS=2),
            AmdSmiTemperatureType=SimpleNamespace(EDGE=0, HOTSPOT=1),
            AmdSmiTemperatureMetric=SimpleNamespace(CURRENT=0),
            AmdSmiClkType=SimpleNamespace(GFX=1, MEM=5),
        )
        self.gpus, self.old_key = list(gpus), old_key
        self.initialised = 0
        self.fail_init: int | None = None

    def _gpu(self, handle: Any) -> FakeAmdGpu:
        if self.initialised <= 0:
            raise AmdSmiLibraryException(NOT_INIT)
        return handle

    def amdsmi_init(self, flags: int = 0) -> None:
        if self.fail_init is not None:
            raise AmdSmiLibraryException(self.fail_init)
        self.initialised += 1

    def amdsmi_shut_down(self) -> None:
        self.initialised -= 1

    def amdsmi_get_processor_handles(self) -> list[FakeAmdGpu]:
        if self.initialised <= 0:
            raise AmdSmiLibraryException(NOT_INIT)
        return sorted(self.gpus, key=lambda g: g.bdf)  # AMD SMI lists in PCI order

    def amdsmi_get_gpu_device_uuid(self, handle: Any) -> str:
        return self._gpu(handle).uuid

    def amdsmi_get_gpu_device_bdf(self, handle: Any) -> str:
        return self._gpu(handle).bdf

    def amdsmi_get_gpu_asic_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        return {"market_name": gpu.name, "asic_serial": gpu.serial}

    def amdsmi_get_gpu_enumeration_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        if gpu.hip_id is None:  # an amdsmi before 6.4
            raise AttributeError("amdsmi_get_gpu_enumeration_info")
        return {"hip_id": gpu.hip_id, "drm_card": 0, "drm_render": 128}

    def amdsmi_get_energy_count(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        if gpu.counter == "missing":
            raise AmdSmiLibraryException(NOT_SUPPORTED)
        if gpu.counter == "denied":
            raise AmdSmiLibraryException(NO_PERMISSION)
        key = "power" if self.old_key else "energy_accumulator"
        return {
            key: gpu.ticks(),
            "counter_resolution": gpu.resolution_uj,
            "timestamp": int(gpu.clock() * 1e9),
        }

    def amdsmi_get_power_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu(handle)
        fields = ("socket_power", "current_socket_power", "average_socket_power")
        return {f: int(gpu.power_w) if f in gpu.power_fields else "N/A" for f in fields}

    def amdsmi_get_gpu_activity(self, handle: Any) -> dict[str, Any]:
        return {"gfx_activity": int(self._gpu(handle).activity), "umc_activity": 0}

    def amdsmi_get_temp_metric(self, handle: Any, sensor: int, metric: int) -> int:
        return int(self._gpu(handle).temperature_c)

    def amdsmi_get_clock_info(self, handle: Any, clock_type: int) -> dict[str, Any]:
        self._gpu(handle)
        return {"clk": 2100, "min_clk": 500, "max_clk": 2100}

    def amdsmi_get_gpu_process_list(self, handle: Any) -> list[dict[str, Any]]:
        return [{"pid": pid, "name": "python"} for pid in self._gpu(handle).pids]


class Tripwire(SimpleNamespace):
    """Stands in for pynvml: any use of it is recorded (a ROCm torch must never reach it)."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "touched", [])

    def __getattr__(self, name: str) -> Any:
        self.touched.append(name)
        raise AssertionError(f"NVML used on an AMD GPU: pynvml.{name}")
