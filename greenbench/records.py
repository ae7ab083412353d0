"""The record schema: one row per (cell, phase, repetition), and the one place its figures are made.

Totals (energy_j, emissions_g) are gross: what the machine drew. Per-unit figures are net of the
idle baseline: what the work itself cost. Every producer of rows (the runner, the pytest-benchmark
import, the report's synthetic sample, the pytest plugin's J per call) describes a window as
`WindowFacts` and lets `window_figures` derive the rest, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

from greenbench.energy.cpu_load import MAX_FOREIGN_CPU_SHARE
from greenbench.energy.meter import COMPONENTS, KWH_TO_J
from greenbench.energy.methods import CONSTANT_POWER, estimates_net
from greenbench.footprint import Footprint, footprint_columns
from greenbench.gpu_clocks import busy_clocks
from greenbench.protocol import (
    IDLE_DRIFT_MAX,
    IDLE_STABLE_W,
    RELIABLE_WINDOW_S,
    IdleBaseline,
    ProtocolResult,
    TokenLatency,
    Warmup,
    Window,
)

Status = Literal["ok", "failed", "skipped"]


class Record(TypedDict, total=False):
    """One row of records.jsonl; its fields, in this order, are the columns (COLUMNS).

    Every row carries every column: a value the row does not have is None.
    """

    # Identity of a cell and its row; filled by the runner for every record, failed ones included.
    run_id: str
    cell_id: str
    attempt: int
    suite: str
    workload: str
    architecture: str | None
    # hf: workloads: the checkpoint (folder or hub id), the sha256 of its config.json (first 16
    # hex digits) and the dtype its weights were saved in; None for presets
    checkpoint: str | None
    config_hash: str | None
    checkpoint_dtype: str | None
    parameters: int | None  # the model's parameter count (measured rows)
    task: str
    phase: str
    variant: str
    device: str
    repetition: int | None
    params: str  # JSON
    zone: str | None
    node: str | None  # the machine the cell ran on
    # The measured window.
    window_start: str | None  # UTC, ISO 8601
    unit: str | None
    unit_count: int | None
    # text kinds, whose unit is a sequence: the tokens in one (its seq_len, padding included:
    # an encoder computes every position), so J per token = energy_per_unit_j / tokens_per_unit
    tokens_per_unit: int | None
    calls: int | None
    duration_s: float | None
    cooldown_s: float | None
    # warmup before the phase's windows: calls, seconds, and whether call times had settled
    warmup_calls: int | None
    warmup_s: float | None
    warmup_steady: bool | None
    # the window's call durations (device synchronised): median, 90th and 99th percentile, max
    call_p50_s: float | None
    call_p90_s: float | None
    call_p99_s: float | None
    call_max_s: float | None
    # LM inference (text generation), from the same call times: on prefill rows the time to
    # first token (a prefill call), on decode rows the time per output token (a decode call
    # over its new_tokens steps); None for other phases and kinds
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_p99_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p99_s: float | None
    # the share of the machine's CPU time other processes used, in the window and in idle
    foreign_cpu_share: float | None
    idle_foreign_cpu_share: float | None
    energy_j: float | None
    energy_cpu_j: float | None
    energy_gpu_j: float | None
    energy_ram_j: float | None
    idle_power_w: float | None
    idle_power_cpu_w: float | None
    idle_power_gpu_w: float | None
    idle_power_ram_w: float | None
    # the idle baseline (per cell, taken in short samples before and after the windows): the
    # samples' spread and the standard error of their mean, which is in every window's net
    # figure; each side's mean; the GPU temperature; the wait for idle to settle, and whether
    # it settled
    idle_power_sd_w: float | None
    idle_power_se_w: float | None
    idle_samples: int | None
    idle_power_before_w: float | None
    idle_power_after_w: float | None
    idle_temperature_c: float | None
    idle_settle_s: float | None
    idle_settled: bool | None
    net_energy_j: float | None
    energy_per_unit_j: float | None
    gross_energy_per_unit_j: float | None
    energy_per_call_j: float | None
    throughput: float | None
    power_w: float | None
    emissions_g: float | None
    emissions_per_1k_units_g: float | None
    carbon_intensity_g_per_kwh: float | None
    carbon_source: str | None
    # with an intensity source: gross emissions from the time-weighted intensity of the window
    emissions_series_g: float | None
    carbon_intensity_series_g_per_kwh: float | None
    carbon_series_source: str | None
    method_cpu: str | None
    method_gpu: str | None
    method_ram: str | None
    # why a component was measured the way it was: a fallback's reason (None: as designed)
    method_note: str | None
    estimated: bool | None  # the net figure rests on a modelled component (see methods.py)
    # components modelled at constant power: in the gross energy, cancelled out of the net
    constant_power_components: str | None
    reliable: bool | None  # this window lasted at least RELIABLE_WINDOW_S
    # False when a figure is impossible (net energy <= 0, a counter that went backwards): such a
    # window is kept, but left out of summaries, comparisons and charts; `validity` says why
    valid: bool | None
    validity: str | None
    # inference variants other than fp32: agreement with the fp32 model (see fidelity.py);
    # embeddings have a cosine similarity instead of top-1 and KL
    fidelity_top1: float | None
    fidelity_kl: float | None
    fidelity_cosine: float | None
    fidelity_n: int | None
    # real inputs with labels (quality.py): the metric (perplexity, top1_accuracy, ...), its
    # value and how many tokens, images or words it rests on; fp32 too, for the change against it
    quality_metric: str | None
    quality: float | None
    quality_n: int | None
    # quantization variants: the share of Linear weight elements actually quantized (torchao
    # leaves layers its kernels cannot take in the model's precision)
    quantized_share: float | None
    # CUDA cells measured through NVML: the window's power trace (JSON rows of seconds from the
    # window's start, NVML index, W, utilization %, °C, SM MHz, 1 if the W are instantaneous or
    # 0 if NVML's 1 s moving average) and other processes on the GPU
    gpu_trace: str | None
    gpu_foreign_pids: str | None
    # the trace's rows under load (utilization >= gpu_clocks.BUSY_PCT) and their lowest and
    # highest SM clock: greenbench check's throttling rule reads these, not the trace
    gpu_busy_samples: int | None
    gpu_busy_sm_clock_low_mhz: float | None
    gpu_busy_sm_clock_high_mhz: float | None
    # CUDA cells with a power limit (suite power_limit_w, part of the cell's key): the limit in
    # force, in W, as NVML read it back once set (the requested one on skipped and failed
    # rows), and the GPU's default; None where no limit was set
    power_limit_w: float | None
    power_limit_default_w: float | None
    # The footprint beyond the measured electricity (footprint.py), every figure an estimate
    # with its source, none folded into energy_j or emissions_g: the suite's PUE, the energy x
    # PUE, the hardware's embodied emissions for the window's hours, water from a WUE factor
    pue: float | None
    facility_energy_j: float | None
    embodied_g: float | None
    embodied_per_unit_g: float | None
    embodied_source: str | None
    water_l: float | None
    water_per_unit_l: float | None
    water_source: str | None
    # How the cell ended.
    status: Status
    error: str | None
    recorded_at: str


COLUMNS: list[str] = list(Record.__annotations__)
# a call this many times the window's median, carrying this share of the window, is flagged
SLOW_CALL_RATIO = 5.0
SLOW_CALL_SHARE = 0.10
# what `greenbench compare --by` groups by -> the record column holding it
COMPARE_AXES = {
    "variant": "variant",
    "device": "device",
    "workload": "workload",
    "run": "run_id",
    "power_limit_w": "power_limit_w",
}


@dataclass(frozen=True)
class WindowFacts:
    """What a measured window gives before anything is derived from it.

    The whole machine's gross energy and idle power are facts of their own: a pytest-benchmark
    file keeps only those, without the split by component.
    """

    unit: str
    unit_count: int
    calls: int
    duration_s: float
    energy_j: float  # gross, every component (the sum of the split where there is one)
    idle_power_w: float  # of the idle baseline, every component
    methods: Mapping[str, str]  # component -> method label; a missing one is "none"
    carbon_intensity_g_per_kwh: float
    carbon_source: str | None
    emissions_g: float | None = None  # None: the gross energy at the carbon intensity
    energy_by_component_j: Mapping[str, float] | None = None  # gross
    idle_power_by_component_w: Mapping[str, float] | None = None
    gpu_trace: tuple[tuple[float, ...], ...] = ()
    gpu_foreign_pids: tuple[int, ...] = ()
    method_note: str | None = None
    meter_invalid: str | None = None  # the meter's own verdict on the window
    foreign_cpu_share: float | None = None
    idle_foreign_cpu_share: float | None = None
    idle: IdleBaseline | None = None  # the baseline's samples, where the producer has them
    call_times_s: tuple[float, ...] = ()
    warmup: Warmup | None = None
    token_latency: TokenLatency | None = None  # what the call times say per token (LMs)
    footprint: Footprint | None = None  # None: no footprint columns (e.g. imported files)

    @classmethod
    def of(
        cls, window: Window, idle: IdleBaseline, footprint: Footprint | None = None
    ) -> WindowFacts:
        """The facts of one protocol window, with its cell's idle baseline."""
        m = window.measurement
        return cls(
            unit=window.unit,
            unit_count=window.unit_count,
            calls=window.calls,
            duration_s=window.duration_s,
            energy_j=m.total_j,
            idle_power_w=idle.power_w(),
            methods=m.methods,
            carbon_intensity_g_per_kwh=m.carbon_intensity_g_per_kwh,
            carbon_source=m.carbon_source,
            emissions_g=m.emissions_g,
            energy_by_component_j=m.energy_j,
            idle_power_by_component_w={c: idle.power_w(c) for c in COMPONENTS},
            gpu_trace=m.gpu_trace,
            gpu_foreign_pids=m.gpu_foreign_pids,
            method_note=m.note,
            meter_invalid=_meter_verdict(m.invalid, idle.measurement.invalid),
            foreign_cpu_share=window.foreign_cpu_share,
            idle_foreign_cpu_share=idle.foreign_cpu_share,
            idle=idle,
            call_times_s=window.call_times_s,
            warmup=window.warmup,
            token_latency=window.token_latency,
            footprint=footprint,
        )

    def measured_components(self) -> list[str]:
        """Components that carried energy (without a split: those with a method other than none)."""
        if self.energy_by_component_j is not None:
            return [c for c in COMPONENTS if self.energy_by_component_j.get(c, 0.0) > 0]
        return [c for c in COMPONENTS if self.methods.get(c, "none") != "none"]


