"""AMD GPUs through AMD SMI (ROCm): which device torch's cuda:N is, its energy, its power trace.

A ROCm build of torch calls AMD GPUs `cuda`; greenbench measures them here, never through NVML.

Which GPU: torch's PCI bus id decides when torch reports one. Otherwise the visible-devices
variables, as HIP reads them: ROCR_VISIBLE_DEVICES narrows the GPUs first, then
HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES when it is unset) picks among those. Entries are
ordinals or UUIDs (`GPU-<unique id>`, the ASIC serial AMD SMI reports, as torch matches them);
ordinals follow HIP's numbering (AMD SMI's `hip_id` where it has it: on some nodes HIP and AMD
SMI's PCI order differ).

Energy comes from AMD SMI's energy counter (`amdsmi-counter`), ticks times its resolution in uJ;
the key is `energy_accumulator` since amdsmi 6.2.1 and `power` before. The counter is wrong on
some GPUs and older ROCm (ROCm/amdsmi#38: frozen until a reboot), so a start-up probe compares
it with power x time, as Zeus does; a counter missing, unreadable or failing the probe gives
power integration (`amdsmi-power`), the reason in every record. A counter that steps back
within 32 bits is a 32-bit wrap; one that steps back further (ROCm/amdsmi#115) integrates the
trace for that window. All calls go through an injected module (amdsmi, or a fake in tests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from greenbench.energy.gpu_meter import CpuRamAndNvmlMeter
from greenbench.energy.meter import Measurement, Meter
from greenbench.energy.nvml import (
    Cooldown,
    ForeignProcesses,
    NvmlGpu,
    NvmlGpuMeter,
    PowerSampler,
    Sample,
)
from greenbench.energy.pid_namespace import in_initial_pid_namespace, own_pids
from greenbench.errors import GreenbenchError, one_line

NOT_SUPPORTED, NO_PERMISSION = 2, 10  # AMDSMI_STATUS_NOT_SUPPORTED, AMDSMI_STATUS_NO_PERM
PROBE_S = 0.5  # the counter's start-up check, as long as Zeus's
PROBE_RATIO = (0.5, 2.0)  # counter / (power x time) the probe accepts
WRAP_32 = 2**32  # older firmware's accumulator width, in ticks
PCI_PARTS = ("domain", "bus", "device")  # torch's pci_<part>_id device properties
PERMISSION_HINT = "add the user to the 'render' and 'video' groups"


@dataclass(frozen=True)
class AmdGpu(NvmlGpu):
    """An AMD GPU as AMD SMI sees it; `index` is AMD SMI's (PCI order)."""

    serial: str = ""  # the ASIC serial, hex without 0x: HIP's UUID is GPU-<serial>
    hip_id: int | None = None  # HIP's index of the GPU, before any visible-devices mask


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(call: Callable[..., Any], error: type[BaseException], *args: Any) -> Any:
    """call(*args), or None where AMD SMI lacks the call or the field for this GPU."""
    try:
        return call(*args)
    except (error, AttributeError, KeyError, TypeError):
        return None


def amd_gpus(amdsmi: Any) -> list[AmdGpu]:
    """Every GPU AMD SMI sees (amdsmi_init must have been called)."""
    error = amdsmi.AmdSmiException
    gpus = []
    for index, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
        asic = _optional(amdsmi.amdsmi_get_gpu_asic_info, error, handle) or {}
        enumeration = _optional(amdsmi.amdsmi_get_gpu_enumeration_info, error, handle)
        hip_id = enumeration.get("hip_id") if isinstance(enumeration, Mapping) else None
        gpus.append(
            AmdGpu(
                index=index,
                uuid=_text(_optional(amdsmi.amdsmi_get_gpu_device_uuid, error, handle)),
                bus_id=_text(amdsmi.amdsmi_get_gpu_device_bdf(handle)).lower(),
                name=_text(asic.get("market_name", "AMD GPU")),
                handle=handle,
                serial=_text(asic.get("asic_serial", "")).lower().removeprefix("0x"),
                hip_id=hip_id if isinstance(hip_id, int) else None,
            )
        )
    return gpus


def _key(text: str) -> str:
    """A UUID or serial as hex digits alone: `GPU-` prefix, `0x` and dashes dropped."""
    text = text.strip().lower().removeprefix("gpu-").removeprefix("0x")
    return text.replace("-", "")


