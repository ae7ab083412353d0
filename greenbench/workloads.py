"""The workload catalogue: named presets, their parameters, phases and units of work.

Inference presets carry the model's name (`slm-135m`, `resnet50`); training presets add `-train`
(`slm-135m-train`). Every preset also takes `weights`, a local directory or a cached hub id, to
measure real weights instead of random ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from greenbench.models import check_weights
from greenbench.tasks import get_kind
from greenbench.tasks.base import Task, WorkloadKind

OPTIONAL_PARAMS = ("weights",)  # accepted by every preset, absent by default


@dataclass(frozen=True)
class WorkloadPreset:
    name: str
    architecture: str  # a key of models.ARCHITECTURES
    kind: WorkloadKind  # what a cell does with the model: phases, units, inputs, fidelity
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def task(self) -> Task:
        return self.kind.task

    def resolve_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated by `overrides`; raises ValueError naming the bad key."""
        params = dict(self.defaults)
        for key, value in overrides.items():
            if key not in self.defaults and key not in OPTIONAL_PARAMS:
                known = ", ".join(sorted([*self.defaults, *OPTIONAL_PARAMS]))
                raise ValueError(f"unknown parameter '{key}' for {self.name} (known: {known})")
            params[key] = self._check_param(key, value)
        return params

    def _check_param(self, key: str, value: Any) -> Any:
        if key == "weights":
            if not isinstance(value, str) or not value.strip():
                raise ValueError("'weights' must be a local directory or a cached hub id")
            return check_weights(value.strip())
        return self.kind.check_param(key, value)

    def phases(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return self.kind.phase_names(params)


def _preset(name: str, architecture: str, kind_name: str, description: str, **defaults: Any):
    kind = get_kind(kind_name)
    if kind.selectable_phases:
        defaults = {"phases": list(kind.phases), **defaults}
    return WorkloadPreset(name, architecture, kind, defaults, description)


def _lm(name: str, architecture: str, label: str, batch=1, prompt=128, new=32, train_seq=128):
    return (
        _preset(
            name,
            architecture,
            "lm-inference",
            f"{label}: prefill and greedy decode",
            batch=batch,
            prompt_tokens=prompt,
            new_tokens=new,
        ),
        _preset(
            f"{name}-train",
            architecture,
            "lm-training",
            f"{label}: AdamW fine-tuning steps on random tokens",
            batch=batch,
            seq_len=train_seq,
        ),
    )


def _cnn(name: str, architecture: str, label: str, batch=8, size=224, train_batch=8):
    return (
        _preset(
            name,
            architecture,
            "vision-inference",
            f"{label}: image classification",
            batch=batch,
            image_size=size,
        ),
        _preset(
            f"{name}-train",
            architecture,
            "vision-training",
            f"{label}: SGD steps on synthetic images",
            batch=train_batch,
            image_size=size,
        ),
    )


PRESETS: dict[str, WorkloadPreset] = {
    p.name: p
    for pair in (
        _lm("slm-135m", "smollm2-135m", "SmolLM2-135M architecture"),
        _lm("slm-360m", "smollm2-360m", "SmolLM2-360M architecture"),
        _lm("slm-1.7b", "smollm2-1.7b", "SmolLM2-1.7B architecture"),
        _lm("slm-tiny", "tiny-llama", "2-layer Llama for tests", 1, 16, 8, 16),
        _cnn("resnet18", "resnet18", "ResNet-18, 1000 classes"),
        _cnn("resnet50", "resnet50", "ResNet-50, 1000 classes"),
        _cnn("mobilenet_v2", "mobilenet_v2", "MobileNetV2 1.0, 1000 classes"),
        _cnn("resnet-tiny", "tiny-resnet", "2-stage ResNet for tests", 2, 64, 2),
    )
    for p in pair
}


def get_preset(name: str) -> WorkloadPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown workload '{name}' (known: {', '.join(PRESETS)})") from None
