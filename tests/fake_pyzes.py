"""A fake `pyzes` module modelled on its ctypes API (pyzes 0.1.3) and the Level Zero Sysman
spec: two-call enumeration (count, then handles), structures filled through byref pointers,
ze_result_t return codes, power properties with a chained zes_power_ext_properties_t, and an
energy counter that is a monotonic uint64 in microjoules with a microsecond timestamp."""

from __future__ import annotations

import ctypes
from ctypes import c_char, c_int32, c_ubyte, c_uint8, c_uint32, c_uint64, c_void_p
from dataclasses import dataclass, field
from types import ModuleType

ZE_RESULT_SUCCESS = 0
ZE_RESULT_ERROR_UNSUPPORTED_FEATURE = 0x78000003


class zes_driver_handle_t(c_void_p):
    pass


class zes_device_handle_t(c_void_p):
    pass


class zes_pwr_handle_t(c_void_p):
    pass


class ze_device_uuid_t(ctypes.Structure):
    _fields_ = [("id", c_ubyte * 16)]


class ze_device_properties_t(ctypes.Structure):
    _fields_ = [
        ("stype", c_int32),
        ("pNext", c_void_p),
        ("type", c_int32),
        ("vendorId", c_uint32),
        ("deviceId", c_uint32),
        ("flags", c_uint32),
        ("uuid", ze_device_uuid_t),
        ("name", c_char * 256),
    ]


class zes_device_properties_t(ctypes.Structure):
    _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("core", ze_device_properties_t)]


class zes_power_properties_t(ctypes.Structure):
    _fields_ = [
        ("stype", c_int32),
        ("pNext", c_void_p),
        ("onSubdevice", c_uint8),
        ("subdeviceId", c_uint32),
    ]


class zes_power_ext_properties_t(ctypes.Structure):
    _fields_ = [("stype", c_int32), ("pNext", c_void_p), ("domain", c_int32)]


class zes_power_energy_counter_t(ctypes.Structure):
    _fields_ = [("energy", c_uint64), ("timestamp", c_uint64)]


@dataclass
class FakeDomain:
    domain: int  # ZES_POWER_DOMAIN_*: 1 card, 2 package, 3 stack, 5 gpu
    on_subdevice: bool = False
    energy_uj: int = 0
    timestamp_us: int = 0
    readable: bool = True
    knows_ext: bool = True  # whether the driver takes zes_power_ext_properties_t (1.4+)


@dataclass
class FakeGpu:
    name: str
    uuid: bytes  # 16 bytes
    integrated: bool = False
    domains: list[FakeDomain] = field(default_factory=list)
    device_type: int = 1  # ZE_DEVICE_TYPE_GPU


def _fill(array, items, handle_type, base: int) -> None:
    for i in range(len(items)):
        array[i] = handle_type(base + i)


def make_pyzes(gpus: list[FakeGpu], init_rc: int = ZE_RESULT_SUCCESS) -> ModuleType:
    """A module with pyzes's names, over these GPUs (one driver)."""
    zes = ModuleType("pyzes")
    for name, value in dict(globals()).items():
        if name.startswith(("zes_", "ze_")):
            setattr(zes, name, value)
    powers = {
        1000 + 100 * g + d: dom for g, gpu in enumerate(gpus) for d, dom in enumerate(gpu.domains)
    }

    def zesInit(flags):
        return init_rc

    def zesDriverGet(count, drivers):
        count._obj.value = 1
        if drivers is not None:
            drivers[0] = zes_driver_handle_t(1)
        return ZE_RESULT_SUCCESS

    def zesDeviceGet(driver, count, devices):
        count._obj.value = len(gpus)
        if devices is not None:
            _fill(devices, gpus, zes_device_handle_t, 10)
        return ZE_RESULT_SUCCESS

    def zesDeviceGetProperties(device, props):
        gpu = gpus[device.value - 10]
        core = props._obj.core
        core.type, core.flags = gpu.device_type, 1 if gpu.integrated else 0
        core.uuid.id[:] = list(gpu.uuid)
        core.name = gpu.name.encode()
        return ZE_RESULT_SUCCESS

    def zesDeviceEnumPowerDomains(device, count, handles):
        g = device.value - 10
        count._obj.value = len(gpus[g].domains)
        if handles is not None:
            _fill(handles, gpus[g].domains, zes_pwr_handle_t, 1000 + 100 * g)
        return ZE_RESULT_SUCCESS

    def zesPowerGetProperties(power, props):
        dom = powers[power.value]
        if props._obj.pNext and not dom.knows_ext:
            return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE
        props._obj.onSubdevice = int(dom.on_subdevice)
        if props._obj.pNext:
            ext = ctypes.cast(props._obj.pNext, ctypes.POINTER(zes_power_ext_properties_t))
            ext.contents.domain = dom.domain
        return ZE_RESULT_SUCCESS

    def zesPowerGetEnergyCounter(power, counter):
        dom = powers[power.value]
        if not dom.readable:
            return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE
        counter._obj.energy = dom.energy_uj % 2**64
        counter._obj.timestamp = dom.timestamp_us
        return ZE_RESULT_SUCCESS

    for fn in (
        zesInit,
        zesDriverGet,
        zesDeviceGet,
        zesDeviceGetProperties,
        zesDeviceEnumPowerDomains,
        zesPowerGetProperties,
        zesPowerGetEnergyCounter,
    ):
        setattr(zes, fn.__name__, fn)
    return zes