def _pick(entry: str, gpus: Sequence[AmdGpu], variable: str) -> AmdGpu:
    """One visible-devices entry among `gpus`: an ordinal, or a (unique prefix of a) UUID."""
    if entry.upper().startswith("GPU-"):
        key = _key(entry)
        matches = [g for g in gpus if any(k and k.startswith(key) for k in _keys(g))]
        if len(matches) != 1:
            raise GreenbenchError(
                f"{variable} entry {entry} matches {len(matches)} AMD GPUs; give its full UUID "
                "(GPU- and the serial `amd-smi static --asic` shows)"
            )
        return matches[0]
    try:
        ordinal = int(entry)
    except ValueError:
        raise GreenbenchError(f"{variable} entry '{entry}' is not an index or UUID") from None
    if not 0 <= ordinal < len(gpus):
        raise GreenbenchError(f"{variable} entry {ordinal}: only {len(gpus)} AMD GPU(s) there")
    return gpus[ordinal]


def _keys(gpu: AmdGpu) -> tuple[str, ...]:
    return _key(gpu.serial), _key(gpu.uuid)


def _masked(gpus: Sequence[AmdGpu], variable: str, value: str | None) -> list[AmdGpu]:
    if value is None:
        return list(gpus)
    entries = [e.strip() for e in value.split(",") if e.strip()]
    return [_pick(e, gpus, variable) for e in entries]


def visible_gpus(gpus: Sequence[AmdGpu], env: Mapping[str, str]) -> list[AmdGpu]:
    """The GPUs torch numbers cuda:0, cuda:1, ..., in that order, as HIP applies the masks."""
    ordered = sorted(gpus, key=lambda g: (g.hip_id is None, g.hip_id or 0, g.index))
    narrowed = _masked(ordered, "ROCR_VISIBLE_DEVICES", env.get("ROCR_VISIBLE_DEVICES"))
    for variable in ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        if env.get(variable) is not None:
            return _masked(narrowed, variable, env[variable])
    return narrowed


def _bdf(text: str) -> tuple[int, int, int] | None:
    """(domain, bus, device) of `0000:c1:00.0`."""
    try:
        domain, bus, rest = text.split(":")
        return int(domain, 16), int(bus, 16), int(rest.split(".")[0], 16)
    except ValueError:
        return None


def gpu_for_torch_index(
    torch_index: int,
    gpus: Sequence[AmdGpu],
    env: Mapping[str, str],
    torch_pci: tuple[int, int, int] | None = None,
) -> AmdGpu:
    """The AMD SMI device behind torch's `cuda:torch_index` on a ROCm torch.

    torch_pci, torch's (pci_domain_id, pci_bus_id, pci_device_id), decides when known; else
    the visible-devices variables (see the module's docstring).
    """
    if torch_pci is not None:
        matches = [g for g in gpus if _bdf(g.bus_id) == torch_pci]
        if len(matches) == 1:
            return matches[0]
        domain, bus, device = torch_pci
        raise GreenbenchError(
            f"cuda:{torch_index}: no AMD SMI GPU is at PCI {domain:04x}:{bus:02x}:{device:02x} "
            "(check that amdsmi matches the ROCm version)"
        )
    visible = visible_gpus(gpus, env)
    if torch_index >= len(visible):
        raise GreenbenchError(
            f"cuda:{torch_index} is not visible: AMD SMI sees {len(visible)} GPU(s) after "
            "ROCR_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES"
        )
    return visible[torch_index]


def _number(value: Any) -> float | None:
    """A reading, or None where AMD SMI says "N/A" (its word for a field the GPU lacks)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def power_w(amdsmi: Any, gpu: AmdGpu) -> tuple[float, bool]:
    """Socket power in W and whether it is instantaneous: `socket_power` (ROCm 7), then
    `current_socket_power` (MI300), then `average_socket_power`; GreenbenchError when none."""
    info = amdsmi.amdsmi_get_power_info(gpu.handle)
    for key, instant in (
        ("socket_power", True),
        ("current_socket_power", True),
        ("average_socket_power", False),
    ):
        value = _number(info.get(key))
        if value is not None and value > 0:
            return value, instant
    raise GreenbenchError(f"GPU {gpu.uuid}: AMD SMI reports no socket power")


def counter_ticks(amdsmi: Any, gpu: AmdGpu) -> tuple[int, float]:
    """The energy counter's raw ticks and the uJ per tick."""
    count = amdsmi.amdsmi_get_energy_count(gpu.handle)
    ticks = count.get("energy_accumulator", count.get("power"))
    if ticks is None:
        raise KeyError("energy_accumulator")
    return int(ticks), float(count["counter_resolution"])


