"""Image-classification inference: one forward pass over a batch of images (J per image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from greenbench.protocol import Phase


def make_phases(model: Any, params: Mapping[str, Any], device: str) -> list[Phase]:
    batch, size = params["batch"], params["image_size"]
    generator = torch.Generator().manual_seed(0)
    channels = model.config.num_channels
    images = torch.randn(batch, channels, size, size, generator=generator).to(device)

    @torch.inference_mode()
    def forward() -> Any:
        return model(pixel_values=images).logits

    return [Phase("forward", "image", batch, forward)]
