"""The CPU/RAM meter a device meter wraps, as that meter sees it: CodeCarbon's estimates."""

from greenbench.energy.meter import Measurement


class FakeBase:
    """CodeCarbon's meter as the RAPL meter sees it: a CPU estimate, a RAM estimate."""

    def __init__(self):
        self.closed = False

    def begin_window(self):
        pass

    def end_window(self):
        return Measurement(
            energy_j={"cpu": 99.0, "gpu": 0.0, "ram": 5.0},
            methods={"cpu": "cpu-load-estimate", "gpu": "none", "ram": "ram-estimate"},
            emissions_g=0.0,
            carbon_intensity_g_per_kwh=360.0,
            carbon_source="test",
        )

    def close(self):
        self.closed = True