def error_code(e: BaseException) -> int | None:
    for name in ("get_error_code", "err_code"):
        value = getattr(e, name, None)
        value = value() if callable(value) else value
        if isinstance(value, int):
            return value
    return None


def why_not(e: BaseException) -> str:
    """A failed AMD SMI read, in words with its fix."""
    code = error_code(e)
    if code == NO_PERMISSION:
        return f"permission denied ({PERMISSION_HINT})"
    if code == NOT_SUPPORTED:
        return "not supported on this GPU"
    return one_line(e)


class AmdSmiSampler(PowerSampler):
    """Power, GFX activity, hotspot temperature and GFX clock of AMD GPUs at 10 Hz."""

    def sample_once(self) -> None:
        amdsmi, now = self.nvml, self.clock()
        taken = []
        for gpu in self.gpus:
            assert isinstance(gpu, AmdGpu)
            power, instant = power_w(amdsmi, gpu)
            activity = _optional(amdsmi.amdsmi_get_gpu_activity, amdsmi.AmdSmiException, gpu.handle)
            taken.append(
                Sample(
                    now,
                    gpu.index,
                    power,
                    _number((activity or {}).get("gfx_activity")) or 0.0,
                    _temperature_c(amdsmi, gpu),
                    _gfx_clock_mhz(amdsmi, gpu),
                    instant,
                )
            )
        with self._lock:
            self.samples.extend(taken)

    def sample_safely(self) -> None:
        try:
            self.sample_once()
        except (self.nvml.AmdSmiException, GreenbenchError):
            self.failures += 1


def _temperature_c(amdsmi: Any, gpu: AmdGpu) -> float:
    """Hotspot temperature in °C (amdsmi gives °C; millidegrees on some versions: Zeus)."""
    value = _optional(
        amdsmi.amdsmi_get_temp_metric,
        amdsmi.AmdSmiException,
        gpu.handle,
        amdsmi.AmdSmiTemperatureType.HOTSPOT,
        amdsmi.AmdSmiTemperatureMetric.CURRENT,
    )
    number = _number(value) or 0.0
    return number / 1000 if number > 1000 else number


def _gfx_clock_mhz(amdsmi: Any, gpu: AmdGpu) -> float:
    info = _optional(
        amdsmi.amdsmi_get_clock_info, amdsmi.AmdSmiException, gpu.handle, amdsmi.AmdSmiClkType.GFX
    )
    return (_number(info.get("clk")) if isinstance(info, Mapping) else None) or 0.0


@dataclass(frozen=True)
class ProbeResult:
    use_counter: bool
    note: str | None  # why the counter is not used, or what the probe could not tell


def probe_counter(
    amdsmi: Any,
    gpu: AmdGpu,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    seconds: float = PROBE_S,
) -> ProbeResult:
    """Whether the GPU's energy counter can be trusted: it advances by about power x time."""
    error = amdsmi.AmdSmiException
    power_error: str | None = None
    try:
        power_before, _ = power_w(amdsmi, gpu)
    except (error, GreenbenchError) as e:
        power_before = 0.0
        power_error = why_not(e)
    try:
        ticks0, resolution = counter_ticks(amdsmi, gpu)
        t0 = clock()
        sleep(seconds)
        ticks1, _ = counter_ticks(amdsmi, gpu)
        t1 = clock()
    except (error, KeyError) as e:
        if power_error is not None:
            raise GreenbenchError(
                f"GPU {gpu.uuid}: AMD SMI gives neither energy ({why_not(e)}) nor power "
                f"({power_error}), so its energy cannot be measured (on an MI250/MI250X the "
                "odd die's energy is in the even die's figure: run on the even die)"
            ) from None
        return ProbeResult(False, f"GPU {gpu.uuid}: no usable energy counter ({why_not(e)})")
    measured_j = (ticks1 - ticks0) * resolution / 1e6
    if power_error is not None:
        if measured_j > 0:
            return ProbeResult(True, f"GPU {gpu.uuid}: counter not checked ({power_error})")
        raise GreenbenchError(
            f"GPU {gpu.uuid}: its energy counter did not move and AMD SMI gives no power "
            f"({power_error}), so its energy cannot be measured"
        )
    expected_j = power_before * (t1 - t0)
    low, high = PROBE_RATIO
    if expected_j > 0 and low <= measured_j / expected_j <= high:
        return ProbeResult(True, None)
    return ProbeResult(
        False,
        f"GPU {gpu.uuid}: its energy counter failed the start-up check ({measured_j:.3g} J in "
        f"{t1 - t0:.2g} s at {power_before:.0f} W, expected {expected_j:.3g} J; a known fault "
        "of older ROCm, ROCm/amdsmi#38), so power is integrated",
    )


