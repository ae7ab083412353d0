"""Grid zones for offline carbon accounting, checked against CodeCarbon's country data."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import pycountry

DEFAULT_ZONE = "GB"
ZONE_ENV = "GREENBENCH_ZONE"


@dataclass(frozen=True)
class Zone:
    code: str  # as the user wrote it, upper-cased: "GB" or "GBR"
    iso3: str  # what CodeCarbon takes
    name: str
    intensity_g_per_kwh: float
    year: int | None

    @property
    def source(self) -> str:
        """How the intensity was obtained, recorded beside every gCO2e figure."""
        year = f" {self.year}" if self.year else ""
        return f"codecarbon offline{year} annual mix, {self.name} ({self.iso3})"


@functools.cache
def _energy_mix() -> dict[str, Any]:
    from codecarbon.input import DataSource  # lazy: codecarbon takes ~0.2 s to import

    return DataSource().get_global_energy_mix_data()


def default_zone() -> str:
    return os.environ.get(ZONE_ENV) or DEFAULT_ZONE


def resolve_zone(code: str) -> Zone:
    """A zone from an ISO-3166 alpha-2 or alpha-3 country code; ValueError naming the fix."""
    wanted = code.strip().upper()
    country = None
    if len(wanted) == 2:
        country = pycountry.countries.get(alpha_2=wanted)
    elif len(wanted) == 3:
        country = pycountry.countries.get(alpha_3=wanted)
    mix = _energy_mix()
    if country is None or country.alpha_3 not in mix:
        raise ValueError(
            f"unknown zone '{code}': use an ISO-3166 country code that CodeCarbon has data for, "
            "such as GB, DE, FR, US"
        )
    entry = mix[country.alpha_3]
    return Zone(
        code=wanted,
        iso3=country.alpha_3,
        name=entry.get("country_name", country.name),
        intensity_g_per_kwh=float(entry["carbon_intensity"]),
        year=entry.get("year"),
    )
