"""The registries: a backend and a workload kind are each one object plus one registry line."""

from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import FakeMeter

from greenbench import backends, tasks, workloads
from greenbench.backends import backend_for, parse_device, skip_reason
from greenbench.backends.base import DeviceInfo, RayRequest
from greenbench.backends.torch_device import TorchBackend
from greenbench.cli import main
from greenbench.executors.ray_executor import node_spec, task_options
from greenbench.protocol import Phase, ProtocolSettings
from greenbench.runner import cell_context, cell_spec, run_cell
from greenbench.suite import Cell, parse_suite
from greenbench.tasks.base import WorkloadKind
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS, WorkloadPreset


class FakeAccelerator(TorchBackend):
    """A made-up device family: torch on the CPU underneath, its own meter and resources."""

    name = "Fake accelerator"
    device_type = "fakeacc"
    forms = ("fakeacc", "fakeacc:N")
    variants = frozenset({"fp32"})

    def __init__(self) -> None:
        self.synced = 0

    def prepare(self, cell, emit):
        return super().prepare(dataclasses.replace(cell, device="cpu"), emit)

    def make_meter(self, device, zone, emit):
        return FakeMeter(time.perf_counter, {"gpu": 50.0}, {"gpu": "nvml-counter"})

    def synchronize(self, device):
        self.synced += 1

    def ray_request(self, device):
        return RayRequest(resources={"fakeacc": 1})

    def node_device(self, device):
        return "fakeacc:0"

    def device_rows(self):
        return [DeviceInfo("fakeacc", True, "a fake", "nvml-counter: fake")]


def _count_phase(model, params, device, autocast=None):
    return [Phase("count", "item", params["items"], lambda: sum(range(params["items"])))]


COUNT = WorkloadKind(
    name="count-inference", task="inference", phases={"count": "item"}, make_phases=_count_phase
)


@pytest.fixture
def registered(monkeypatch):
    fake = FakeAccelerator()
    monkeypatch.setattr(backends, "BACKENDS", (*backends.BACKENDS, fake))
    monkeypatch.setitem(tasks.KINDS, COUNT.name, COUNT)
    preset = WorkloadPreset("counter", "tiny-llama", COUNT, {"items": 1000}, "counts")
    monkeypatch.setitem(workloads.PRESETS, preset.name, preset)
    return fake


def test_a_registered_backend_parses_validates_and_asks_ray_for_its_device(registered):
    assert parse_device("FAKEACC:1") == "fakeacc:1"
    assert backend_for("fakeacc:1") is registered
    suite = parse_suite({"workloads": ["slm-tiny"], "devices": ["fakeacc"]}, "test")
    assert suite.devices == ("fakeacc",)
    assert task_options("fakeacc")["resources"] == {"greenbench-node": 1, "fakeacc": 1}
    spec = {"cell": {"device": "fakeacc:3"}, "context": {}}
    assert node_spec(spec)["cell"]["device"] == "fakeacc:0"
    with pytest.raises(ValueError, match="known: cpu, .*fakeacc:N"):
        parse_device("nothing")


def test_a_registered_backend_rules_on_variants_and_lists_its_devices(registered, capsys):
    kind = PRESETS["slm-tiny"].kind
    assert skip_reason(kind, get_variant("fp32"), "fakeacc") is None
    assert skip_reason(kind, get_variant("bf16"), "fakeacc") == (
        "bf16 runs on cpu and cuda and mps and xpu and npu, not fakeacc"
    )
    assert main(["devices"]) == 0
    assert "nvml-counter: fake" in capsys.readouterr().out


def test_a_registered_kind_runs_on_a_registered_backend(registered):
    cell = Cell("counter", "fp32", "fakeacc", PRESETS["counter"].resolve_params({"items": 10}))
    assert cell.phases == ("count",)
    protocol = ProtocolSettings(repetitions=2, min_window_s=0.01, idle_s=0.01)
    context = cell_context(cell, "run", 1, "suite", "GB")
    records = run_cell(cell_spec(cell, protocol, context), lambda event: None)
    assert [(r["phase"], r["unit"], r["repetition"]) for r in records] == [
        ("count", "item", 1),
        ("count", "item", 2),
    ]
    assert all(r["method_gpu"] == "nvml-counter" and r["task"] == "inference" for r in records)
    assert all(r["unit_count"] == 10 * r["calls"] for r in records)
    assert registered.synced > 0  # window edges synchronised through the backend


def test_the_kinds_declare_the_phase_order_that_tables_sort_by():
    assert tasks.ordered_phases() == (
        "prefill", "decode", "forward", "encode", "classify", "embed", "train"
    )  # fmt: skip
    assert tasks.phase_units()["forward"] == "image"
    assert tasks.phase_units()["embed"] == "sequence"
