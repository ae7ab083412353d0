"""Shared fakes: a clock that only moves when told, and a meter driven by it."""

from __future__ import annotations

import pytest

from greenbench.energy.meter import COMPONENTS, Measurement


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeMeter:
    """Constant power per component; `power` can be changed between windows."""

    def __init__(self, clock: FakeClock, power: dict[str, float], methods: dict[str, str]):
        self.clock, self.power, self.methods = clock, dict(power), dict(methods)
        self.windows = 0
        self._started: float | None = None

    def begin_window(self) -> None:
        assert self._started is None, "windows must not overlap"
        self._started = self.clock()

    def end_window(self) -> Measurement:
        assert self._started is not None
        elapsed = self.clock() - self._started
        self._started = None
        self.windows += 1
        energy = {c: self.power.get(c, 0.0) * elapsed for c in COMPONENTS}
        total_kwh = sum(energy.values()) / 3.6e6
        return Measurement(
            energy_j=energy,
            methods={c: self.methods.get(c, "none") for c in COMPONENTS},
            emissions_g=total_kwh * 200.0,
            carbon_intensity_g_per_kwh=200.0,
            carbon_source="fake",
        )

    def close(self) -> None:
        pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def meter(clock: FakeClock) -> FakeMeter:
    return FakeMeter(clock, {"cpu": 10.0, "ram": 2.0}, {"cpu": "rapl", "ram": "ram-estimate"})
