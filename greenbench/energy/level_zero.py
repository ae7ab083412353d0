"""Intel GPU energy through Level Zero Sysman (pyzes: ctypes bindings to libze_loader).

A discrete GPU's card-level power domain has an energy counter (`zesPowerGetEnergyCounter`:
a monotonic uint64 in microjoules and a timestamp in microseconds); a window's energy is the
counter's step, taken modulo 2**64. An integrated GPU has no card-level domain: its energy is in
the CPU package's RAPL figure (`in-cpu-package`). A GPU whose counter cannot be read is labelled
`none`, the reason in the window's note.

torch's xpu:N is matched to its Sysman device by UUID where torch reports one; otherwise through
ZE_AFFINITY_MASK (torch sees the masked devices, Sysman every device), else by order. A mask
entry naming a sub-device (`0.1`) cannot be measured apart from its card.
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from greenbench.energy.meter import KWH_TO_J, Measurement, Meter
from greenbench.errors import GreenbenchError

ZE_RESULT_SUCCESS = 0
ZE_DEVICE_TYPE_GPU = 1
ZE_DEVICE_PROPERTY_FLAG_INTEGRATED = 1  # ZE_BIT(0) of ze_device_property_flags_t
ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES = 0x1
ZES_STRUCTURE_TYPE_POWER_PROPERTIES = 0xD
ZES_STRUCTURE_TYPE_POWER_EXT_PROPERTIES = 0x28
ZES_POWER_DOMAIN_CARD, ZES_POWER_DOMAIN_PACKAGE = 1, 2
COUNTER_RANGE = 2**64
INSTALL = "pip install 'greenbench[intel]'"


@dataclass(frozen=True)
class SysmanGpu:
    """One GPU as Sysman enumerates it, and the counter that measures it (None: why not)."""

    index: int  # position among Sysman's GPUs
    name: str
    uuid: str  # hex, lower case
    integrated: bool
    power: Any = None  # the card-level zes_pwr_handle_t
    reason: str | None = None  # why `power` is None


def _check(rc: int, call: str) -> None:
    if rc != ZE_RESULT_SUCCESS:
        raise GreenbenchError(f"Level Zero {call} failed (ze_result_t {rc:#x})")


def _handles(zes: Any, enum: Any, handle_type: Any, *args: Any) -> list[Any]:
    """Level Zero's two-call enumeration: the count, then that many handles."""
    count = ctypes.c_uint32(0)
    _check(enum(*args, ctypes.byref(count), None), enum.__name__)
    array = (handle_type * count.value)()
    if count.value:
        _check(enum(*args, ctypes.byref(count), array), enum.__name__)
    return list(array)[: count.value]


def read_counter(zes: Any, power: Any) -> tuple[int, int]:
    """(energy uJ, timestamp us) of a power domain."""
    counter = zes.zes_power_energy_counter_t()
    _check(zes.zesPowerGetEnergyCounter(power, ctypes.byref(counter)), "zesPowerGetEnergyCounter")
    return int(counter.energy), int(counter.timestamp)


def _card_domain(zes: Any, device: Any) -> tuple[Any, str | None]:
    """The card-level power domain with a readable counter, or (None, why not)."""
    domains = _handles(zes, zes.zesDeviceEnumPowerDomains, zes.zes_pwr_handle_t, device)
    ranked: list[tuple[int, int, Any]] = []
    for power in domains:
        props = zes.zes_power_properties_t()
        props.stype = ZES_STRUCTURE_TYPE_POWER_PROPERTIES
        ext = zes.zes_power_ext_properties_t()
        ext.stype = ZES_STRUCTURE_TYPE_POWER_EXT_PROPERTIES
        props.pNext = ctypes.cast(ctypes.pointer(ext), ctypes.c_void_p)
        if zes.zesPowerGetProperties(power, ctypes.byref(props)) != ZE_RESULT_SUCCESS:
            # a driver older than the extension (Level Zero 1.4): ask again without it
            props.pNext, ext.domain = None, 0
            if zes.zesPowerGetProperties(power, ctypes.byref(props)) != ZE_RESULT_SUCCESS:
                continue
        if props.onSubdevice:
            continue  # one stack of a multi-stack card: the card's domain holds it
        rank = {ZES_POWER_DOMAIN_CARD: 0, ZES_POWER_DOMAIN_PACKAGE: 1}.get(int(ext.domain), 2)
        ranked.append((rank, len(ranked), power))
    if not ranked:
        return None, f"no card-level power domain among its {len(domains)} Sysman domain(s)"
    power = min(ranked)[2]
    try:
        read_counter(zes, power)
    except GreenbenchError as e:
        return None, f"its energy counter cannot be read ({e})"
    return power, None


