"""Measurement-method labels, and which of them are estimates rather than readings."""

from __future__ import annotations

# label -> what it means; shown in docs and `greenbench list`
METHODS: dict[str, str] = {
    "rapl": "CPU package energy counter (Intel/AMD RAPL, or AMD's amd_energy hwmon), read "
    "directly; RAM: the DRAM domain where every package has one",
    "nvml-counter": "NVIDIA total-energy counter (NVML)",
    "nvml-power": "NVIDIA instantaneous power readings integrated over time (NVML)",
    "nvml-power-averaged": "NVIDIA power readings integrated over time (NVML's 1 s moving "
    "average: it lags about 0.5 s, so short windows lose a few percent)",
    "codecarbon-nvml-counter": "NVIDIA total-energy counter read by CodeCarbon (fallback: "
    "greenbench's NVML meter could not start; no power trace)",
    "codecarbon-nvml-power": "NVIDIA power readings integrated by CodeCarbon (fallback)",
    "powermetrics": "Apple powermetrics readings (needs sudo): CPU; GPU and Neural Engine "
    "together in the gpu component",
    "ioreport": "Apple IOReport energy counters via zeus-apple-silicon (no sudo): CPU; GPU, its "
    "SRAM and the Neural Engine in the gpu component; DRAM where the chip reports it",
    "level-zero-counter": "Intel GPU card energy counter (Level Zero Sysman, via pyzes)",
    "power-gadget": "Intel Power Gadget readings",
    "windows-emi": "Windows Energy Meter Interface counter",
    "amdsmi-counter": "AMD GPU energy counter (AMD SMI), checked at start-up against power x time",
    "amdsmi-power": "AMD GPU socket power sampled at 10 Hz and integrated (AMD SMI; no "
    "counter, or it failed its start-up check: the note says which)",
    "amdsmi-power-averaged": "AMD GPU average socket power integrated (AMD SMI; the GPU "
    "reports no current power, so short windows lose a little)",
    "nvml-module-counter": "GH200 total-energy counter (NVML) of the whole module: Grace CPU, "
    "Hopper GPU and memory",
    "nvml-module-power": "GH200 module power (NVML) integrated over time: CPU, GPU and memory",
    "nvml-module-power-averaged": "GH200 module power (NVML's 1 s moving average) integrated",
    "in-gpu-module": "inside the GH200 module figure (NVML's counter covers it): not added",
    "jetson-rails": "Jetson INA3221 power rails sampled at 10 Hz and integrated (the note "
    "names the rails counted)",
    "in-gpu-rail": "inside the Jetson GPU rail (a combined CPU/GPU rail): not added",
    "cpu-load-estimate": "estimate: CPU TDP scaled by CPU load",
    "tdp-estimate": "estimate: a fixed share of the CPU's TDP",
    "ram-estimate": "estimate: power per GB or DIMM of RAM",
    "in-cpu-package": "an Intel iGPU or NPU: counted in the CPU package figure (shared RAPL)",
    "none": "component not used by this cell, or not measurable here (the record's method_note "
    "says why)",
}

ESTIMATES = frozenset({"cpu-load-estimate", "tdp-estimate", "ram-estimate"})
# Models that give the same power whatever the work (CodeCarbon's RAM: watts per GB): the idle
# baseline holds the same power, so they cancel out of net energy. A net figure is then no
# estimate on their account; the records say which components cancelled.
CONSTANT_POWER = frozenset({"ram-estimate"})


def estimates_net(method: str) -> bool:
    """True for labels that make a net (idle-subtracted) figure an estimate: every estimate
    except a constant-power model, which idle subtraction removes."""
    return is_estimate(method) and method not in CONSTANT_POWER


def is_estimate(method: str) -> bool:
    """True for labels that are modelled rather than read from a counter or sensor.

    Unknown labels count as estimates: a figure is only called measured when we know it is.
    """
    return method in ESTIMATES or method not in METHODS
