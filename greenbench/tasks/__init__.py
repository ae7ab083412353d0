"""What a cell does: turn a built model into the phases the protocol measures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenbench.protocol import Phase


def make_phases(kind: str, model: Any, params: Mapping[str, Any], device: str) -> list[Phase]:
    if kind == "lm-inference":
        from greenbench.tasks import lm_inference

        return lm_inference.make_phases(model, params, device)
    if kind == "vision-inference":
        from greenbench.tasks import vision_inference

        return vision_inference.make_phases(model, params, device)
    raise ValueError(f"no task for workload kind '{kind}'")
