import itertools
import math

import pytest

from greenbench.protocol import (
    IDLE_STABLE_SPREAD,
    Phase,
    ProtocolSettings,
    run_protocol,
)
from greenbench.records import measured_records


def timed_phase(clock, name="forward", seconds=0.4, units=8, log=None, unit="image"):
    def step():
        clock.sleep(seconds)
        if log is not None:
            log.append(name)

    def reset():
        if log is not None:
            log.append(f"reset-{name}")

    return Phase(name, unit, units, step, reset)


def test_window_stops_when_both_min_calls_and_min_duration_are_met(clock, meter):
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, min_calls=2, warmup_calls=0)
    result = run_protocol(
        [timed_phase(clock, seconds=0.4)], meter, settings, clock=clock, sleep=clock.sleep
    )
    (window,) = result.windows
    assert window.calls == 3  # 0.8 s after 2 calls is short of 1 s; the third reaches 1.2 s
    assert window.duration_s == pytest.approx(1.2)
    assert window.unit_count == 24


def test_min_calls_dominates_when_calls_are_slow(clock, meter):
    settings = ProtocolSettings(repetitions=1, min_window_s=0.1, min_calls=4, warmup_calls=0)
    result = run_protocol(
        [timed_phase(clock, seconds=1.0)], meter, settings, clock=clock, sleep=clock.sleep
    )
    assert result.windows[0].calls == 4


def test_repetitions_interleave_phases_and_warmup_is_not_measured(clock, meter):
    log: list[str] = []
    phases = [timed_phase(clock, "prefill", log=log), timed_phase(clock, "decode", log=log)]
    settings = ProtocolSettings(repetitions=3, min_window_s=0.1, min_calls=1, warmup_calls=3)
    result = run_protocol(phases, meter, settings, clock=clock, sleep=clock.sleep)

    assert [(w.phase, w.repetition) for w in result.windows] == [
        ("prefill", 1),
        ("decode", 1),
        ("prefill", 2),
        ("decode", 2),
        ("prefill", 3),
        ("decode", 3),
    ]
    # warmup: reset then three calls per phase (steady at once), before any measured window
    warm = ["reset-prefill", *["prefill"] * 3, "reset-decode", *["decode"] * 3]
    assert log[:8] == warm
    # every window is preceded by its phase's reset
    assert log[8:12] == ["reset-prefill", "prefill", "reset-decode", "decode"]
    # three idle samples before and three after, plus one per (phase, repetition); none for warmup
    assert meter.windows == 3 + 6 + 3


def test_idle_baseline_lasts_idle_s_and_gives_power_per_component(clock, meter):
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, min_calls=1, idle_s=3.0)
    result = run_protocol([timed_phase(clock)], meter, settings, clock=clock, sleep=clock.sleep)
    # three 1 s samples before the windows and three after
    assert result.idle.duration_s == pytest.approx(6.0)
    assert len(result.idle.samples) == 6 and result.idle.samples_before == 3
    assert result.idle.power_before_w() == pytest.approx(12.0)
    assert result.idle.power_after_w() == pytest.approx(12.0)
    assert result.idle.power_sd_w() == 0.0 and result.idle.settled
    assert result.idle.power_w() == pytest.approx(12.0)
    assert result.idle.power_w("cpu") == pytest.approx(10.0)
    assert result.idle.power_w("gpu") == 0.0


def test_sync_is_called_at_every_window_edge(clock, meter):
    calls = []
    settings = ProtocolSettings(repetitions=2, min_window_s=0.1, min_calls=1, warmup_calls=0)
    run_protocol(
        [timed_phase(clock)],
        meter,
        settings,
        sync=lambda: calls.append(clock()),
        clock=clock,
        sleep=clock.sleep,
    )
    # idle start, after warmup, and per window: before begin and before the duration check
    assert len(calls) >= 2 + 2 * 2


def test_on_window_reports_each_window(clock, meter):
    seen = []
    settings = ProtocolSettings(repetitions=2, min_window_s=0.1, min_calls=1)
    run_protocol(
        [timed_phase(clock)],
        meter,
        settings,
        clock=clock,
        sleep=clock.sleep,
        on_window=lambda w: seen.append(w.repetition),
    )
    assert seen == [1, 2]


def steady_phase(clock, seconds=0.5):
    return Phase("forward", "image", 1, lambda: clock.sleep(seconds))


class DecayingIdleMeter:
    """Idle power that decays from `excess_w` above rest with time constant `tau_s`."""

    def __init__(self, meter, clock, rest_w, excess_w, tau_s):
        self.meter, self.clock = meter, clock
        self.rest_w, self.excess_w, self.tau_s = rest_w, excess_w, tau_s

    def begin_window(self):
        self.meter.power = {
            "cpu": self.rest_w + self.excess_w * math.exp(-self.clock() / self.tau_s)
        }
        self.meter.begin_window()

    def end_window(self):
        return self.meter.end_window()

    def close(self):
        pass


def test_idle_waits_until_power_settles_and_records_the_wait(clock, meter):
    # 30 W above a 20 W rest, decaying with a 2 s time constant: the first samples are hot
    decaying = DecayingIdleMeter(meter, clock, rest_w=20.0, excess_w=30.0, tau_s=2.0)
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, warmup_calls=0, idle_s=3.0)
    result = run_protocol([steady_phase(clock)], decaying, settings, clock=clock, sleep=clock.sleep)
    idle = result.idle
    assert idle.settled and idle.settle_s > 0
    # the samples it kept lie within IDLE_STABLE_SPREAD of each other: on a curve decaying
    # this fast, the baseline is then within twice that of rest
    assert idle.power_before_w() == pytest.approx(20.0, rel=2 * IDLE_STABLE_SPREAD)
    # a single 3 s baseline at the start would have read 20 + 30 * 2/3 * (1 - e^-1.5) = 35.5 W
    first_three = sum(s.power_w for s in idle.samples[:3]) / 3
    assert first_three < 22.0


