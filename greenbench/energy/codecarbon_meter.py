"""A Meter over CodeCarbon's OfflineEmissionsTracker, one CodeCarbon task per window.

CodeCarbon picks how it reads each component (RAPL, NVML, a TDP model, ...); we read back which
one it picked so every figure carries its method label.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from greenbench.energy.meter import COMPONENTS, KWH_TO_J, Measurement
from greenbench.errors import GreenbenchError

_CPU_MODE_LABELS = {
    "intel_rapl": "rapl",
    "cpu_load": "cpu-load-estimate",
    "constant": "tdp-estimate",
    "intel_power_gadget": "power-gadget",
    "windows_emi": "windows-emi",
    "apple_powermetrics": "powermetrics",
}


class CodeCarbonMeter:
    """Energy per window from CodeCarbon, offline, for an explicit ISO-3166 alpha-3 zone."""

    def __init__(
        self,
        country_iso3: str,
        gpu_ids: list[int],
        carbon_source: str,
        note: str | None = None,
    ) -> None:
        """`gpu_ids` are NVML indices (PCI order), for the fallback when greenbench's own NVML
        meter cannot start; `note` says why, and travels with every window."""
        from codecarbon import OfflineEmissionsTracker  # lazy: codecarbon takes ~0.2 s to import

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=country_iso3,
            gpu_ids=gpu_ids,
            output_methods=[],  # write and send nothing, whatever a .codecarbon.config says
            log_level="error",
            tracking_mode="machine",
            # a killed earlier run may leave CodeCarbon's lock file behind
            allow_multiple_runs=True,
        )
        self._carbon_source = carbon_source
        self._tracks_gpus = bool(gpu_ids)
        self._note = note
        self._names = (f"window-{i}" for i in itertools.count())
        self._active: str | None = None
        # The first task detects hardware (~0.6 s): pay for it here, not inside a window.
        self.begin_window()
        self.end_window()
        if self._tracks_gpus and self.methods()["gpu"] == "none":
            self.close()
            raise GreenbenchError(
                f"CodeCarbon found no GPU to read (NVML indices {gpu_ids}): the GPU's energy "
                "cannot be measured; check the NVIDIA driver (nvidia-smi)"
            )

    def begin_window(self) -> None:
        self._active = next(self._names)
        self._tracker.start_task(self._active)

    def end_window(self) -> Measurement:
        assert self._active is not None, "end_window without begin_window"
        data = self._tracker.stop_task(self._active)
        if data is None:
            raise RuntimeError("CodeCarbon returned no measurement for the window")
        energy_j = {
            "cpu": data.cpu_energy * KWH_TO_J,
            "gpu": data.gpu_energy * KWH_TO_J if self._tracks_gpus else 0.0,
            "ram": data.ram_energy * KWH_TO_J,
        }
        total_kwh = sum(energy_j.values()) / KWH_TO_J
        intensity = data.emissions * 1000.0 / total_kwh if total_kwh > 0 else float("nan")
        return Measurement(
            energy_j=energy_j,
            methods=self.methods(),
            emissions_g=data.emissions * 1000.0,
            carbon_intensity_g_per_kwh=intensity,
            carbon_source=self._carbon_source,
            note=self._note,
        )

    def methods(self) -> dict[str, str]:
        from codecarbon.external.hardware import CPU, GPU, AppleSiliconChip
        from codecarbon.external.ram import RAM

        labels = dict.fromkeys(COMPONENTS, "none")
        for hardware in self._tracker._hardware:
            if isinstance(hardware, CPU):
                labels["cpu"] = _CPU_MODE_LABELS.get(hardware._mode, f"codecarbon-{hardware._mode}")
            elif isinstance(hardware, RAM):
                labels["ram"] = "ram-estimate"
            elif isinstance(hardware, GPU) and self._tracks_gpus:
                labels["gpu"] = _gpu_label(hardware)
            elif isinstance(hardware, AppleSiliconChip):
                labels[hardware.chip_part.lower()] = "powermetrics"
        return labels

    def close(self) -> None:
        self._tracker.stop()


def _gpu_label(hardware: Any) -> str:
    """CodeCarbon's own GPU reading: labelled apart from greenbench's NVML meter, which
    finds the cell's GPU by UUID, samples a trace and checks for other processes."""
    devices = getattr(hardware.devices, "devices", [])
    if any(type(d).__name__.startswith("AMD") for d in devices):
        return "amdsmi-counter"
    if any(getattr(d, "_use_power_fallback", False) for d in devices):
        return "codecarbon-nvml-power"
    return "codecarbon-nvml-counter"
