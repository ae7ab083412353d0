"""Apple GPUs through torch's MPS backend, measured by IOReport without sudo
(zeus-apple-silicon, `greenbench[apple]`), else powermetrics with passwordless sudo
(energy/apple.py)."""

from __future__ import annotations

from greenbench.backends.base import DeviceInfo, Emit
from greenbench.backends.torch_device import TorchAccelerator
from greenbench.carbon.zones import Zone
from greenbench.energy import apple
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError


def _available(device: str) -> None:
    import torch

    if not torch.backends.mps.is_available():
        raise GreenbenchError(
            f"device '{device}' is not available: MPS needs Apple silicon and macOS 12.3+"
        )


def _synchronize(device: str) -> None:
    import torch

    torch.mps.synchronize()


class MpsBackend(TorchAccelerator):
    def __init__(self) -> None:
        super().__init__("mps", "Apple GPU", _available, _synchronize)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return apple.apple_meter(zone)

    def device_rows(self) -> list[DeviceInfo]:
        try:
            _available("mps")
        except GreenbenchError as e:
            reason = str(e).split(": ", 1)[-1]
            method = f"{reason}; energy there: {apple.INSTALL} (IOReport, no sudo)"
            return [DeviceInfo("mps", False, self.name, method)]
        return [DeviceInfo("mps", True, self.name, apple.apple_method())]


BACKEND = MpsBackend()
