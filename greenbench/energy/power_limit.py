"""A GPU power limit for one cell: set through NVML before it, restored on every way out.

NVML keeps a set limit after the process that set it exits, so the process that starts the
cell's child (the local executor, or a Ray worker) sets it and restores the original in a
`finally`: after the child succeeds, raises, times out or is killed (SIGKILL included). A
SIGTERM to that process raises `Terminated` while a limit is set (when nothing else handles
SIGTERM), so the `finally` runs then too. A SIGKILL of that process itself cannot be caught:
the original limit is written to a state file before the new one is set, and the next
greenbench run (or `greenbench devices`, or the next power-limited cell on that machine)
restores it once the process that wrote it is gone.

All NVML calls go through an injected module (pynvml, or tests/fake_h100.py's fake).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from greenbench.backends.cuda import device_index
from greenbench.energy import gpu_meter
from greenbench.errors import GreenbenchError, GreenbenchWarning, one_line
from greenbench.records import Record

STATE_DIR_ENV = "GREENBENCH_STATE_DIR"
NO_PERMISSION_FIX = (
    "setting a GPU power limit needs root: run greenbench as root "
    '(sudo -E env "PATH=$PATH" greenbench run ...), or run without power_limit_w / --power-limit'
)


class PowerLimitSkip(Exception):
    """The cell's power limit cannot be set here; the message is why, with the fix."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a GPU power limit was set: raised so it is restored on the way
    out; the run stops as after Ctrl-C (what finished is saved, `--resume` finishes it)."""


def is_cuda(device: str) -> bool:
    return device == "cuda" or device.startswith("cuda:")


def watts(milliwatts: float) -> int | float:
    """NVML's mW as W, whole where it is (a record's 300, not 300.0)."""
    value = milliwatts / 1000
    return int(value) if float(value).is_integer() else value


@dataclass
class PowerLimit:
    """The limit a cell ran under, as NVML read it back."""

    device: str
    uuid: str
    original_mw: int  # restored afterwards
    default_w: float | None
    in_force_w: float | None = None  # read back right after setting it
    at_end_w: float | None = None  # read back before restoring: another process may set one

    @property
    def original_w(self) -> float:
        return watts(self.original_mw)

    def changed(self) -> str | None:
        """Why the records cannot be trusted to have run under the limit, if they cannot."""
        if None in (self.at_end_w, self.in_force_w) or self.at_end_w == self.in_force_w:
            return None
        return (
            f"the GPU's power limit changed from {self.in_force_w:g} W to {self.at_end_w:g} W "
            "during the cell (another process set it): rerun the cell"
        )


def with_power_limit(records: list[Record], limit: PowerLimit | None) -> list[Record]:
    """The cell's measured rows with the limit in force (and an invalid verdict if it moved)."""
    if limit is None:
        return records
    reason = limit.changed()
    for record in records:
        if record.get("status") != "ok":
            continue
        record["power_limit_w"] = limit.in_force_w
        record["power_limit_default_w"] = limit.default_w
        if reason:
            record["valid"] = False
            record["validity"] = "; ".join(r for r in (record.get("validity"), reason) if r)
    return records


# the state file: GPU UUID -> what to restore, and which process set it


def state_path() -> Path:
    """This machine's state file ($GREENBENCH_STATE_DIR, else $XDG_STATE_HOME/greenbench)."""
    base = os.environ.get(STATE_DIR_ENV)
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        base = str(Path(xdg) / "greenbench")
    return Path(base) / f"power-limits-{socket.gethostname()}.json"


