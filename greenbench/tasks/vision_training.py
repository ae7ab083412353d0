"""Image-classification training steps: SGD with momentum on synthetic images and labels.

J per training image; J per step is in the records too.
"""

from __future__ import annotations

from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import Params, WorkloadKind
from greenbench.tasks.training import make_train_step
from greenbench.tasks.vision_inference import IMAGE_PARAMS, random_images


def make_phases(model: Any, params: Params, device: str, autocast: Any) -> list[Phase]:
    import torch

    batch = params["batch"]
    images = random_images(model, batch, params["image_size"], device, seed=0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, model.config.num_labels, (batch,), generator=generator).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def loss() -> Any:
        return model(pixel_values=images, labels=labels).loss

    step = make_train_step(model, optimizer, loss, device, autocast)
    return [Phase("train", "image", batch, step)]


KIND = WorkloadKind(
    name="vision-training",
    task="training",
    phases={"train": "image"},
    make_phases=make_phases,
    weight_copies=3,  # weights, gradients, SGD's momentum
    param_rules=IMAGE_PARAMS,
)