def _meter_verdict(window: str | None, idle: str | None) -> str | None:
    """The meter's verdicts on a window and on the idle baseline every window subtracts."""
    reasons = [window] if window else []
    if idle:
        reasons.append(f"the idle baseline's reading cannot be right: {idle}")
    return "; ".join(reasons) or None


def _per(value: float, count: float) -> float | None:
    return value / count if count else None


def _validity(
    net_j: float, by_component_j: Mapping[str, float], facts: WindowFacts
) -> dict[str, Any]:
    """`valid` and the reasons a window's figures cannot be right."""
    reasons = [
        f"other processes used {share:.0%} of the machine's CPU during {when} (at most "
        f"{MAX_FOREIGN_CPU_SHARE:.0%}): the machine-wide CPU meter counted their energy"
        for when, share in (
            ("the window", facts.foreign_cpu_share),
            ("the idle baseline", facts.idle_foreign_cpu_share),
        )
        if share is not None and share > MAX_FOREIGN_CPU_SHARE
    ]
    if facts.meter_invalid:
        reasons.append(facts.meter_invalid)
    reasons += [
        f"{c} energy {j:.3g} J < 0: its counter went backwards"
        for c, j in by_component_j.items()
        if j < 0
    ]
    reasons += _idle_reasons(facts.idle)
    outlier = _slow_call(facts.call_times_s, facts.duration_s)
    if outlier:
        reasons.append(outlier)
    if net_j <= 0:
        reasons.append(
            f"net energy {net_j:.3g} J <= 0: the idle baseline drew as much as the work "
            "(another process busy during idle, or a baseline not yet settled)"
        )
    return {"valid": not reasons, "validity": "; ".join(reasons) or None}