@contextlib.contextmanager
def _state(path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """The state's entries, locked against other greenbench processes; written back if changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise GreenbenchError(
                    f"{path}: cannot read greenbench's record of the GPU power limits it set "
                    f"({one_line(e)}); check `nvidia-smi -q -d POWER` and remove the file"
                ) from None
        before = json.dumps(entries, sort_keys=True)
        yield entries
        if json.dumps(entries, sort_keys=True) == before:
            return
        if not entries:
            path.unlink(missing_ok=True)
            return
        written = path.with_name(path.name + ".tmp")
        written.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(written, path)


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def _alive(entry: Mapping[str, Any]) -> bool:
    """The process that wrote the entry still runs (a reused PID started later is not it)."""
    try:
        started = psutil.Process(int(entry["pid"])).create_time()
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False
    return bool(abs(started - float(entry.get("started", 0))) < 1.0)


# restoring what a killed process left


def restore_left_limits(nvml: Any | None = None, path: Path | None = None) -> int:
    """Restore the limits a killed greenbench process left set on this machine's GPUs; each
    restore, or why not, is a GreenbenchWarning. Returns how many were restored. Without a
    state file this touches neither NVML nor pynvml."""
    path = path or state_path()
    if not path.exists():
        return 0
    try:
        nvml = gpu_meter._pynvml() if nvml is None else nvml
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no NVML now: try again next time
        warnings.warn(
            GreenbenchWarning(
                f"GPU power limits a killed greenbench run set ({path}) cannot be restored "
                f"now: NVML cannot be read ({one_line(e)})"
            ),
            stacklevel=2,
        )
        return 0
    try:
        return _restore_left(nvml, path)
    except GreenbenchError as e:  # an unreadable state file: said, without stopping a run
        warnings.warn(GreenbenchWarning(str(e)), stacklevel=2)
        return 0
    except nvml.NVMLError as e:
        warnings.warn(
            GreenbenchWarning(
                f"GPU power limits a killed greenbench run set ({path}) cannot be restored "
                f"now ({one_line(e)}); the next run tries again"
            ),
            stacklevel=2,
        )
        return 0
    finally:
        nvml.nvmlShutdown()


def _restore_left(nvml: Any, path: Path) -> int:
    restored = 0
    with _state(path) as entries:
        handles = _handles_by_uuid(nvml)
        for uuid, entry in list(entries.items()):
            if _alive(entry):
                continue  # a running cell's limit: its own process restores it
            message, done = _restore_entry(nvml, handles.get(uuid), uuid, entry)
            if done:
                del entries[uuid]
                restored += message.startswith("restored")
            warnings.warn(GreenbenchWarning(message), stacklevel=3)
    return restored


def _handles_by_uuid(nvml: Any) -> dict[str, Any]:
    handles = {}
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        handles[uuid.decode() if isinstance(uuid, bytes) else str(uuid)] = handle
    return handles


def _restore_entry(nvml: Any, handle: Any, uuid: str, entry: Mapping[str, Any]) -> tuple[str, bool]:
    """What was done with one left entry, and whether the entry is finished with."""
    original, set_mw = int(entry["original_mw"]), int(entry["set_mw"])
    left = f"GPU {uuid}: a greenbench process (pid {entry.get('pid')}) that was killed"
    if handle is None:
        return f"{left} set its power limit, but NVML no longer lists that GPU; forgotten", True
    try:
        now = int(nvml.nvmlDeviceGetPowerManagementLimit(handle))
        if now == original:
            return f"{left} had set its power limit; it is back at {watts(original)} W", True
        if now != set_mw:
            return (
                f"{left} had set its power limit to {watts(set_mw)} W, but it is now "
                f"{watts(now)} W (set since by something else): left as it is, not restored to "
                f"{watts(original)} W",
                True,
            )
        nvml.nvmlDeviceSetPowerManagementLimit(handle, original)
    except nvml.NVMLError as e:
        return (
            f"{left} left its power limit at {watts(set_mw)} W and it cannot be restored "
            f"({one_line(e)}): restore it with `sudo nvidia-smi -i {uuid} -pl "
            f"{watts(original)}`, or rerun greenbench as root",
            False,
        )
    return (
        f"restored the power limit of GPU {uuid} to {watts(original)} W: a greenbench process "
        f"(pid {entry.get('pid')}) that was killed had left it at {watts(set_mw)} W"
    ), True


# before a run: the requested limits against each GPU's constraints


def check_limits(devices: Sequence[str], limits_w: Sequence[int], nvml: Any | None = None) -> None:
    """GreenbenchError naming the allowed range when a limit is outside what a CUDA device
    allows. A GPU whose constraints cannot be read is left to its cells (skipped, with why)."""
    cuda = [d for d in devices if is_cuda(d)]
    if not (cuda and limits_w):
        return
    try:
        nvml = gpu_meter._pynvml() if nvml is None else nvml
        nvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no NVML here: each cell says why it is skipped
        return
    try:
        for device in cuda:
            try:
                gpu = gpu_meter.find_gpu(device_index(device), nvml)
                low, high = nvml.nvmlDeviceGetPowerManagementLimitConstraints(gpu.handle)
            except (GreenbenchError, nvml.NVMLError):
                continue
            outside = [w for w in limits_w if not low <= w * 1000 <= high]
            if outside:
                raise GreenbenchError(
                    f"power_limit_w: {', '.join(f'{w} W' for w in outside)} is outside what "
                    f"{device} ({gpu.name}) allows, {watts(low)}..{watts(high)} W; pick limits "
                    "in that range"
                )
    finally:
        nvml.nvmlShutdown()


# around a cell


@contextlib.contextmanager
def cell_power_limit(
    device: str, limit_w: int | None, nvml: Any | None = None, path: Path | None = None
) -> Iterator[PowerLimit | None]:
    """Run the block with `device`'s power limit at `limit_w` W, then restore the original.

    Raises PowerLimitSkip (before the block runs) when the limit cannot be set: no privilege,
    a board that does not support it, a limit outside its range, another greenbench process
    holding this GPU's limit. Without a limit the block runs as it is.
    """
    if limit_w is None:
        yield None
        return
    if nvml is None:
        from greenbench.backends.rocm import is_rocm_torch  # torch: only when a limit is set

        if is_rocm_torch():  # AMD GPUs: never NVML
            raise PowerLimitSkip(
                f"{device}: GPU power limits are set through NVML (NVIDIA GPUs) and this torch "
                "is a ROCm build (AMD GPU): run without power_limit_w / --power-limit, or set "
                "the limit with amd-smi beforehand"
            )
    path = path or state_path()
    try:
        nvml = gpu_meter._pynvml() if nvml is None else nvml
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no NVML: the limit cannot be set
        raise PowerLimitSkip(
            f"{device}: NVML cannot be read ({one_line(e)}), so its power limit cannot be "
            "set; check the NVIDIA driver (nvidia-smi)"
        ) from None
    try:
        limit, handle = _prepare(nvml, device, limit_w, path)
        guard = _SigtermRaises()
        with guard:
            try:
                limit.in_force_w = _read_back(nvml, handle, limit)
                yield limit
            finally:
                guard.defer()  # a SIGTERM now waits until the limit is restored
                _restore(nvml, handle, limit, path)
    finally:
        nvml.nvmlShutdown()


def _prepare(nvml: Any, device: str, limit_w: int, path: Path) -> tuple[PowerLimit, Any]:
    """What a killed greenbench left restored, then the cell's limit set."""
    try:
        try:
            _restore_left(nvml, path)
        except nvml.NVMLError as e:  # the cell's own GPU is looked at again in _set
            warnings.warn(GreenbenchWarning(f"left power limits not restored: {e}"), stacklevel=4)
        return _set(nvml, device, limit_w, path)
    except GreenbenchError as e:  # an unreadable state file: the cell cannot be made safe
        raise PowerLimitSkip(str(e)) from None


def _read_back(nvml: Any, handle: Any, limit: PowerLimit) -> float:
    """The limit in force, as the records carry it; PowerLimitSkip when NVML cannot say."""
    try:
        return watts(nvml.nvmlDeviceGetPowerManagementLimit(handle))
    except nvml.NVMLError as e:
        raise PowerLimitSkip(
            f"{limit.device} ({limit.uuid}): its power limit was set but cannot be read back "
            f"({one_line(e)}), so the cell could not record it"
        ) from None


def _set(nvml: Any, device: str, limit_w: int, path: Path) -> tuple[PowerLimit, Any]:
    try:
        gpu = gpu_meter.find_gpu(device_index(device), nvml)
    except GreenbenchError as e:
        raise PowerLimitSkip(str(e)) from None
    except nvml.NVMLError as e:
        raise PowerLimitSkip(f"{device}: NVML cannot list the GPUs ({one_line(e)})") from None
    what = f"{device} ({gpu.name}, {gpu.uuid})"
    with _state(path) as entries:
        held = entries.get(gpu.uuid)
        if held is not None:
            raise PowerLimitSkip(_held(held, gpu.uuid, what))
        try:
            low, high = nvml.nvmlDeviceGetPowerManagementLimitConstraints(gpu.handle)
            original = int(nvml.nvmlDeviceGetPowerManagementLimit(gpu.handle))
        except nvml.NVMLError as e:
            raise PowerLimitSkip(_refused(nvml, e, what)) from None
        if not low <= limit_w * 1000 <= high:
            raise PowerLimitSkip(
                f"power_limit_w = {limit_w}: {what} allows {watts(low)}..{watts(high)} W; "
                "pick a limit in that range"
            )
        try:
            default: float | None = watts(nvml.nvmlDeviceGetPowerManagementDefaultLimit(gpu.handle))
        except nvml.NVMLError:
            default = None
        # on disk before the limit is set: a SIGKILL between the two leaves it restorable
        entries[gpu.uuid] = {
            "device": device,
            "original_mw": original,
            "set_mw": limit_w * 1000,
            **_this_process(),
        }
    try:
        nvml.nvmlDeviceSetPowerManagementLimit(gpu.handle, limit_w * 1000)
    except nvml.NVMLError as e:
        with _state(path) as entries:
            entries.pop(gpu.uuid, None)
        raise PowerLimitSkip(_refused(nvml, e, what)) from None
    return PowerLimit(device, gpu.uuid, original, default), gpu.handle


def _held(entry: Mapping[str, Any], uuid: str, what: str) -> str:
    if _alive(entry):
        return (
            f"another greenbench process (pid {entry.get('pid')}) has set {what}'s power "
            "limit for its cell: run one power-limited run per GPU at a time"
        )
    return (
        f"{what} still has the power limit a killed greenbench process set, and it could not be "
        f"restored: restore it with `sudo nvidia-smi -i {uuid} -pl "
        f"{watts(entry['original_mw'])}` and rerun as root"
    )


def _refused(nvml: Any, error: Exception, what: str) -> str:
    """Why NVML would not set the limit, and the fix."""
    code = getattr(error, "value", None)
    if code == getattr(nvml, "NVML_ERROR_NO_PERMISSION", 4):
        return f"{what}: {NO_PERMISSION_FIX} (NVML: {error})"
    if code == getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3):
        return (
            f"{what} does not let its power limit be set (NVML: {error}); run without "
            "power_limit_w / --power-limit on it"
        )
    return f"{what}: NVML would not set its power limit ({one_line(error)})"


