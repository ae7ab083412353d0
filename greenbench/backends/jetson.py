"""NVIDIA Jetson: torch's CUDA on an L4T board, whose GPU shares the SoC and has no NVML energy
counter; the board's INA3221 power rails measure it (energy/jetson.py)."""

from __future__ import annotations

from pathlib import Path

from greenbench.backends.base import DeviceInfo, Emit
from greenbench.backends.cuda import CudaBackend
from greenbench.carbon.zones import Zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.jetson import find_rails, is_jetson, jetson_meter, plan_rails
from greenbench.energy.meter import Meter
from greenbench.errors import GreenbenchError

WHAT = "NVIDIA Jetson"


class JetsonBackend(CudaBackend):
    name = "CUDA (Jetson)"

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root  # where /sys, /etc and /proc are (a fake tree in tests)

    def detect(self) -> bool:
        return is_jetson(self.root)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        base = CodeCarbonMeter(zone)
        try:
            return jetson_meter(base, self.root)
        except BaseException:
            base.close()
            raise

    def device_rows(self) -> list[DeviceInfo]:
        import torch

        present = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if present else WHAT
        try:
            method = "jetson-rails: " + plan_rails(find_rails(self.root)).describe()
        except GreenbenchError as e:
            method = f"cannot be measured: {e}"
        return [DeviceInfo("cuda:0" if present else "cuda", present, name, method)]

    def family_row(self) -> DeviceInfo:
        return DeviceInfo(
            "cuda",
            False,
            WHAT,
            "jetson-rails (the board's INA3221 power rails); needs a Jetson with JetPack's "
            "torch, nothing to pip install",
        )


BACKEND = JetsonBackend()