def _idle_reasons(idle: IdleBaseline | None) -> list[str]:
    if idle is None:
        return []
    reasons = []
    if not idle.settled:
        reasons.append(
            "idle power (or GPU temperature) was still moving when the wait for it ran out: "
            "quiet the machine or raise settle_max_s"
        )
    before, after = idle.power_before_w(), idle.power_after_w()
    if before is not None and after is not None:
        moved = abs(after - before)
        if moved > max(IDLE_DRIFT_MAX * abs(before), IDLE_STABLE_W):
            reasons.append(
                f"idle power moved from {before:.3g} W before the windows to {after:.3g} W "
                f"after ({moved / abs(before):.0%}, at most {IDLE_DRIFT_MAX:.0%})"
                if before
                else f"idle power moved from {before:.3g} W to {after:.3g} W"
            )
    return reasons


def _slow_call(call_times_s: Sequence[float], duration_s: float) -> str | None:
    """A call far slower than the window's median that carries a share of its energy (a
    recompile, a stall); jitter on short calls does not, so it is not flagged."""
    if len(call_times_s) < 3 or duration_s <= 0:
        return None
    slowest, median = max(call_times_s), statistics.median(call_times_s)
    if slowest > SLOW_CALL_RATIO * median and slowest > SLOW_CALL_SHARE * duration_s:
        return (
            f"one call took {slowest:.3g} s, {slowest / median:.0f}x the median "
            f"{median:.3g} s and {slowest / duration_s:.0%} of the window: a recompile "
            "(raise warmup_calls) or a stall (another process busy)"
        )
    return None


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
TOKEN_LATENCY_COLUMNS = [f"{m}_{p}_s" for m in ("ttft", "tpot") for p in PERCENTILES]


