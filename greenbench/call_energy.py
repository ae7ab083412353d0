"""Energy per call of a Python function, measured with greenbench's protocol and meter.

The pytest plugin uses it: an idle baseline, a warmup call, then windows of repeated calls
until each window lasts `min_window_s`; J per call is net of idle, with a 95% CI over windows.
A function that ran on CUDA GPUs (torch says which: `cuda_devices_used`) gets their energy too.
Its results travel in pytest-benchmark's `extra_info`, so they are flat JSON values under
`energy_*` keys.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from greenbench.check import verdicts
from greenbench.energy.meter import KWH_TO_J, Meter
from greenbench.protocol import Phase, ProtocolResult, ProtocolSettings, run_protocol
from greenbench.records import COLUMNS, Record, WindowFacts, build_record, window_figures
from greenbench.stats import Ratio, Summary, idle_error, ratio, summarize

PREFIX = "energy_"


@dataclass(frozen=True)
class CallEnergy:
    """Net J per call over the measured windows, and how it was measured."""

    per_call: Summary
    methods: Mapping[str, str]  # component -> method label, measured components only
    estimated: bool
    idle_power_w: float
    carbon_intensity_g_per_kwh: float
    carbon_source: str | None
    zone: str
    windows: list[dict[str, float | None]]  # per window: calls, duration_s, energy_j, ...
    # greenbench check's verdict on the benchmark's windows, by the rules cells are judged by
    validity: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.validity

    @property
    def g_co2e_per_call(self) -> float:
        return self.per_call.mean / KWH_TO_J * self.carbon_intensity_g_per_kwh

    def extra_info(self) -> dict[str, Any]:
        """The flat `energy_*` fields stored in pytest-benchmark's extra_info."""
        s = self.per_call
        return {
            f"{PREFIX}j_per_call": s.mean,
            f"{PREFIX}j_per_call_ci95": _json_number(s.ci95),
            f"{PREFIX}j_per_call_std": _json_number(s.std),
            f"{PREFIX}j_per_call_idle_se": _json_number(s.idle_se),
            f"{PREFIX}j_per_call_idle_df": _json_number(s.idle_df),
            f"{PREFIX}n": s.n,
            f"{PREFIX}methods": " ".join(f"{c}:{m}" for c, m in sorted(self.methods.items())),
            f"{PREFIX}estimated": self.estimated,
            f"{PREFIX}idle_power_w": self.idle_power_w,
            f"{PREFIX}gco2e_per_call": self.g_co2e_per_call,
            f"{PREFIX}carbon_intensity_g_per_kwh": self.carbon_intensity_g_per_kwh,
            f"{PREFIX}carbon_source": self.carbon_source,
            f"{PREFIX}zone": self.zone,
            f"{PREFIX}windows": self.windows,
            f"{PREFIX}valid": self.valid,
            f"{PREFIX}validity": list(self.validity),
        }


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _no_sync() -> None:
    return None


