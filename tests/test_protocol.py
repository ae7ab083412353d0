import pytest

from greenbench.protocol import Phase, ProtocolSettings, run_protocol


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
    settings = ProtocolSettings(repetitions=3, min_window_s=0.1, min_calls=1, warmup_calls=2)
    result = run_protocol(phases, meter, settings, clock=clock, sleep=clock.sleep)

    assert [(w.phase, w.repetition) for w in result.windows] == [
        ("prefill", 1),
        ("decode", 1),
        ("prefill", 2),
        ("decode", 2),
        ("prefill", 3),
        ("decode", 3),
    ]
    # warmup: reset then two calls per phase, before any measured window
    assert log[:6] == ["reset-prefill", "prefill", "prefill", "reset-decode", "decode", "decode"]
    # every window is preceded by its phase's reset
    assert log[6:10] == ["reset-prefill", "prefill", "reset-decode", "decode"]
    # one idle window plus one per (phase, repetition); none for warmup
    assert meter.windows == 1 + 6


def test_idle_baseline_lasts_idle_s_and_gives_power_per_component(clock, meter):
    settings = ProtocolSettings(repetitions=1, min_window_s=1.0, min_calls=1, idle_s=3.0)
    result = run_protocol([timed_phase(clock)], meter, settings, clock=clock, sleep=clock.sleep)
    assert result.idle.duration_s == pytest.approx(3.0)
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
