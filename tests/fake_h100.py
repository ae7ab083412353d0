"""A fake H100 behind a fake pynvml, on simulated time: what a real GPU does, for tests.

Nothing here sleeps. `SimClock` is the machine's only clock: time moves when something calls
`clock.sleep(s)` (the protocol's idle wait, a workload step, the cooldown), in steps of
`clock.step_s` (1 ms); at every step each GPU on the clock runs its physics and every periodic
task that is due runs (`clock.every(0.1, sampler.sample_once)` stands in for the sampler thread).

The GPU's physics (`FakeH100`, defaults close to an H100 SXM):
- true power  P = idle_w + leakage_w_per_c * (T - resting_c) + load * dynamic_w
  (idle power rises with temperature: leakage);
- temperature dT/dt = (ambient_c + c_per_w * P - T) / tau_s: it follows load with a time
  constant, and `resting_c` is where it settles idle, at `idle_w`;
- `load` (0..1) is what the work puts on it: `gpu.run_load(seconds)` runs it at full load.

What the fake pynvml (`FakePynvml`) returns, as the driver does:
- nvmlDeviceGetTotalEnergyConsumption: mJ (int) of the true energy, plus a boot offset, but
  updated only every `counter_period_s` (100 ms): a read between updates gives the last one;
- nvmlDeviceGetPowerUsage: mW (int), the true power's 1 s moving average (Ampere and newer);
- nvmlDeviceGetFieldValues([NVML_FI_DEV_POWER_INSTANT]): mW, the true power now;
- utilization: % of the last 1 s under load; temperature: int °C; SM clock: `busy_mhz` while
  utilization > 0 (`throttle_mhz` above `throttle_c`), else `idle_mhz`;
- nvmlDeviceGetComputeRunningProcesses: `gpu.pids` (default: this test process);
- every device call before nvmlInit or after the last nvmlShutdown raises NVMLError.

Degraded cases, switched on a FakeH100 at any time:
- `mig=True`: the GPU is in MIG mode with instances (`gpu.mig_uuids`); torch, through
  `fake_torch_cuda`, reports the first instance's UUID (or the parent's: `torch_reports`);
- `frozen_counter=True`: the energy counter stops moving (some vGPUs and VMs);
- `gpu.fail_next_counter_read()`: the next counter read raises NVMLError (e.g. a window edge);
- `gpu.sensors_fail_until = t`: power, utilization, temperature and clock reads raise
  NVMLError until clock time t (a hole in the sampler's trace);
- `has_counter=False` / `has_instant_field=False`: a GPU without the counter, an older driver;
- `c2c=True`: a GH200 (nvmlDeviceGetC2cModeInfoV says C2C is on; NOT_SUPPORTED otherwise);
- `gpu.pids = [...]`: the PIDs NVML lists, e.g. host PIDs when greenbench runs in a container
  (build the container's /proc with `fake_proc`).

Power management, as NVML keeps it (mW; a set limit stays set until someone sets another, as
on a real GPU after the process that set it exits): `gpu.power_limit_mw` is the limit in force,
within `min_limit_mw..max_limit_mw` (H100 SXM: 200..700 W, default 700 W), and the true power
never exceeds it (the driver lowers clocks); every set is appended to `gpu.limits_set`.
- `power_limit_permission=False`: setting a limit raises NVML_ERROR_NO_PERMISSION (not root);
- `power_limit_supported=False`: setting or asking the constraints raises
  NVML_ERROR_NOT_SUPPORTED (some boards and vGPUs);
- a limit outside the constraints raises NVML_ERROR_INVALID_ARGUMENT.

Ground truth, for asserting greenbench's figures:
- `gpu.energy_j`: true energy since the clock started, in J (exact, no counter steps);
- `gpu.energy_between(t0, t1)`: true energy of an interval of clock time;
- `gpu.idle_w` is the resting idle power: a settled idle baseline should find it, and true
  net energy of an interval is `energy_between(t0, t1) - idle_w * (t1 - t0)`.

Use:
    clock = SimClock()
    gpu = FakeH100(clock)
    nvml = FakePynvml([gpu])
    gpu.run_load(30)                     # heat it: 30 s at full load (idle power is now higher)
    install(monkeypatch, nvml)           # greenbench's CUDA meter path reads this fake
    fake_torch_cuda(monkeypatch, nvml)   # and torch says cuda:0 is this GPU
"""

