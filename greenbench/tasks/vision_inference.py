"""Image-classification inference: one forward pass over a batch of images (J per image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from greenbench.protocol import Phase
from greenbench.tasks import input_dtype

FIDELITY_IMAGES = 32  # a forward batch is often 8 images: too few to state an agreement rate


def random_images(model: Any, count: int, size: int, device: str, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, model.config.num_channels, size, size, generator=generator)
    return images.to(device, input_dtype(model))


@torch.inference_mode()
def fidelity_logits(model: Any, params: Mapping[str, Any], device: str) -> torch.Tensor:
    """Class logits for FIDELITY_IMAGES fixed images, run in batches of the workload's size."""
    images = random_images(model, FIDELITY_IMAGES, params["image_size"], device, seed=1)
    return torch.cat([model(pixel_values=b).logits for b in images.split(params["batch"])])


def make_phases(model: Any, params: Mapping[str, Any], device: str) -> list[Phase]:
    batch = params["batch"]
    images = random_images(model, batch, params["image_size"], device, seed=0)

    @torch.inference_mode()
    def forward() -> Any:
        return model(pixel_values=images).logits

    return [Phase("forward", "image", batch, forward)]
