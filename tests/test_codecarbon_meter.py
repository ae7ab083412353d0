import time

import pytest

from greenbench.carbon.zones import resolve_zone
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.methods import METHODS


def test_real_meter_labels_every_component_and_measures_a_window():
    zone = resolve_zone("GB")
    meter = CodeCarbonMeter(zone.iso3, gpu_ids=[], carbon_source=zone.source)
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
