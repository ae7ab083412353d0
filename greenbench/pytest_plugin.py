"""pytest plugin: the `energy_benchmark` fixture, pytest-benchmark's `benchmark` plus energy.

`energy_benchmark(fn, *args, **kwargs)` and `energy_benchmark.pedantic(...)` time `fn` exactly
as pytest-benchmark does, then measure its energy per call with greenbench's protocol and store
the figures in the benchmark's `extra_info` (keys `energy_*`), which pytest-benchmark writes to
--benchmark-json and saved runs. `--energy-fail-on-regression PCT` fails the session when a
benchmark's J per call grew by more than PCT percent beyond the noise, against the run given by
--benchmark-compare. A function that ran on CUDA GPUs (torch allocated memory there) gets their
energy from greenbench's NVML meter, beside CodeCarbon's CPU and RAM (`energy_gpus` names them).

Installed with greenbench (entry point pytest11), so this module imports nothing heavy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from greenbench.carbon.zones import Zone, default_zone, resolve_zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.gpu_meter import nvml_meter_for
from greenbench.energy.meter import Measurement, Meter
from greenbench.errors import GreenbenchError, one_line
from greenbench.formatting import ESTIMATE_MARK, fmt, fmt_joules
from greenbench.protocol import RELIABLE_WINDOW_S, ProtocolSettings

DAY_S = 86_400.0
ZONE_HELP = "grid zone for gCO2e, ISO country code (default GB or $GREENBENCH_ZONE)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenbench", "greenbench: energy per call for energy_benchmark")
    group.addoption(
        "--energy-min-window",
        type=float,
        default=RELIABLE_WINDOW_S,
        metavar="SECONDS",
        help="shortest measured window of repeated calls (default 5, the meter's resolution: "
        "shorter windows are measured but judged invalid, and the gate skips them)",
    )
    group.addoption(
        "--energy-repetitions",
        type=int,
        default=3,
        metavar="N",
        help="measured windows per benchmark, for the CI95 (default 3)",
    )
    group.addoption(
        "--energy-idle",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="idle baseline before and again after each benchmark's windows (default 1)",
    )
    group.addoption("--energy-zone", default=None, metavar="ZONE", help=ZONE_HELP)
    group.addoption(
        "--energy-fail-on-regression",
        type=float,
        default=None,
        metavar="PCT",
        help="fail when J per call grew by more than PCT %% beyond the noise, against the run "
        "that --benchmark-compare loads",
    )


class EnergySession:
    """Options, the meter (made on first use) and every benchmark's energy in this session."""

    def __init__(self, config: pytest.Config) -> None:
        opt = config.getoption
        self._zone_name: str | None = opt("energy_zone")
        self._zone: Zone | None = None
        if self._zone_name is not None:
            self.zone  # noqa: B018 - a bad zone given on the command line fails now, not later
        if not all(0 < opt(o) < DAY_S for o in ("energy_min_window", "energy_idle")):  # NaN too
            raise pytest.UsageError(
                "--energy-min-window and --energy-idle must be > 0 seconds and under a day"
            )
        if opt("energy_repetitions") < 1:
            raise pytest.UsageError("--energy-repetitions must be >= 1")
        self.fail_pct: float | None = opt("energy_fail_on_regression")
        if self.fail_pct is not None and not config.getoption("benchmark_compare", None):
            raise pytest.UsageError(
                "--energy-fail-on-regression needs a saved run to compare with: add "
                "--benchmark-compare (save runs with --benchmark-autosave)"
            )
        self.settings = ProtocolSettings(
            repetitions=opt("energy_repetitions"),
            min_window_s=opt("energy_min_window"),
            min_calls=1,
            warmup_calls=1,
            idle_s=opt("energy_idle"),
        )
        self.results: dict[str, dict[str, Any]] = {}  # benchmark fullname -> energy extra_info
        self.compared: dict[str, dict[str, Any]] = {}  # the same, from the compared run
        self.regressions: list[Any] = []
        self._meter: CodeCarbonMeter | None = None
        self._gpu_meters: dict[tuple[int, ...], Meter] = {}  # torch indices -> their meter
        self.clock: Callable[[], float] = time.perf_counter  # tests run the protocol on a fake
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def zone(self) -> Zone:
        """The resolved zone; resolved on first use (it reads CodeCarbon's data)."""
        if self._zone is None:
            try:
                self._zone = resolve_zone(self._zone_name or default_zone())
            except ValueError as e:
                raise pytest.UsageError(f"--energy-zone: {e}") from None
        return self._zone

    def meter(self) -> CodeCarbonMeter:
        if self._meter is None:
            self._meter = CodeCarbonMeter(self.zone)
        return self._meter

    def gpu_meter(self, devices: Sequence[int]) -> Meter:
        """The session's CPU and RAM meter with NVML's reading of these GPUs added. One
        CodeCarbon tracker serves them all: a second one in the process would read every GPU
        (CodeCarbon's hardware cache), so there is no CodeCarbon fallback here either."""
        key = tuple(devices)
        if key not in self._gpu_meters:
            try:
                self._gpu_meters[key] = nvml_meter_for(devices, _Borrowed(self.meter()))
            except GreenbenchError as e:
                _cannot_measure(devices, str(e))
            except Exception as e:  # noqa: BLE001 - NVML could not start: say why, once
                _cannot_measure(devices, f"greenbench's NVML meter could not start ({one_line(e)})")
        return self._gpu_meters[key]

    def measure(self, fullname: str, call: Callable[[], object]) -> dict[str, Any]:
        # call_energy and stats load pandas: imported when a benchmark runs, not with the plugin
        from greenbench.call_energy import cuda_devices_used, cuda_sync, measure_calls

        devices = cuda_devices_used()  # after pytest-benchmark's rounds: torch knows by now
        meter = self.gpu_meter(devices) if devices else self.meter()
        energy = measure_calls(
            call,
            meter,
            self.settings,
            self.zone.code,
            sync=cuda_sync(devices),
            clock=self.clock,
            sleep=self.sleep,
        )
        info = energy.extra_info()
        if devices:
            info["energy_gpus"] = " ".join(f"cuda:{i}" for i in devices)
        self.results[fullname] = info
        return info

    def close(self) -> None:
        for gpu_meter in self._gpu_meters.values():
            gpu_meter.close()
        self._gpu_meters.clear()
        if self._meter is not None:
            self._meter.close()
            self._meter = None


