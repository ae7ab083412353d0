"""On a CUDA GPU: greenbench's GPU energy for fixed windows against a direct NVML counter read.

The meter is the one a cell gets (the CUDA backend's `make_meter`: NVML found by UUID,
CodeCarbon for CPU and RAM). Around each of its windows this script reads NVML's total-energy
counter itself, through its own handle (nvmlDeviceGetHandleByUUID on torch's UUID), and
reports the gap, the power trace's integral as a second estimate, and the CV of greenbench's
energy over windows.
Loads: `matmul` (bf16 8192^3 products back to back: near full power) and `idle`.

    python benchmarks/nvml_check.py [--device cuda:0] [--seconds 10] [--windows 5]
        [--load matmul --load idle] [--tolerance 2] [--json nvml_check.json]

Exit code 0 when every window is within the tolerance (in %), 1 when one is not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable

import torch

from greenbench.backends import backend_for
from greenbench.backends.cuda import device_index
from greenbench.carbon.zones import resolve_zone
from greenbench.energy.crosscheck import CheckSummary, WindowCheck, check_window, summarise
from greenbench.energy.gpu_meter import torch_uuid_of


def matmul_load(device: str) -> Callable[[float], None]:
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)

    def run(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(8):  # 1.1 TFLOP each (~1.4 ms on an H100): check the clock rarely
                torch.matmul(a, b)
            torch.cuda.synchronize(device)

    run(2.0)  # warm: clocks up, kernels chosen
    return run


def direct_counter(device: str) -> Callable[[], float]:
    """A reader of the GPU's total-energy counter in J, independent of greenbench's mapping."""
    import pynvml

    pynvml.nvmlInit()
    uuid = torch_uuid_of(device_index(device))
    if not uuid:
        sys.exit(f"{device}: torch gives no UUID for it; this check needs one")
    text = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    handle = pynvml.nvmlDeviceGetHandleByUUID(text)
    return lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000  # mJ -> J


def print_table(title: str, checks: list[WindowCheck], summary: CheckSummary) -> None:
    print(f"\n{title}")
    print("  window  seconds  mean W  greenbench J  method        direct J  diff %  trace J")
    for i, c in enumerate(checks, 1):
        print(
            f"  {i:>6}  {c.seconds:7.3f}  {c.mean_power_w:6.1f}  {c.greenbench_j:12.2f}"
            f"  {c.method:<12}  {c.direct_j:8.2f}  {100 * c.difference:+6.3f}  {c.trace_j:7.2f}"
        )
    print(
        f"  max |diff| {100 * summary.max_abs_difference:.3f} % "
        f"(tolerance {100 * summary.tolerance:g} %: {'pass' if summary.passed else 'FAIL'}), "
        f"CV of greenbench's energy {100 * summary.energy_cv:.2f} %, "
        f"power trace vs counter {100 * summary.trace_vs_direct:+.2f} %"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--load", action="append", choices=["matmul", "idle"])
    parser.add_argument("--tolerance", type=float, default=2.0, help="in %%")
    parser.add_argument("--zone", default="US")
    parser.add_argument("--json", help="write every window and the summaries here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: run this on a machine with one")

    device = args.device if ":" in args.device else f"{args.device}:0"
    backend = backend_for(device)
    meter = backend.make_meter(device, resolve_zone(args.zone), lambda event: print(event["stage"]))
    read = direct_counter(device)
    loads = {"matmul": lambda: matmul_load(device), "idle": lambda: time.sleep}
    print(f"{torch.cuda.get_device_name(device)}, driver via NVML; meter {type(meter).__name__}")
    report, passed = {"device": device, "gpu": torch.cuda.get_device_name(device)}, True
    try:
        for name in args.load or ["matmul", "idle"]:
            load = loads[name]()
            checks = [
                check_window(meter, read, load, args.seconds, lambda: backend.synchronize(device))
                for _ in range(args.windows)
            ]
            summary = summarise(checks, args.tolerance / 100)
            passed &= summary.passed
            print_table(f"{name}: {args.windows} windows of {args.seconds:g} s", checks, summary)
            report[name] = {
                "windows": [dataclasses.asdict(c) for c in checks],
                "summary": dataclasses.asdict(summary) | {"passed": summary.passed},
            }
    finally:
        meter.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