from __future__ import annotations

import functools
import os
import uuid as uuid_module
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conftest import FakeMeter

from greenbench.backends import cuda
from greenbench.energy import gpu_meter
from greenbench.energy.nvml import Cooldown, PowerSampler

INITIAL_PID_NAMESPACE = 4026531836  # the kernel's PROC_PID_INIT_INO


class SimClock:
    """Simulated time: moves only by sleep(); runs the GPUs' physics and the periodic tasks."""

    def __init__(self, step_s: float = 0.001) -> None:
        self.step_s = step_s
        self.steps = 0
        self._owed = 0.0  # asked-for time shorter than a step, carried to the next sleep
        self._gpus: list[FakeH100] = []
        self._tasks: dict[int, list[Any]] = {}  # id -> [period_steps, next_step, task]
        self._ids = 0

    @property
    def now(self) -> float:
        return self.steps * self.step_s

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self._owed += max(0.0, seconds)
        steps = int(self._owed / self.step_s + 1e-6)
        self._owed = max(0.0, self._owed - steps * self.step_s)
        for _ in range(steps):
            self._step()

    def every(self, period_s: float, task: Callable[[], object]) -> int:
        """Run `task` now and every `period_s` of clock time (a thread's loop); returns an id."""
        self._ids += 1
        period = max(1, round(period_s / self.step_s))
        self._tasks[self._ids] = [period, self.steps + period, task]
        task()
        return self._ids

    def cancel(self, task_id: int) -> None:
        self._tasks.pop(task_id, None)

    def _step(self) -> None:
        for gpu in self._gpus:
            gpu._physics(self.step_s)
        self.steps += 1
        for entry in list(self._tasks.values()):
            if self.steps >= entry[1]:
                entry[1] += entry[0]
                entry[2]()


def _uuid(seed: str) -> str:
    return str(uuid_module.uuid5(uuid_module.NAMESPACE_OID, seed))


