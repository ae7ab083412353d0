"""Shared fakes: a clock that only moves when told, and a meter driven by it; pytester runs
that are not xdist workers."""

from __future__ import annotations

import pytest

from greenbench.energy.meter import COMPONENTS, Measurement
from greenbench.records import WindowFacts


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeMeter:
    """Power per component, integrated over the fake clock; `power` can change at any time."""

    def __init__(self, clock: FakeClock, power: dict[str, float], methods: dict[str, str]):
        self.clock, self.methods = clock, dict(methods)
        self._power = dict(power)
        self.windows = 0
        self._started: float | None = None
        self._energy = dict.fromkeys(COMPONENTS, 0.0)  # since the window began, to `_since`
        self._since = 0.0

    @property
    def power(self) -> dict[str, float]:
        return self._power

    @power.setter
    def power(self, value: dict[str, float]) -> None:
        self._accumulate()
        self._power = dict(value)

    def _accumulate(self) -> None:
        now = self.clock()
        for c in COMPONENTS:
            self._energy[c] += self._power.get(c, 0.0) * (now - self._since)
        self._since = now

    def begin_window(self) -> None:
        assert self._started is None, "windows must not overlap"
        self._started = self._since = self.clock()
        self._energy = dict.fromkeys(COMPONENTS, 0.0)

    def end_window(self) -> Measurement:
        assert self._started is not None
        self._accumulate()
        self._started = None
        self.windows += 1
        energy = dict(self._energy)
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


# a plain measured window (30 J gross over 2 s against 5 W idle, 10 images), for rows that
# tests only need to be well-formed
WINDOW_FACTS = WindowFacts(
    unit="image",
    unit_count=10,
    calls=5,
    duration_s=2.0,
    energy_j=30.0,
    idle_power_w=5.0,
    methods={"cpu": "rapl"},
    carbon_intensity_g_per_kwh=200.0,
    carbon_source="test",
)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's pytester, whose inner runs are no xdist worker even when this test runs in
    one: pytest-benchmark disables itself where PYTEST_XDIST_WORKER is set."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    return pytester


# a suite's [protocol] for end-to-end tests of a workload: one short window per phase, and no
# waiting for a busy test machine's idle to settle or its call times to steady
ONE_WINDOW_PROTOCOL = """[protocol]
repetitions = 1
min_window_s = 0.2
min_calls = 1
warmup_calls = 1
idle_s = 0.2
settle_max_s = 0.5  # a busy test machine's idle never settles: do not wait for it
warmup_max_s = 0.5
"""


@pytest.fixture(autouse=True)
def _power_limit_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """greenbench's record of the GPU power limits it set (energy/power_limit.py) lives in the
    test session's temporary folder, never in the user's state folder."""
    monkeypatch.setenv("GREENBENCH_STATE_DIR", str(tmp_path_factory.getbasetemp() / "state"))