class _Borrowed:
    """The session's meter lent to a GPU meter as its base: the session closes it, once."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def begin_window(self) -> None:
        self.meter.begin_window()

    def end_window(self) -> Measurement:
        return self.meter.end_window()

    def close(self) -> None:
        return None


def _cannot_measure(devices: Sequence[int], reason: str) -> None:
    names = ", ".join(f"cuda:{i}" for i in devices)
    pytest.fail(
        f"energy_benchmark: the function ran on {names}, whose energy cannot be measured: {reason}",
        pytrace=False,
    )


class EnergyBenchmarkFixture:
    """Used like pytest-benchmark's `benchmark`; every other attribute is the wrapped fixture's."""

    def __init__(self, benchmark: Any, session: EnergySession) -> None:
        self._benchmark = benchmark
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._benchmark, name)

    def __call__(self, function_to_benchmark: Callable[..., Any], *args: Any, **kwargs: Any):
        result = self._benchmark(function_to_benchmark, *args, **kwargs)
        if self._benchmark.enabled:
            self._measure(lambda: function_to_benchmark(*args, **kwargs), includes_setup=False)
        return result

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple = (),
        kwargs: dict | None = None,
        setup: Callable[[], Any] | None = None,
        teardown: Callable[..., Any] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ):
        result = self._benchmark.pedantic(
            target,
            args=args,
            kwargs=kwargs,
            setup=setup,
            teardown=teardown,
            rounds=rounds,
            warmup_rounds=warmup_rounds,
            iterations=iterations,
        )
        if self._benchmark.enabled:

            def call() -> None:
                call_args, call_kwargs = args, kwargs or {}
                if setup is not None:
                    made = setup()
                    if made:
                        call_args, call_kwargs = made
                target(*call_args, **call_kwargs)
                if teardown is not None:
                    teardown(*call_args, **call_kwargs)

            # energy windows cannot pause around setup and teardown: they are included, and say so
            self._measure(call, includes_setup=setup is not None or teardown is not None)
        return result

    def _measure(self, call: Callable[[], object], includes_setup: bool) -> None:
        info = self._session.measure(self._benchmark.fullname, call)
        info["energy_includes_setup"] = includes_setup
        self._benchmark.extra_info.update(info)  # in place: pytest-benchmark holds this dict


def pytest_configure(config: pytest.Config) -> None:
    config._greenbench_energy = EnergySession(config)  # type: ignore[attr-defined]


@pytest.fixture
def energy_benchmark(request: pytest.FixtureRequest) -> EnergyBenchmarkFixture:
    """pytest-benchmark's `benchmark`, plus energy per call in its extra_info."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        raise pytest.UsageError(
            "energy_benchmark needs pytest-benchmark: pip install pytest-benchmark"
        ) from None
    return EnergyBenchmarkFixture(benchmark, request.config._greenbench_energy)  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    energy: EnergySession | None = getattr(session.config, "_greenbench_energy", None)
    if energy is None:
        return
    energy.close()
    benchmarks = getattr(session.config, "_benchmarksession", None)
    for mapping in (getattr(benchmarks, "compared_mapping", None) or {}).values():
        for name, bench in mapping.items():
            energy.compared[name] = bench.get("extra_info") or {}
    if energy.fail_pct is None or not energy.results:
        return
    from greenbench.call_energy import find_regressions

    energy.regressions = find_regressions(energy.results, energy.compared, energy.fail_pct)
    if energy.regressions:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def summary_lines(
    results: dict[str, dict[str, Any]],
    compared: dict[str, dict[str, Any]],
    regressions: list[Any],
) -> list[tuple[str, dict[str, bool]]]:
    """The terminal summary: J per call per benchmark, its ratio to the compared run, verdicts."""
    from greenbench.call_energy import invalid_reasons, summary_from_extra_info
    from greenbench.stats import ratio

    lines: list[tuple[str, dict[str, bool]]] = []
    for name, info in results.items():
        mark = ESTIMATE_MARK if info["energy_estimated"] else ""
        joules = fmt_joules(info["energy_j_per_call"], info["energy_j_per_call_ci95"])
        text = f"{name}: {mark}{joules}/call (n={info['energy_n']}; {info['energy_methods']};"
        text += (
            f" {mark}{fmt(info['energy_gco2e_per_call'])} gCO2e/call, zone {info['energy_zone']})"
        )
        earlier = compared.get(name, {})
        now, before = summary_from_extra_info(info), summary_from_extra_info(earlier)
        invalid_now, invalid_before = invalid_reasons(info), invalid_reasons(earlier)
        style: dict[str, bool] = {}
        if invalid_now:
            text += f"; INVALID, not compared: {invalid_now[0]}"
            style = {"red": True}
        elif now is not None and before is not None and invalid_before:
            text += f"; not compared: the compared run's figure is INVALID ({invalid_before[0]})"
            style = {"yellow": True}
        elif now is not None and before is not None:
            r = ratio(now, before)
            text += f"; x{fmt(r.value)} of the compared run"
        lines.append((text, style))
    if any(info["energy_estimated"] for info in results.values()):
        lines.append((f"{ESTIMATE_MARK} estimate: modelled, not read from an energy counter", {}))
    for regression in regressions:
        lines.append((f"energy regression: {regression.describe()}", {"red": True, "bold": True}))
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    energy: EnergySession | None = getattr(config, "_greenbench_energy", None)
    if energy is None or not energy.results:
        return
    terminalreporter.section("energy per call (greenbench)")
    for line, style in summary_lines(energy.results, energy.compared, energy.regressions):
        terminalreporter.write_line(line, **style)