class AmdSmiGpuMeter(NvmlGpuMeter):
    """NvmlGpuMeter's windows over AMD SMI: counter deltas (unwrapped) or the power trace."""

    COUNTER_LABEL, POWER_LABEL, AVERAGED_LABEL = (
        "amdsmi-counter",
        "amdsmi-power",
        "amdsmi-power-averaged",
    )
    LIBRARY = "AMD SMI"

    def __init__(
        self, amdsmi: Any, gpus: Sequence[AmdGpu], sampler: PowerSampler, probes: Sequence[bool]
    ) -> None:
        self._last: dict[int, int] = {}
        self._wraps: dict[int, int] = {}
        super().__init__(amdsmi, gpus, sampler)
        self.counters = {g.index: use for g, use in zip(self.gpus, probes, strict=True)}

    def _counter(self, gpu: NvmlGpu) -> float | None:
        assert isinstance(gpu, AmdGpu)
        try:
            ticks, resolution = counter_ticks(self.nvml, gpu)
        except (self.nvml.AmdSmiException, KeyError):
            return None
        last = self._last.get(gpu.index)
        self._last[gpu.index] = ticks
        if last is not None and ticks < last:
            if last >= WRAP_32:  # not a 32-bit wrap: the counter stepped back (amdsmi#115)
                self._last.pop(gpu.index)
                return None
            self._wraps[gpu.index] = self._wraps.get(gpu.index, 0) + 1
        unwrapped = ticks + self._wraps.get(gpu.index, 0) * WRAP_32
        return unwrapped * resolution / 1e6  # uJ -> J


class AmdCooldown(Cooldown):
    """Cooldown with power and temperature read through AMD SMI."""

    def _read(self, gpu: NvmlGpu) -> tuple[float, float] | None:
        assert isinstance(gpu, AmdGpu)
        try:
            return power_w(self.nvml, gpu)[0], _temperature_c(self.nvml, gpu)
        except (self.nvml.AmdSmiException, GreenbenchError):
            return None


def amd_foreign_processes(
    amdsmi: Any, gpus: Sequence[AmdGpu], own: set[int] | None = None, proc: str | None = None
) -> ForeignProcesses:
    """Processes on these GPUs that are not this cell's, as nvml.foreign_processes decides."""
    own = own if own is not None else own_pids(proc)
    found: list[tuple[str, int]] = []
    notes: list[str] = []
    for gpu in gpus:
        try:
            pids = [_pid(amdsmi, gpu, p) for p in amdsmi.amdsmi_get_gpu_process_list(gpu.handle)]
        except amdsmi.AmdSmiException as e:
            notes.append(f"AMD SMI could not list the processes on {gpu.uuid} ({why_not(e)})")
            continue
        others = [p for p in pids if p not in own]
        if others and len(others) == len(pids) and in_initial_pid_namespace(proc) is False:
            notes.append(
                f"AMD SMI lists PIDs from another PID namespace on {gpu.uuid} "
                f"({', '.join(map(str, others))}): one is taken to be greenbench's"
            )
            if len(others) == 1:
                continue
        found += [(gpu.uuid, p) for p in others]
    return ForeignProcesses(found, "; ".join(notes) or None)


