"""`cuda` devices, whoever made them: torch's CUDA device type is NVIDIA's discrete GPUs and the
GH200 (cuda.py, NVML), NVIDIA's Jetson boards (jetson.py, power rails), and AMD GPUs under a
ROCm build of torch (rocm.py, AMD SMI). One registry entry takes the `cuda` strings; the member
that measures them is chosen where torch is loaded anyway (availability, the cell's meter,
`greenbench devices`), so parsing a suite's device names loads no torch.
"""

from __future__ import annotations

from greenbench.backends import cuda, jetson, rocm
from greenbench.backends.base import DeviceInfo, Emit
from greenbench.backends.cuda import CudaBackend
from greenbench.carbon.zones import Zone
from greenbench.energy.meter import Meter
from greenbench.variants import Variant

GH200_ROW = DeviceInfo(
    "cuda",
    False,
    "NVIDIA GH200 Grace Hopper",
    "nvml-module-counter (NVML's counter of the whole module; CPU and RAM not added): needs "
    "the NVIDIA driver and a CUDA torch",
)


class CudaFamily(CudaBackend):
    """Delegates what differs between the members to the one this machine has."""

    def __init__(
        self,
        nvidia: CudaBackend = cuda.BACKEND,
        amd: rocm.RocmBackend = rocm.BACKEND,
        jetson_board: jetson.JetsonBackend = jetson.BACKEND,
    ) -> None:
        self.nvidia, self.amd, self.jetson = nvidia, amd, jetson_board

    def member(self) -> CudaBackend:
        """AMD when torch is a ROCm build, Jetson on an L4T board, else NVIDIA through NVML."""
        if rocm.is_rocm_torch():
            return self.amd
        if self.jetson.detect():
            return self.jetson
        return self.nvidia

    def check_available(self, device: str) -> None:
        self.member().check_available(device)

    def device_skip_reason(self, variant: Variant, device: str) -> str | None:
        return self.member().device_skip_reason(variant, device)

    def make_meter(self, device: str, zone: Zone, emit: Emit) -> Meter:
        return self.member().make_meter(device, zone, emit)

    def device_rows(self) -> list[DeviceInfo]:
        """This machine's CUDA devices as its member measures them, then a row for each other
        family: how it is measured, what it needs."""
        member = self.member()
        rows = member.device_rows()
        if member is not self.amd:
            rows.append(self.amd.family_row())
        if member is not self.jetson:
            rows.append(self.jetson.family_row())
        if not any(r.method.startswith("nvml-module") for r in rows):
            rows.append(GH200_ROW)
        if member is not self.nvidia:
            rows.append(nvidia_row())
        return rows


def nvidia_row() -> DeviceInfo:
    return DeviceInfo(
        "cuda",
        False,
        "NVIDIA GPU",
        "nvml-counter (NVML, GPU found by UUID): needs a CUDA build of torch and the driver",
    )


BACKEND = CudaFamily()