def test_idle_that_never_settles_stops_at_the_bound_and_invalidates_the_cell(clock, meter):
    class Alternating(DecayingIdleMeter):
        def begin_window(self):
            self.meter.power = {"cpu": 20.0 if round(self.clock()) % 2 else 40.0}
            self.meter.begin_window()

    settings = ProtocolSettings(
        repetitions=1, min_window_s=1.0, warmup_calls=0, idle_s=3.0, settle_max_s=5.0
    )
    noisy = Alternating(meter, clock, 0, 0, 1)
    result = run_protocol([steady_phase(clock)], noisy, settings, clock=clock, sleep=clock.sleep)
    assert not result.idle.settled
    assert 5.0 <= result.idle.settle_s <= 2 * (5.0 + 3.0)  # bounded, before and after together
    (row,) = measured_records({}, result)
    assert row["valid"] is False and "idle power" in row["validity"]
    assert row["idle_settled"] is False


def test_idle_after_the_windows_shows_a_drifting_baseline(clock, meter):
    def heating_step():
        clock.sleep(1.0)
        meter.power = {"cpu": meter.power["cpu"] + 2.0}  # idle creeps up as the machine heats

    meter.power = {"cpu": 20.0}
    settings = ProtocolSettings(
        repetitions=3, min_window_s=1.0, min_calls=1, warmup_calls=0, idle_s=2.0
    )
    phase = Phase("forward", "image", 1, heating_step)
    result = run_protocol([phase], meter, settings, clock=clock, sleep=clock.sleep)
    assert result.idle.power_before_w() == pytest.approx(20.0)
    assert result.idle.power_after_w() == pytest.approx(26.0)
    row = measured_records({}, result)[0]
    assert row["idle_power_before_w"] == pytest.approx(20.0)
    assert row["idle_power_after_w"] == pytest.approx(26.0)
    assert row["idle_power_w"] == pytest.approx(23.0)  # both sides pooled
    assert row["valid"] is False and "idle power moved from 20 W" in row["validity"]


def test_cooling_gpu_idle_waits_for_the_temperature_to_stop_falling(clock, meter):
    class CoolingGpu:
        def temperature_c(self):
            return round(40 + 30 * math.exp(-clock() / 20.0))  # whole degrees, as NVML gives

        def calibrate(self):
            self.calibrated_at = clock()

        def __call__(self, max_s):
            return 0.0

    gpu = CoolingGpu()
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, warmup_calls=0, idle_s=3.0)
    result = run_protocol(
        [steady_phase(clock)], meter, settings, clock=clock, sleep=clock.sleep, cooldown=gpu
    )
    # settled once 10 s of history moved at most 1 °C: the excess then is a few degrees; it
    # took longer than settle_max_s (20 s), up to cooldown_max_s, as GPUs cool slowly
    assert 20.0 < gpu.calibrated_at < settings.cooldown_max_s + settings.idle_s
    assert 30 * math.exp(-gpu.calibrated_at / 20.0) < 5.0
    assert result.idle.samples[0].temperature_c <= 45
    assert result.idle.settled


def test_warmup_continues_until_call_times_settle_and_is_recorded(clock, meter):
    durations = iter([3.0, 1.2, 0.6] + [0.1] * 1000)  # compile, recompile, then steady
    phase = Phase("decode", "token", 1, lambda: clock.sleep(next(durations)))
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, warmup_calls=1)
    result = run_protocol([phase], meter, settings, clock=clock, sleep=clock.sleep)
    (window,) = result.windows
    assert window.warmup.calls == 6 and window.warmup.steady  # 3 slow + 3 that agree
    assert window.warmup.duration_s == pytest.approx(5.1)
    assert window.call_times_s == pytest.approx([0.1] * window.calls)
    (row,) = measured_records({}, result)
    assert (row["warmup_calls"], row["warmup_steady"]) == (6, True)
    assert row["call_p50_s"] == pytest.approx(0.1)
    assert "one call took" not in row["validity"]  # the slow calls were all in the warmup


def test_warmup_that_never_settles_is_bounded_and_says_so(clock, meter):
    durations = itertools.cycle([0.1, 1.0])
    phase = Phase("decode", "token", 1, lambda: clock.sleep(next(durations)))
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, warmup_calls=1, warmup_max_s=4.0)
    result = run_protocol([phase], meter, settings, clock=clock, sleep=clock.sleep)
    warmup = result.windows[0].warmup
    assert not warmup.steady and 4.0 <= warmup.duration_s <= 4.0 + 1.0 + 0.1


def test_a_recompile_inside_a_window_invalidates_it_but_jitter_does_not(clock, meter):
    def window_with(durations):
        it = iter(durations)
        phase = Phase("decode", "token", 1, lambda: clock.sleep(next(it)))
        settings = ProtocolSettings(repetitions=1, min_window_s=5.0, warmup_calls=0)
        (row,) = measured_records(
            {}, run_protocol([phase], meter, settings, clock=clock, sleep=clock.sleep)
        )
        return row

    recompile = window_with([0.05] * 10 + [2.6] + [0.05] * 100)
    assert recompile["valid"] is False
    assert "one call took 2.6 s, 52x the median 0.05 s" in recompile["validity"]
    assert recompile["call_max_s"] == pytest.approx(2.6)
    # a call 6x the median that carries 1 % of the window is scheduling jitter: kept
    jitter = window_with([0.01] * 200 + [0.06] + [0.01] * 400)
    assert jitter["valid"] is True
    assert jitter["call_p99_s"] == pytest.approx(0.01)