def token_latency_columns(
    sorted_times_s: Sequence[float], latency: TokenLatency | None
) -> dict[str, float | None]:
    """TTFT or TPOT percentiles from a window's sorted call times (the other metric None).

    A percentile of call time over a fixed token count is that count times the percentile of
    time per token, so dividing the call percentiles is exact, not an approximation.
    """
    columns: dict[str, float | None] = dict.fromkeys(TOKEN_LATENCY_COLUMNS)
    if latency is None or not sorted_times_s:
        return columns
    for name, q in PERCENTILES.items():
        value = _percentile(sorted_times_s, q)
        assert value is not None
        columns[f"{latency.metric}_{name}_s"] = value / latency.tokens_per_call
    return columns


def _call_and_idle_columns(facts: WindowFacts) -> dict[str, Any]:
    times = sorted(facts.call_times_s)
    idle, warmup = facts.idle, facts.warmup
    return {
        "warmup_calls": warmup.calls if warmup else None,
        "warmup_s": warmup.duration_s if warmup else None,
        "warmup_steady": warmup.steady if warmup else None,
        "call_p50_s": _percentile(times, 0.50),
        "call_p90_s": _percentile(times, 0.90),
        "call_p99_s": _percentile(times, 0.99),
        "call_max_s": times[-1] if times else None,
        **token_latency_columns(times, facts.token_latency),
        "idle_power_sd_w": idle.power_sd_w() if idle else None,
        "idle_power_se_w": idle.power_se_w() if idle else None,
        "idle_samples": len(idle.samples) if idle else None,
        "idle_power_before_w": idle.power_before_w() if idle else None,
        "idle_power_after_w": idle.power_after_w() if idle else None,
        "idle_temperature_c": idle.temperature_c() if idle else None,
        "idle_settle_s": idle.settle_s if idle else None,
        "idle_settled": idle.settled if idle else None,
    }


BUSY_CLOCK_COLUMNS = ("gpu_busy_samples", "gpu_busy_sm_clock_low_mhz", "gpu_busy_sm_clock_high_mhz")


def _busy_clock_columns(trace: tuple[tuple[float, ...], ...]) -> dict[str, Any]:
    """gpu_busy_samples and the busy SM clock range of a window's trace (None without one)."""
    if not trace:
        return dict.fromkeys(BUSY_CLOCK_COLUMNS)
    busy = busy_clocks(trace)
    return dict(zip(BUSY_CLOCK_COLUMNS, (busy.samples, busy.low_mhz, busy.high_mhz), strict=True))


