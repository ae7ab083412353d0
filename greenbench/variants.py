"""Variants: what is done to a built model before it is measured (precision, quantization, ...).

Only `fp32` exists so far; each variant knows when it does not apply, so a suite records a
skip with the reason instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    apply: Callable[[Any], Any]  # model -> model, still on the CPU
    skip_reason: Callable[[str, str], str | None]  # (workload, device) -> reason or None


def _fp32(model: Any) -> Any:
    return model.float()


def _always_applies(workload: str, device: str) -> None:
    return None


VARIANTS: dict[str, Variant] = {
    "fp32": Variant("fp32", "float32 weights and activations, eager", _fp32, _always_applies),
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant '{name}' (known: {', '.join(VARIANTS)})") from None