class FakeH100:
    """One GPU's physics and its NVML-visible state; see the module's docstring."""

    def __init__(
        self,
        clock: SimClock,
        name: str = "NVIDIA H100 80GB HBM3",
        serial: str = "0",
        bus_id: str = "00000000:18:00.0",
        idle_w: float = 70.0,
        dynamic_w: float = 560.0,
        leakage_w_per_c: float = 0.6,
        ambient_c: float = 28.0,
        c_per_w: float = 0.07,
        tau_s: float = 20.0,
        counter_period_s: float = 0.1,
        average_s: float = 1.0,
        idle_mhz: float = 345.0,
        busy_mhz: float = 1980.0,
        throttle_c: float = 87.0,
        throttle_mhz: float = 1500.0,
        default_limit_w: float = 700.0,
        min_limit_w: float = 200.0,
    ) -> None:
        self.clock, self.name, self.bus_id = clock, name, bus_id
        self.uuid = f"GPU-{_uuid('gpu' + serial)}"
        self.mig_uuids = [f"MIG-{_uuid(f'mig{serial}/{i}')}" for i in range(2)]
        self.idle_w, self.dynamic_w, self.leakage_w_per_c = idle_w, dynamic_w, leakage_w_per_c
        self.ambient_c, self.c_per_w, self.tau_s = ambient_c, c_per_w, tau_s
        self.idle_mhz, self.busy_mhz = idle_mhz, busy_mhz
        self.throttle_c, self.throttle_mhz = throttle_c, throttle_mhz
        self.resting_c = ambient_c + c_per_w * idle_w  # where idle settles, drawing idle_w
        self.temperature_c = self.resting_c
        self.load = 0.0
        # switches for the degraded cases
        self.mig = False
        self.frozen_counter = False
        self.has_counter = True
        self.has_instant_field = True
        self.c2c = False  # a GH200: NVLink-C2C to a Grace CPU, NVML's figures cover the module
        self.pids: list[int] = [os.getpid()]  # greenbench's own process, computing on it
        self._fail_counter_reads = 0
        self.sensors_fail_until = -1.0  # power, utilization... reads fail until this clock time
        self.power_limit_permission = True
        self.power_limit_supported = True
        # power management, in mW as NVML has it
        self.default_limit_mw = self.max_limit_mw = int(default_limit_w * 1000)
        self.power_limit_mw = self.default_limit_mw
        self.min_limit_mw = int(min_limit_w * 1000)
        self.limits_set: list[int] = []
        # state
        self.energy_j = 0.0
        self._boot_mj = 86_400_000_000  # the counter counts from the driver's load
        self._counter_every = max(1, round(counter_period_s / clock.step_s))
        self._counter_mj = self._boot_mj
        window = max(1, round(average_s / clock.step_s))
        self._recent_j: deque[float] = deque([idle_w * clock.step_s] * window, maxlen=window)
        self._recent_load: deque[float] = deque([0.0] * window, maxlen=window)
        self._recent_sum_j, self._recent_sum_load = sum(self._recent_j), 0.0
        self._average_s = window * clock.step_s
        self._history = array("d", [0.0])  # energy_j at every step, for energy_between
        self._first_step = clock.steps
        clock._gpus.append(self)

    # physics
    @property
    def power_w(self) -> float:
        """True power now."""
        leakage = self.leakage_w_per_c * (self.temperature_c - self.resting_c)
        return min(self.idle_w + leakage + self.load * self.dynamic_w, self.power_limit_mw / 1000)

    def _physics(self, dt: float) -> None:
        power = self.power_w
        step_j = power * dt
        self.energy_j += step_j
        self.temperature_c += (
            (self.ambient_c + self.c_per_w * power - self.temperature_c) / (self.tau_s) * dt
        )
        self._recent_sum_j += step_j - self._recent_j[0]
        self._recent_j.append(step_j)
        self._recent_sum_load += self.load - self._recent_load[0]
        self._recent_load.append(self.load)
        self._history.append(self.energy_j)
        if (self.clock.steps + 1) % self._counter_every == 0 and not self.frozen_counter:
            self._counter_mj = self._boot_mj + int(self.energy_j * 1000)

    def run_load(self, seconds: float, load: float = 1.0) -> None:
        """Put the GPU under `load` for `seconds` of clock time (a workload step, or heating)."""
        before, self.load = self.load, load
        try:
            self.clock.sleep(seconds)
        finally:
            self.load = before

    def energy_between(self, t0: float, t1: float) -> float:
        """True energy in J between two clock times since this GPU was made."""

        def at(t: float) -> float:
            index = round(t / self.clock.step_s) - self._first_step
            return self._history[min(max(index, 0), len(self._history) - 1)]

        return at(t1) - at(t0)

    # what NVML reads
    def fail_next_counter_read(self, times: int = 1) -> None:
        self._fail_counter_reads += times

    def counter_mj(self) -> int:
        return self._counter_mj

    def average_power_mw(self) -> int:
        return int(self._recent_sum_j / self._average_s * 1000)

    def utilization_pct(self) -> int:
        return round(100 * self._recent_sum_load / len(self._recent_load))

    def sm_clock_mhz(self) -> float:
        if self.utilization_pct() == 0:
            return self.idle_mhz
        return self.throttle_mhz if self.temperature_c > self.throttle_c else self.busy_mhz


class FakeMigDevice:
    def __init__(self, parent: FakeH100, uuid: str) -> None:
        self.parent, self.uuid = parent, uuid