def window_figures(facts: WindowFacts) -> Record:
    """Every measured column of a window's row, derived from its facts."""
    gross = facts.energy_j
    net = gross - facts.idle_power_w * facts.duration_s
    intensity = facts.carbon_intensity_g_per_kwh
    known_intensity = math.isfinite(intensity)
    net_per_unit = _per(net, facts.unit_count)
    emissions = facts.emissions_g
    if emissions is None and known_intensity:
        emissions = gross / KWH_TO_J * intensity
    methods = {c: facts.methods.get(c, "none") for c in COMPONENTS}
    measured = facts.measured_components()
    by_component = facts.energy_by_component_j or {}
    idle_by_component = facts.idle_power_by_component_w or {}
    figures: dict[str, Any] = {
        "unit": facts.unit,
        "unit_count": facts.unit_count,
        "calls": facts.calls,
        "duration_s": facts.duration_s,
        "energy_j": gross,
        "idle_power_w": facts.idle_power_w,
        "net_energy_j": net,
        "energy_per_unit_j": net_per_unit,
        "gross_energy_per_unit_j": _per(gross, facts.unit_count),
        "energy_per_call_j": _per(net, facts.calls),
        "throughput": _per(facts.unit_count, facts.duration_s),
        "power_w": _per(gross, facts.duration_s),
        "emissions_g": emissions,
        "emissions_per_1k_units_g": (
            net_per_unit * 1000 / KWH_TO_J * intensity
            if known_intensity and net_per_unit is not None
            else None
        ),
        "carbon_intensity_g_per_kwh": intensity,
        "carbon_source": facts.carbon_source,
        "estimated": any(estimates_net(methods[c]) for c in measured),
        "constant_power_components": " ".join(c for c in measured if methods[c] in CONSTANT_POWER)
        or None,
        "reliable": facts.duration_s >= RELIABLE_WINDOW_S,
        "foreign_cpu_share": facts.foreign_cpu_share,
        "idle_foreign_cpu_share": facts.idle_foreign_cpu_share,
        **_validity(net, by_component, facts),
        "gpu_trace": json.dumps(facts.gpu_trace) if facts.gpu_trace else None,
        **_busy_clock_columns(facts.gpu_trace),
        "gpu_foreign_pids": json.dumps(facts.gpu_foreign_pids) if facts.gpu_foreign_pids else None,
        "method_note": facts.method_note,
        **_call_and_idle_columns(facts),
        **footprint_columns(facts.footprint, gross, facts.duration_s, facts.unit_count),
    }
    for c in COMPONENTS:
        figures[f"energy_{c}_j"] = by_component.get(c)
        figures[f"idle_power_{c}_w"] = idle_by_component.get(c)
        figures[f"method_{c}"] = facts.methods.get(c, "none")
    return cast(Record, figures)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def build_record(
    *parts: Mapping[str, Any],
    status: Status = "ok",
    error: str | None = None,
    recorded_at: str | None = None,
) -> Record:
    """A full row: the parts (context, measured figures, extras; later ones win) and the status.

    Columns no part fills are None, and the keys come in COLUMNS order.
    """
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    merged.update(
        status=status, error=error, recorded_at=_now() if recorded_at is None else recorded_at
    )
    return cast(Record, {col: merged.get(col) for col in COLUMNS})


def window_start(started_at: float) -> str:
    """A window's Unix start time as the `window_start` column writes it."""
    return dt.datetime.fromtimestamp(started_at, dt.UTC).isoformat(timespec="milliseconds")


def window_record(
    context: Mapping[str, Any],
    result: ProtocolResult,
    window: Window,
    extra: Mapping[str, Any] | None = None,
    footprint: Footprint | None = None,
) -> Record:
    """One measured row; `extra` holds per-cell values such as fidelity."""
    where = {
        "phase": window.phase,
        "repetition": window.repetition,
        "window_start": window_start(window.started_at),
        "cooldown_s": window.cooldown_s,
    }
    figures = window_figures(WindowFacts.of(window, result.idle, footprint))
    return build_record(context, where, figures, extra or {})


def measured_records(
    context: Mapping[str, Any],
    result: ProtocolResult,
    extra: Mapping[str, Any] | None = None,
    footprint: Footprint | None = None,
) -> list[Record]:
    return [window_record(context, result, w, extra, footprint) for w in result.windows]


def unfinished_records(
    context: Mapping[str, Any], phases: Iterable[str], status: Status, error: str
) -> list[Record]:
    """One row per phase for a cell that failed or was skipped, carrying the reason."""
    assert status in ("failed", "skipped")
    return [build_record(context, {"phase": phase}, status=status, error=error) for phase in phases]
