"""Energy meters: one window at a time, each component labelled with how it was measured."""

from greenbench.energy.meter import COMPONENTS, Measurement, Meter
from greenbench.energy.methods import is_estimate

__all__ = ["COMPONENTS", "Measurement", "Meter", "is_estimate"]