def _restore(nvml: Any, handle: Any, limit: PowerLimit, path: Path) -> None:
    """Back to the original limit; if NVML refuses, the state entry stays for the next run."""
    try:
        limit.at_end_w = watts(nvml.nvmlDeviceGetPowerManagementLimit(handle))
        nvml.nvmlDeviceSetPowerManagementLimit(handle, limit.original_mw)
    except Exception as e:  # noqa: BLE001 - never lose the cell's records to a failed restore
        warnings.warn(
            GreenbenchWarning(
                f"{limit.device} ({limit.uuid}): its power limit could not be restored to "
                f"{limit.original_w:g} W ({one_line(e)}); restore it with `sudo nvidia-smi -i "
                f"{limit.uuid} -pl {limit.original_w:g}` (the next greenbench run tries again)"
            ),
            stacklevel=4,
        )
        return
    with _state(path) as entries:
        entries.pop(limit.uuid, None)


class _SigtermRaises:
    """While entered, SIGTERM raises Terminated (only where nothing else handles it, in the
    main thread); after `defer()` one that arrives waits until the block has ended."""

    def __init__(self) -> None:
        self.installed = self.deferring = self.pending = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.deferring:
            self.pending = True
            return
        raise Terminated("SIGTERM: the GPU's power limit is restored and the run stops")

    def __enter__(self) -> _SigtermRaises:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        return self

    def defer(self) -> None:
        self.deferring = True

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.pending:
            raise Terminated("SIGTERM: the GPU's power limit was restored and the run stops")