def _pid(amdsmi: Any, gpu: AmdGpu, process: Any) -> int:
    """A process-list entry's PID: a dict since ROCm 6.1, a handle to look up before."""
    if isinstance(process, Mapping):
        return int(process["pid"])
    return int(amdsmi.amdsmi_get_gpu_process_info(gpu.handle, process)["pid"])


def torch_pci_of(device_index: int) -> tuple[int, int, int] | None:
    """torch's (domain, bus, device) of cuda:device_index, where its properties have them."""
    try:
        import torch

        props = torch.cuda.get_device_properties(device_index)
        domain, bus, device = (getattr(props, f"pci_{p}_id", None) for p in PCI_PARTS)
    except Exception:  # noqa: BLE001 - an older torch: the visible-devices variables decide
        return None
    if isinstance(domain, int) and isinstance(bus, int) and isinstance(device, int):
        return domain, bus, device
    return None


def find_amd_gpu(device_index: int, amdsmi: Any) -> AmdGpu:
    """torch's cuda:device_index on a ROCm torch, as AMD SMI numbers it (after amdsmi_init)."""
    return gpu_for_torch_index(
        device_index, amd_gpus(amdsmi), os.environ, torch_pci_of(device_index)
    )


class CpuRamAndAmdMeter(CpuRamAndNvmlMeter):
    """CodeCarbon's CPU and RAM with AMD SMI's GPU energy, trace and process list added."""

    def __init__(self, base: Meter, gpu: AmdSmiGpuMeter, amdsmi: Any, note: str | None) -> None:
        super().__init__(base, gpu, amdsmi, AmdCooldown(amdsmi, gpu.gpus))
        self.probe_note = note

    def end_window(self) -> Measurement:
        m = super().end_window()
        note = "; ".join(p for p in (self.probe_note, m.note) if p) or None
        return dataclasses.replace(m, note=note)

    def foreign_processes(self) -> ForeignProcesses:
        return amd_foreign_processes(self.nvml, [g for g in self.gpu.gpus if isinstance(g, AmdGpu)])

    def shutdown(self) -> None:
        self.nvml.amdsmi_shut_down()


def load_amdsmi() -> Any:
    """The amdsmi module, or GreenbenchError naming what to install (its import fails with
    ImportError, OSError, AttributeError or KeyError when ROCm's library is missing or older)."""
    try:
        with contextlib.redirect_stdout(None):  # it prints when libamd_smi.so is missing
            import amdsmi
    except Exception as e:  # noqa: BLE001 - any import failure: the same fix
        raise GreenbenchError(
            f"AMD GPUs are measured with AMD SMI, which cannot be loaded ({one_line(e)}): "
            f"{AMD_INSTALL_HINT}"
        ) from None
    return amdsmi


AMD_INSTALL_HINT = 'pip install "greenbench[amd]" (amdsmi matching the ROCm version; ROCm 6.2+)'


def amd_meter_for(
    device_index: int,
    base: Meter,
    amdsmi: Any,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CpuRamAndAmdMeter:
    """The meter for torch's cuda:device_index on a ROCm torch: GreenbenchError when AMD SMI
    cannot be used or the GPU cannot be identified or read."""
    try:
        amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    except amdsmi.AmdSmiException as e:
        raise GreenbenchError(
            f"cuda:{device_index}: AMD SMI cannot start ({why_not(e)}); check the amdgpu driver "
            "(amd-smi list)"
        ) from None
    try:
        gpu = find_amd_gpu(device_index, amdsmi)
        probe = probe_counter(amdsmi, gpu, sleep, clock, PROBE_S)
        sampler = AmdSmiSampler(amdsmi, [gpu])
        try:
            sampler.sample_once()  # a GPU whose power cannot be read fails here, clearly
        except (amdsmi.AmdSmiException, GreenbenchError) as e:
            if probe.use_counter:  # the counter is enough; the trace has holes
                sampler.failures += 1
            else:
                raise GreenbenchError(
                    f"cuda:{device_index}: AMD SMI cannot read its power ({why_not(e)})"
                ) from None
        sampler.start()
        meter = AmdSmiGpuMeter(amdsmi, [gpu], sampler, [probe.use_counter])
        return CpuRamAndAmdMeter(base, meter, amdsmi, probe.note)
    except BaseException:
        amdsmi.amdsmi_shut_down()
        raise