class FakePynvml:
    """pynvml's calls over FakeH100s (handles are the FakeH100 objects themselves)."""

    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_SUCCESS = 0
    NVML_DEVICE_MIG_ENABLE = 1
    NVML_ERROR_INVALID_ARGUMENT = 2
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4

    class NVMLError(Exception):
        """pynvml's: raised with a return code (`value`, and its text) or, here, a message."""

        TEXT = {2: "Invalid Argument", 3: "Not Supported", 4: "Insufficient Permissions"}

        def __init__(self, value: int | str) -> None:
            self.value = value if isinstance(value, int) else None
            super().__init__(self.TEXT.get(value, str(value)) if isinstance(value, int) else value)

    def __init__(self, gpus: Sequence[FakeH100]) -> None:
        self.gpus = list(gpus)
        self.clock = self.gpus[0].clock
        self.initialised = 0

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._ready()
        self.initialised -= 1

    def _ready(self) -> None:
        if self.initialised <= 0:
            raise self.NVMLError("Uninitialized")

    def _gpu(self, handle: Any) -> FakeH100:
        self._ready()
        if isinstance(handle, FakeMigDevice):
            raise self.NVMLError("Not Supported")  # a MIG instance has no power or energy
        return handle

    def _sensor(self, handle: Any) -> FakeH100:
        gpu = self._gpu(handle)
        if self.clock() < gpu.sensors_fail_until:
            raise self.NVMLError("Unknown Error")
        return gpu

    def nvmlDeviceGetCount(self) -> int:
        self._ready()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeH100:
        self._ready()
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        self._ready()
        return handle.uuid

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        return SimpleNamespace(busId=self._gpu(handle).bus_id.encode())

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        gpu = self._gpu(handle)
        mode = self.NVML_DEVICE_MIG_ENABLE if gpu.mig else 0
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        return 7 if self._gpu(handle).mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> FakeMigDevice:
        gpu = self._gpu(handle)
        if not gpu.mig or index >= len(gpu.mig_uuids):
            raise self.NVMLError("Not Found")
        return FakeMigDevice(gpu, gpu.mig_uuids[index])

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        gpu = self._gpu(handle)
        if not gpu.has_counter:
            raise self.NVMLError("Not Supported")
        if gpu._fail_counter_reads:
            gpu._fail_counter_reads -= 1
            raise self.NVMLError("Unknown Error")
        return gpu.counter_mj()

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return self._sensor(handle).average_power_mw()

    def nvmlDeviceGetFieldValues(self, handle: Any, fields: list[int]) -> list[Any]:
        gpu = self._sensor(handle)
        if fields != [self.NVML_FI_DEV_POWER_INSTANT] or not gpu.has_instant_field:
            raise self.NVMLError("Not Supported")
        value = SimpleNamespace(uiVal=int(gpu.power_w * 1000))
        return [SimpleNamespace(fieldId=fields[0], nvmlReturn=self.NVML_SUCCESS, value=value)]

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        gpu = self._sensor(handle)
        return SimpleNamespace(gpu=gpu.utilization_pct(), memory=0)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        return round(self._sensor(handle).temperature_c)

    def nvmlDeviceGetClockInfo(self, handle: Any, clock_type: int) -> int:
        return round(self._sensor(handle).sm_clock_mhz())

    def nvmlDeviceGetC2cModeInfoV(self, handle: Any) -> Any:
        if not self._gpu(handle).c2c:
            raise self.NVMLError("Not Supported")  # no C2C link: not a Grace Hopper
        return SimpleNamespace(isC2cEnabled=1)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        gpu = self._gpu(handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in gpu.pids]

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:
        return self._gpu(handle).power_limit_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        return self._gpu(handle).power_limit_mw

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: Any) -> int:
        return self._gpu(handle).default_limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: Any) -> list[int]:
        gpu = self._gpu(handle)
        if not gpu.power_limit_supported:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return [gpu.min_limit_mw, gpu.max_limit_mw]

    def nvmlDeviceSetPowerManagementLimit(self, handle: Any, limit_mw: int) -> None:
        gpu = self._gpu(handle)
        if not gpu.power_limit_supported:
            raise self.NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        if not gpu.power_limit_permission:
            raise self.NVMLError(self.NVML_ERROR_NO_PERMISSION)
        if not gpu.min_limit_mw <= limit_mw <= gpu.max_limit_mw:
            raise self.NVMLError(self.NVML_ERROR_INVALID_ARGUMENT)
        gpu.power_limit_mw = int(limit_mw)
        gpu.limits_set.append(int(limit_mw))


