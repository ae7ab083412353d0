"""Wall-time overhead of greenbench's measurement: the same calls, bare and inside a window.

Each pair times K calls of a workload phase bare (a plain loop) and K calls through the
protocol's measured window (CodeCarbon task start/stop, its 1 s power-sampling thread, device
sync and clock checks). Pairs alternate their order (bare first, then measured first) so drift
such as heating does not favour one side. Prints the median overhead over the pairs.

    python benchmarks/overhead.py [--workload resnet50] [--calls 12] [--pairs 8]

On a noisy machine the paired medians cannot resolve fractions of a percent; the fixed costs
(window edges, the sampling thread's CPU time), measured with nothing else running, bound it.
"""

from __future__ import annotations

import argparse
import statistics
import time

from greenbench.carbon.zones import resolve_zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.models import build_model
from greenbench.protocol import ProtocolSettings, _measure_window
from greenbench.tasks import make_phases
from greenbench.workloads import get_preset


def bare(phase, calls: int) -> float:
    phase.reset()
    started = time.perf_counter()
    for _ in range(calls):
        phase.step()
    return time.perf_counter() - started


def measured(phase, calls: int, meter: CodeCarbonMeter) -> float:
    # min_window_s so small that exactly `calls` calls run, as in a real window
    settings = ProtocolSettings(min_calls=calls, min_window_s=1e-9)
    started = time.perf_counter()
    _measure_window(phase, 1, meter, settings, sync=lambda: None, clock=time.perf_counter)
    return time.perf_counter() - started


def fixed_costs(meter: CodeCarbonMeter, window_s: float) -> tuple[float, float]:
    """(seconds per window edge pair, CPU seconds per second of window) spent by the meter.

    Measured without any work running, so the machine's noise does not hide them: an upper
    bound on what measuring adds to a window of `window_s` seconds.
    """
    edges = []
    for _ in range(50):
        started = time.perf_counter()
        meter.begin_window()
        meter.end_window()
        edges.append(time.perf_counter() - started)
    cpu_started = time.process_time()
    meter.begin_window()
    time.sleep(window_s)  # only CodeCarbon's sampling thread runs in this process now
    meter.end_window()
    sampling_cpu = (time.process_time() - cpu_started) / window_s
    return statistics.median(edges), sampling_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="resnet50")
    parser.add_argument("--phase", default=None, help="default: the workload's first phase")
    parser.add_argument("--calls", type=int, default=12, help="calls per timed block")
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()

    preset = get_preset(args.workload)
    params = preset.resolve_params({})
    phases = make_phases(preset.kind, build_model(preset.architecture), params, "cpu")
    phase = next(p for p in phases if args.phase in (None, p.name))
    zone = resolve_zone("GB")
    meter = CodeCarbonMeter(zone)
    bare(phase, 2)  # warmup

    overheads = []
    for pair in range(args.pairs):
        if pair % 2 == 0:
            t_bare, t_measured = bare(phase, args.calls), measured(phase, args.calls, meter)
        else:
            t_measured, t_bare = measured(phase, args.calls, meter), bare(phase, args.calls)
        overheads.append(t_measured / t_bare - 1)
        print(
            f"pair {pair + 1}: bare {t_bare:.3f} s, measured {t_measured:.3f} s, "
            f"overhead {overheads[-1] * 100:+.2f}%"
        )
    edge_s, sampling_cpu = fixed_costs(meter, window_s=5.0)
    meter.close()
    bound = (edge_s + sampling_cpu * 5.0) / 5.0
    print(
        f"fixed costs: {edge_s * 1e3:.3f} ms per window (begin+end), sampling thread "
        f"{sampling_cpu * 1e3:.3f} ms CPU per second: at most {bound * 100:.3f}% of a 5 s window"
    )
    print(
        f"{args.workload} {phase.name}, {args.calls} calls per block, {args.pairs} pairs: "
        f"median overhead {statistics.median(overheads) * 100:+.2f}% "
        f"(min {min(overheads) * 100:+.2f}%, max {max(overheads) * 100:+.2f}%)"
    )


if __name__ == "__main__":
    main()