def measure_calls(
    call: Callable[[], object],
    meter: Meter,
    settings: ProtocolSettings,
    zone: str,
    sync: Callable[[], None] = _no_sync,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> CallEnergy:
    """Run `call` under the protocol and summarise its net energy per call; `sync` waits for
    queued device work (cuda_sync), so every window holds the work it timed."""
    phases = [Phase("call", "call", 1, call)]
    result = run_protocol(phases, meter, settings, sync=sync, clock=clock, sleep=sleep)
    return summarize_calls(result, zone)


def cuda_devices_used() -> list[int]:
    """torch's indices of the GPUs the benchmarked function ran on: those its allocator holds
    memory on, else the current device. Empty when torch was never imported (it is not
    imported here), has no CUDA, or created no CUDA context in this process."""
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    cuda = torch.cuda
    try:
        if not cuda.is_available() or not cuda.is_initialized():
            return []
        used = [i for i in range(cuda.device_count()) if cuda.memory_reserved(i) > 0]
        return used or [cuda.current_device()]
    except Exception:  # noqa: BLE001 - a torch whose CUDA does not work: no GPU ran the function
        return []


def cuda_sync(devices: Sequence[int]) -> Callable[[], None]:
    """Waits for the work queued on these CUDA devices (none: nothing to wait for)."""

    def sync() -> None:
        for device in devices:
            sys.modules["torch"].cuda.synchronize(device)

    return sync


def summarize_calls(result: ProtocolResult, zone: str) -> CallEnergy:
    facts = [WindowFacts.of(w, result.idle) for w in result.windows]
    figures = [window_figures(f) for f in facts]
    windows = [
        {
            "calls": f["calls"],
            "duration_s": f["duration_s"],
            "energy_j": f["energy_j"],
            "net_energy_j": f["net_energy_j"],
            "j_per_call": f["energy_per_call_j"],
        }
        for f in figures
    ]
    last = facts[-1]
    # as in run summaries, an invalid window cannot pull the mean; with none valid, the
    # verdict says so and the mean of them all is kept for the record
    used = [f for f in figures if f["valid"]] or figures
    return CallEnergy(
        validity=_verdict(figures),
        per_call=summarize(
            [f["energy_per_call_j"] for f in used], *idle_error(pd.DataFrame(used), per="calls")
        ),
        methods={c: last.methods[c] for c in last.measured_components()},
        estimated=bool(figures[-1]["estimated"]),
        idle_power_w=last.idle_power_w,
        carbon_intensity_g_per_kwh=last.carbon_intensity_g_per_kwh,
        carbon_source=last.carbon_source,
        zone=zone,
        windows=windows,
    )


def _verdict(figures: list[Record]) -> tuple[str, ...]:
    """greenbench check's reasons against the windows, judged as the windows of one cell."""
    rows = [
        build_record({"run_id": "", "cell_id": "", "phase": "call", "repetition": i}, f)
        for i, f in enumerate(figures, start=1)
    ]
    (verdict,) = verdicts(pd.DataFrame(rows, columns=COLUMNS))
    return verdict.reasons


def invalid_reasons(info: Mapping[str, Any]) -> list[str] | None:
    """Why a benchmark's energy is invalid, or None when it is valid (or from before the
    verdict was stored)."""
    if info.get(f"{PREFIX}valid", True) is not False:
        return None
    return list(info.get(f"{PREFIX}validity") or ["invalid"])


def summary_from_extra_info(info: Mapping[str, Any]) -> Summary | None:
    """The J/call Summary back from extra_info, or None when it has no energy fields."""
    if f"{PREFIX}j_per_call" not in info:
        return None
    mean = float(info[f"{PREFIX}j_per_call"])
    n = int(info.get(f"{PREFIX}n", 1))
    std = info.get(f"{PREFIX}j_per_call_std")
    ci95 = info.get(f"{PREFIX}j_per_call_ci95")
    std = math.nan if std is None else float(std)
    idle_se, idle_df = (
        info.get(f"{PREFIX}j_per_call_idle_se"),
        info.get(f"{PREFIX}j_per_call_idle_df"),
    )
    return Summary(
        n=n,
        mean=mean,
        std=std,
        ci95=math.nan if ci95 is None else float(ci95),
        cv=std / mean if mean else math.nan,
        idle_se=0.0 if idle_se is None else float(idle_se),
        idle_df=math.inf if idle_df is None else float(idle_df),  # JSON has no infinity
    )


@dataclass(frozen=True)
class Regression:
    name: str
    ratio: Ratio  # now / before, J per call

    def describe(self) -> str:
        r = self.ratio
        return (
            f"{self.name}: J per call x{r.value:.3g} "
            f"(95% CI {r.low:.3g} to {r.high:.3g}) against the saved run"
        )


def find_regressions(
    now: Mapping[str, Mapping[str, Any]], before: Mapping[str, Mapping[str, Any]], pct: float
) -> list[Regression]:
    """Benchmarks whose J per call grew by more than `pct` percent beyond the noise.

    `now` and `before` map a benchmark's full name to its extra_info. A regression is a ratio
    whose whole 95% interval lies above 1 + pct/100, so a change within the noise never fails,
    and neither does one whose interval cannot be computed, nor one whose energy, now or
    before, is invalid by greenbench check's rules (summary lines say so instead).
    """
    found = []
    for name, info in now.items():
        current = summary_from_extra_info(info)
        earlier = summary_from_extra_info(before.get(name, {}))
        if current is None or earlier is None:
            continue
        if invalid_reasons(info) or invalid_reasons(before[name]):
            continue
        r = ratio(current, earlier)
        threshold = 1 + pct / 100
        # no interval (one window, a mean <= 0): nothing shows the change is beyond the noise
        if math.isfinite(r.low) and r.low > threshold:
            found.append(Regression(name, r))
    return found