def install(
    monkeypatch: Any, nvml: FakePynvml, cpu_w: float = 40.0, ram_w: float = 6.0
) -> list[FakeMeter]:
    """Point greenbench's CUDA meter path (cuda.gpu_meter, gpu_meter.nvml_meter_for) at the
    fake: pynvml is `nvml`, the sampler thread and the cooldown run on its SimClock, and
    CodeCarbon's CPU/RAM meter is a constant-power fake on the same clock (it cancels out of
    net energy). Returns the CPU/RAM meters made, for inspection."""
    clock = nvml.clock
    made: list[FakeMeter] = []

    class SimSampler(PowerSampler):  # the 10 Hz thread, as a periodic task of the clock
        def __init__(self, nvml: Any, gpus: Any, **kwargs: Any) -> None:
            super().__init__(nvml, gpus, clock=clock, **kwargs)
            self._task: int | None = None

        def start(self) -> None:
            self._task = clock.every(self.period_s, self._loop_body)

        def _loop_body(self) -> None:  # one turn of PowerSampler.run
            try:
                getattr(self, "sample_safely", self.sample_once)()
            except Exception:  # noqa: BLE001 - what escapes ends a real thread: stop sampling
                self.stop()

        def stop(self) -> None:
            if self._task is not None:
                clock.cancel(self._task)

    def cpu_ram_meter(zone: Any, gpu_ids: Any = None, note: Any = None) -> FakeMeter:
        assert not gpu_ids, "the fake has no CodeCarbon GPU reading"
        meter = FakeMeter(
            clock, {"cpu": cpu_w, "ram": ram_w}, {"cpu": "rapl", "ram": "ram-estimate"}
        )
        made.append(meter)
        return meter

    monkeypatch.setattr(gpu_meter, "_pynvml", lambda: nvml)
    monkeypatch.setattr(gpu_meter, "PowerSampler", SimSampler)
    monkeypatch.setattr(
        gpu_meter, "Cooldown", functools.partial(Cooldown, sleep=clock.sleep, clock=clock)
    )
    monkeypatch.setattr(cuda, "CodeCarbonMeter", cpu_ram_meter)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return made


class TorchUuid:
    """What torch's device properties hold as `uuid`: printed bare, without GPU-/MIG-."""

    def __init__(self, nvml_uuid: str) -> None:
        self.text = nvml_uuid.split("-", 1)[1]

    def __str__(self) -> str:
        return self.text


def fake_torch_cuda(
    monkeypatch: Any, nvml: FakePynvml, used: Sequence[int] = (0,), torch_reports: str = "instance"
) -> None:
    """torch.cuda over the fake GPUs: cuda:i is NVML's GPU i (or, in MIG mode, its first
    instance, whose UUID torch reports; torch_reports="parent" reports the whole GPU's, as
    CUDA's legacy UUID query does); memory is reserved on the `used` devices."""
    import torch

    def properties(index: int) -> Any:
        gpu = nvml.gpus[index]
        shown = gpu.mig_uuids[0] if gpu.mig and torch_reports == "instance" else gpu.uuid
        return SimpleNamespace(name=gpu.name, major=9, minor=0, uuid=TorchUuid(shown))

    current = used[0] if used else 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: bool(used))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(nvml.gpus))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    monkeypatch.setattr(
        torch.cuda, "memory_reserved", lambda device=None: 2**30 if device in used else 0
    )
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)


def fake_proc(root: Path, nspid: Sequence[int], pid_namespace: int = INITIAL_PID_NAMESPACE) -> Path:
    """A /proc tree for this process: `self/status` with its PID in each namespace it can see
    (NSpid, outermost first) and `self/ns/pid` naming its PID namespace. A container's own
    /proc shows one NSpid entry and a namespace other than the initial one."""
    (root / "self" / "ns").mkdir(parents=True, exist_ok=True)
    pids = "\t".join(str(p) for p in nspid)
    (root / "self" / "status").write_text(f"Name:\tpython\nPid:\t{nspid[-1]}\nNSpid:\t{pids}\n")
    link = root / "self" / "ns" / "pid"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(f"pid:[{pid_namespace}]")
    return root
