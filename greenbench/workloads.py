"""The workload catalogue: named presets, their parameters, phases and units of work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LM_PHASES = ("prefill", "decode")

# phase -> the unit its energy is stated per
PHASE_UNITS = {"prefill": "token", "decode": "token", "forward": "image", "train": "sample"}


@dataclass(frozen=True)
class WorkloadPreset:
    name: str
    architecture: str  # a key of models.ARCHITECTURES
    kind: str  # "lm-inference" | "vision-inference"; picks the task module
    task: str  # "inference" | "training"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def resolve_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated by `overrides`; raises ValueError naming the bad key."""
        params = dict(self.defaults)
        for key, value in overrides.items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults))
                raise ValueError(f"unknown parameter '{key}' for {self.name} (known: {known})")
            params[key] = _check_param(key, value)
        return params

    def phases(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        if self.kind == "lm-inference":
            return tuple(params["phases"])
        return ("forward",)


def _check_param(key: str, value: Any) -> Any:
    if key == "phases":
        if (
            not isinstance(value, list)
            or not value
            or any(p not in LM_PHASES for p in value)
            or len(set(value)) != len(value)
        ):
            raise ValueError(f"'phases' must be a non-empty list drawn from {list(LM_PHASES)}")
        return [p for p in LM_PHASES if p in value]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'{key}' must be a whole number >= 1, got {value!r}")
    if key == "image_size" and value < 32:
        raise ValueError(f"'image_size' must be >= 32, got {value}")
    return value


def _preset(
    name: str, architecture: str, kind: str, description: str, **defaults: Any
) -> WorkloadPreset:
    if kind == "lm-inference":
        defaults = {"phases": list(LM_PHASES), **defaults}
    return WorkloadPreset(name, architecture, kind, "inference", defaults, description)


PRESETS: dict[str, WorkloadPreset] = {
    p.name: p
    for p in (
        _preset(
            "slm-135m",
            "smollm2-135m",
            "lm-inference",
            "SmolLM2-135M architecture: prefill and greedy decode",
            batch=1,
            prompt_tokens=128,
            new_tokens=32,
        ),
        _preset(
            "slm-tiny",
            "tiny-llama",
            "lm-inference",
            "2-layer Llama for tests: prefill and greedy decode",
            batch=1,
            prompt_tokens=16,
            new_tokens=8,
        ),
        _preset(
            "resnet50",
            "resnet50",
            "vision-inference",
            "ResNet-50, 1000 classes: image classification",
            batch=8,
            image_size=224,
        ),
        _preset(
            "resnet-tiny",
            "tiny-resnet",
            "vision-inference",
            "2-stage ResNet for tests: image classification",
            batch=2,
            image_size=64,
        ),
    )
}


def get_preset(name: str) -> WorkloadPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown workload '{name}' (known: {', '.join(PRESETS)})") from None