def sysman_gpus(zes: Any) -> list[SysmanGpu]:
    """Every GPU Sysman sees (after zesInit), with its card-level counter where it has one."""
    _check(zes.zesInit(0), "zesInit")
    gpus: list[SysmanGpu] = []
    for driver in _handles(zes, zes.zesDriverGet, zes.zes_driver_handle_t):
        for device in _handles(zes, zes.zesDeviceGet, zes.zes_device_handle_t, driver):
            props = zes.zes_device_properties_t()
            props.stype = ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES
            _check(
                zes.zesDeviceGetProperties(device, ctypes.byref(props)), "zesDeviceGetProperties"
            )
            core = props.core
            if int(core.type) != ZE_DEVICE_TYPE_GPU:
                continue
            name = bytes(core.name).split(b"\0")[0].decode(errors="replace")
            uuid = bytes(core.uuid.id).hex()
            integrated = bool(int(core.flags) & ZE_DEVICE_PROPERTY_FLAG_INTEGRATED)
            power, reason = (None, None) if integrated else _card_domain(zes, device)
            gpus.append(SysmanGpu(len(gpus), name, uuid, integrated, power, reason))
    return gpus


def _hex(uuid: str) -> str:
    return re.sub(r"[^0-9a-f]", "", uuid.lower())


def gpu_for_torch_index(
    index: int, gpus: list[SysmanGpu], affinity_mask: str | None, torch_uuid: str | None
) -> SysmanGpu:
    """torch's xpu:index among Sysman's GPUs; GreenbenchError when it cannot be told."""
    if torch_uuid:
        for gpu in gpus:
            if _hex(gpu.uuid) == _hex(torch_uuid):
                return gpu
        raise GreenbenchError(f"xpu:{index}: Level Zero Sysman has no GPU with UUID {torch_uuid}")
    order = list(range(len(gpus)))
    if affinity_mask and affinity_mask.strip():
        entries = [e.strip() for e in affinity_mask.split(",") if e.strip()]
        if index < len(entries) and "." in entries[index]:
            raise GreenbenchError(
                f"xpu:{index} is sub-device {entries[index]} (ZE_AFFINITY_MASK): its card's "
                "counter would count the other stacks' work too"
            )
        try:
            order = [int(e.partition(".")[0]) for e in entries]
        except ValueError:
            raise GreenbenchError(
                f"ZE_AFFINITY_MASK={affinity_mask!r} is not a list of device numbers"
            ) from None
    if index >= len(order) or order[index] >= len(gpus):
        raise GreenbenchError(
            f"xpu:{index}: Level Zero Sysman sees {len(gpus)} GPU(s) "
            f"(ZE_AFFINITY_MASK={affinity_mask or 'unset'}); it cannot be matched"
        )
    return gpus[order[index]]


class LevelZeroMeter:
    """A CPU/RAM meter's windows with one GPU's Level Zero energy counter added."""

    def __init__(self, base: Meter, zes: Any, gpu: SysmanGpu) -> None:
        self.base, self.zes, self.gpu = base, zes, gpu
        self._start: tuple[int, int] | None = None

    def begin_window(self) -> None:
        self.base.begin_window()
        self._start = read_counter(self.zes, self.gpu.power)

    def end_window(self) -> Measurement:
        m = self.base.end_window()
        assert self._start is not None, "end_window without begin_window"
        energy_uj, timestamp_us = read_counter(self.zes, self.gpu.power)
        joules = ((energy_uj - self._start[0]) % COUNTER_RANGE) / 1e6
        invalid = m.invalid
        if timestamp_us <= self._start[1]:
            invalid = "the Level Zero energy counter's timestamp did not advance over the window"
        intensity = m.carbon_intensity_g_per_kwh
        return dataclasses.replace(
            m,
            energy_j={**m.energy_j, "gpu": joules},
            methods={**m.methods, "gpu": "level-zero-counter"},
            emissions_g=m.emissions_g + joules / KWH_TO_J * intensity,
            invalid=invalid,
        )

    def close(self) -> None:
        self.base.close()
