import os
import time

import pytest

from greenbench.carbon.zones import resolve_zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.methods import METHODS


def test_real_meter_labels_every_component_and_measures_a_window():
    zone = resolve_zone("GB")
    meter = CodeCarbonMeter(zone)
    try:
        meter.begin_window()
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            sum(range(1000))
        m = meter.end_window()
    finally:
        meter.close()
    assert set(m.methods) == {"cpu", "gpu", "ram"}
    assert all(label in METHODS for label in m.methods.values())
    assert m.methods["gpu"] == "none" and m.energy_j["gpu"] == 0.0  # a CPU cell counts no GPU
    assert m.energy_j["cpu"] > 0 and m.energy_j["ram"] > 0
    assert m.carbon_intensity_g_per_kwh == pytest.approx(zone.intensity_g_per_kwh, rel=1e-6)
    assert "United Kingdom" in m.carbon_source


def test_zone_accepts_alpha2_and_alpha3():
    assert resolve_zone("de").iso3 == "DEU"
    assert resolve_zone("FRA").iso3 == "FRA"


@pytest.fixture
def no_user_config(tmp_path, monkeypatch):
    """No CodeCarbon configuration but what the test sets: a bare home and working folder."""
    for name in [n for n in os.environ if n.startswith("CODECARBON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_window(meter):
    meter.begin_window()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        sum(range(1000))
    return meter.end_window()


def test_emissions_are_the_windows_energy_at_the_zones_intensity():
    zone = resolve_zone("DE")
    meter = CodeCarbonMeter(zone)
    try:
        m = one_window(meter)
    finally:
        meter.close()
    assert m.carbon_intensity_g_per_kwh == zone.intensity_g_per_kwh
    assert m.emissions_g == pytest.approx(m.total_j / 3.6e6 * zone.intensity_g_per_kwh)


def test_codecarbon_settings_that_change_figures_are_pinned_and_named(no_user_config, monkeypatch):
    from greenbench.energy.codecarbon_meter import ignored_settings

    (no_user_config / ".codecarbon.config").write_text("[codecarbon]\nforce_ram_power = 300\n")
    monkeypatch.setenv("CODECARBON_PUE", "2")
    monkeypatch.setenv("CODECARBON_RAPL_INCLUDE_DRAM", "true")
    monkeypatch.setenv("CODECARBON_FORCE_CARBON_INTENSITY_G_CO2E_KWH", "999")
    zone = resolve_zone("GB")
    meter = CodeCarbonMeter(zone)
    try:
        tracker = meter._tracker
        assert (tracker._pue, tracker._rapl_include_dram, tracker._force_ram_power) == (
            1.0,
            False,
            None,
        )
        m = one_window(meter)
    finally:
        meter.close()
    assert m.carbon_intensity_g_per_kwh == zone.intensity_g_per_kwh  # not the forced 999
    ignored = ignored_settings()
    assert ignored["pue"] == "2 (CODECARBON_PUE)"
    assert set(ignored) == {"pue", "rapl_include_dram", "force_carbon_intensity_g_co2e_kwh",
                            "force_ram_power"}  # fmt: skip
    assert (
        ignored["force_ram_power"].startswith("300 (")
        and ".codecarbon.config" in ignored["force_ram_power"]
    )


def test_the_run_environment_names_the_ignored_settings(no_user_config, monkeypatch):
    from greenbench.environment import collect_environment

    monkeypatch.setenv("CODECARBON_PUE", "1.5")
    assert collect_environment()["codecarbon_ignored_settings"] == {"pue": "1.5 (CODECARBON_PUE)"}


def test_gpu_energy_codecarbon_was_not_asked_for_stops_the_cell():
    from types import SimpleNamespace

    from greenbench.errors import GreenbenchError

    meter = CodeCarbonMeter(resolve_zone("GB"))
    meter.close()

    class Hijacked:  # CodeCarbon's hardware cache handing this tracker another's GPUs
        def start_task(self, name):
            pass

        def stop_task(self, name):
            return SimpleNamespace(cpu_energy=1e-6, gpu_energy=2e-5, ram_energy=1e-6)

    meter._tracker = Hijacked()
    meter.begin_window()
    with pytest.raises(GreenbenchError, match="GPU energy that it was not asked for"):
        meter.end_window()
