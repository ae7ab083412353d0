"""A CUDA cell's GPU meter never hides a fallback: a GPU it cannot identify fails the cell, a
meter that cannot start falls back to CodeCarbon under its own label and says why, and a GPU no
reader finds is an error, never 0 J."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from rich.console import Console
from test_nvml import FakeNvml, fleet

from greenbench.backends import cuda
from greenbench.carbon.zones import resolve_zone
from greenbench.energy import codecarbon_meter, gpu_meter
from greenbench.energy.codecarbon_meter import CodeCarbonMeter
from greenbench.energy.meter import Measurement
from greenbench.energy.methods import METHODS, is_estimate
from greenbench.errors import GreenbenchError
from greenbench.records import WindowFacts, window_figures
from greenbench.terminal import print_method_notes

ZONE = resolve_zone("GB")


class RecordingMeter:
    """Stands in for CodeCarbonMeter: records what the cell's meter asked it for."""

    made: list[tuple[list[int], str | None]] = []

    def __init__(self, zone, gpu_ids=None, note=None):
        RecordingMeter.made.append((list(gpu_ids or []), note))

    def close(self):
        pass


@pytest.fixture
def recording(monkeypatch):
    RecordingMeter.made = []
    monkeypatch.setattr(cuda, "CodeCarbonMeter", RecordingMeter)
    return RecordingMeter.made


@pytest.mark.parametrize(
    ("torch_uuid", "message"),
    [
        ("MIG-4f1c2a3b-0000-0000-0000-000000000000", "is a MIG instance"),
        ("GPU-ffff9999", "no NVML device has UUID GPU-ffff9999"),
    ],
)
def test_a_gpu_that_cannot_be_identified_fails_the_cell(
    torch_uuid, message, recording, monkeypatch
):
    monkeypatch.setattr(gpu_meter, "torch_uuid_of", lambda index: torch_uuid)
    nvml = fleet()
    with pytest.raises(GreenbenchError, match=message):
        cuda.gpu_meter(0, ZONE, lambda event: None, nvml)
    assert recording == [([], None)]  # only the CPU and RAM meter was made, and closed
    assert nvml.initialised == 0


def test_a_meter_that_cannot_start_falls_back_to_the_same_gpu_by_its_nvml_index(
    recording, monkeypatch
):
    monkeypatch.setattr(gpu_meter, "torch_uuid_of", lambda index: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb2222")  # torch's cuda:0 is NVML's 1

    def broken_start(self):
        raise RuntimeError("sampler thread could not start")

    monkeypatch.setattr(gpu_meter.PowerSampler, "start", broken_start)
    stages = []
    cuda.gpu_meter(0, ZONE, stages.append, fleet())
    (cpu_ram, _), (gpu_ids, note) = recording
    assert cpu_ram == [] and gpu_ids == [1]  # NVML's index, not torch's 0
    assert "could not start (RuntimeError: sampler thread could not start)" in note
    assert stages and stages[0]["stage"] == note


def test_when_nvml_cannot_be_read_at_all_the_cell_fails(recording, monkeypatch):
    class DeadNvml(FakeNvml):
        def nvmlInit(self):
            raise self.NVMLError("Driver Not Loaded")

    with pytest.raises(GreenbenchError, match="NVML cannot be read .*Driver Not Loaded"):
        cuda.gpu_meter(0, ZONE, lambda event: None, DeadNvml(fleet().gpus))


def test_codecarbon_finding_no_gpu_is_an_error_not_zero_joules():
    # this machine has no GPU: CodeCarbon, asked for NVML index 0, finds none
    with pytest.raises(GreenbenchError, match="CodeCarbon found no GPU to read"):
        CodeCarbonMeter(ZONE, [0])


def test_codecarbons_gpu_reading_has_labels_of_its_own():
    counter = SimpleNamespace(devices=SimpleNamespace(devices=[SimpleNamespace()]))
    power = SimpleNamespace(
        devices=SimpleNamespace(devices=[SimpleNamespace(_use_power_fallback=True)])
    )
    labels = codecarbon_meter._gpu_label(counter), codecarbon_meter._gpu_label(power)
    assert labels == ("codecarbon-nvml-counter", "codecarbon-nvml-power")
    assert all(label in METHODS and not is_estimate(label) for label in labels)


def test_the_fallbacks_reason_is_in_every_record_and_the_terminal():
    m = Measurement(
        energy_j={"cpu": 5.0, "gpu": 40.0, "ram": 1.0},
        methods={"cpu": "rapl", "gpu": "codecarbon-nvml-counter", "ram": "ram-estimate"},
        emissions_g=0.01,
        carbon_intensity_g_per_kwh=200.0,
        carbon_source="test",
        note="greenbench's NVML meter could not start (X); GPU read by CodeCarbon",
    )
    facts = WindowFacts(
        unit="token", unit_count=10, calls=2, duration_s=1.0, energy_j=m.total_j,
        idle_power_w=1.0, methods=m.methods, carbon_intensity_g_per_kwh=200.0,
        carbon_source="test", method_note=m.note,
    )  # fmt: skip
    record = window_figures(facts)
    assert record["method_note"] == m.note and record["method_gpu"] == "codecarbon-nvml-counter"
    console = Console(record=True, width=200)
    frame = pd.DataFrame([{"cell_id": "slm/fp32/cuda:0", **record}] * 2)
    print_method_notes(frame, console)
    assert console.export_text().strip() == f"note: slm/fp32/cuda:0: {m.note}"
