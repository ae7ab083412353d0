"""A Meter over CodeCarbon's OfflineEmissionsTracker, one CodeCarbon task per window.

CodeCarbon picks how it reads each component (RAPL, NVML, a TDP model, ...); we read back which
one it picked so every figure carries its method label. Every CodeCarbon setting that changes a
figure is pinned here, whatever ~/.codecarbon.config, ./.codecarbon.config or CODECARBON_*
variables say (they would change the numbers without changing a label); `ignored_settings`
names the ones a user set, for run.json and the terminal. Emissions are the window's energy at
the zone's intensity, computed here rather than divided back out of CodeCarbon's total.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from greenbench.carbon.zones import Zone
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

# CodeCarbon settings that change a figure -> the value greenbench measures with (CodeCarbon's
# defaults; where None, the feature is off). Constructor values win over its config files.
PINNED: dict[str, Any] = {
    "pue": 1.0,
    "wue": 0.0,
    "force_cpu_power": None,
    "force_ram_power": None,
    "force_mode_cpu_load": False,
    "force_carbon_intensity_g_co2e_kwh": None,
    "rapl_include_dram": False,  # DRAM would count twice: in RAPL and in the RAM estimate
    "rapl_prefer_psys": False,
    "measure_power_secs": 15.0,
    "cloud_provider": None,  # the zone decides the intensity, not a cloud region
    "cloud_region": None,
    "region": None,
    "country_2letter_iso_code": None,
}


def ignored_settings() -> dict[str, str]:
    """CodeCarbon settings a user set that greenbench pins: key -> "value (where it was set)"."""
    from codecarbon.core.config import get_hierarchical_config_with_sources  # lazy: ~0.2 s

    config, sources = get_hierarchical_config_with_sources()
    return {k: f"{config[k]} ({sources[k]})" for k in PINNED if k in config}


class CodeCarbonMeter:
    """Energy per window from CodeCarbon, offline, for an explicit zone."""

    def __init__(self, zone: Zone, gpu_ids: list[int] | None = None, note: str | None = None):
        """`gpu_ids` are NVML indices (PCI order), for the fallback when greenbench's own NVML
        meter cannot start; `note` says why, and travels with every window."""
        from codecarbon import OfflineEmissionsTracker  # lazy: codecarbon takes ~0.2 s to import

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=zone.iso3,
            gpu_ids=list(gpu_ids or []),
            output_methods=[],  # write and send nothing, whatever a .codecarbon.config says
            log_level="error",
            tracking_mode="machine",
            # a killed earlier run may leave CodeCarbon's lock file behind
            allow_multiple_runs=True,
            **PINNED,
        )
        self._zone = zone
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
        if not self._tracks_gpus and data.gpu_energy > 0:
            # greenbench measures this cell's GPU itself (or it has none): CodeCarbon reading
            # one too means a second tracker in this process took over its hardware
            raise GreenbenchError(
                f"CodeCarbon measured {data.gpu_energy * KWH_TO_J:.3g} J of GPU energy that it "
                "was not asked for; run one greenbench meter per process"
            )
        energy_j = {
            "cpu": data.cpu_energy * KWH_TO_J,
            "gpu": data.gpu_energy * KWH_TO_J if self._tracks_gpus else 0.0,
            "ram": data.ram_energy * KWH_TO_J,
        }
        intensity = self._zone.intensity_g_per_kwh
        return Measurement(
            energy_j=energy_j,
            methods=self.methods(),
            emissions_g=sum(energy_j.values()) / KWH_TO_J * intensity,
            carbon_intensity_g_per_kwh=intensity,
            carbon_source=self._zone.source,
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
