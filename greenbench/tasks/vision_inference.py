"""Image-classification inference: one forward pass over a batch of images (J per image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenbench.protocol import Phase
from greenbench.tasks.base import (
    Params,
    SessionFactory,
    WorkloadKind,
    input_dtype,
    whole_number_at_least,
)
from greenbench.tasks.onnx_export import export_onnx

FIDELITY_IMAGES = 32  # a forward batch is often 8 images: too few to state an agreement rate
# the vision kinds' own parameter rules (training shares them)
IMAGE_PARAMS = {"image_size": whole_number_at_least("image_size", 32)}


def random_images(model: Any, count: int, size: int, device: str, seed: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, model.config.num_channels, size, size, generator=generator)
    return images.to(device, input_dtype(model))


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Class logits for FIDELITY_IMAGES fixed images, run in batches of the workload's size."""
    import torch

    images = random_images(model, FIDELITY_IMAGES, params["image_size"], device, seed=1)
    with torch.inference_mode():
        return torch.cat([model(pixel_values=b).logits for b in images.split(params["batch"])])


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    batch = params["batch"]
    images = random_images(model, batch, params["image_size"], device, seed=0)

    @torch.inference_mode()
    def forward() -> Any:
        return model(pixel_values=images).logits

    return [Phase("forward", "image", batch, forward)]


def _graph_module(model: Any) -> Any:
    """A module with plain tensor input and output, which ONNX export needs."""
    import torch

    class Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return self.model(pixel_values=pixel_values).logits

    return Vision()


def export_graphs(
    model: Any, params: Params, make_session: SessionFactory, workdir: Path
) -> tuple[list[Phase], Any]:
    """The forward phase on a graph runtime, and its logits on the fidelity images."""
    import numpy as np
    import torch

    batch = params["batch"]
    images = random_images(model, batch, params["image_size"], "cpu", seed=0)
    path = workdir / "vision.onnx"
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 12)
    export_onnx(
        _graph_module(model), (images,), path, ["pixel_values"], {"pixel_values": {0: batch_dim}}
    )
    session = make_session(path)
    feed = {"pixel_values": images.numpy()}

    def forward() -> Any:
        return session.run(None, feed)[0]

    checks = random_images(model, FIDELITY_IMAGES, params["image_size"], "cpu", seed=1)
    logits = np.concatenate(
        [session.run(None, {"pixel_values": b.numpy()})[0] for b in checks.split(batch)]
    )
    return [Phase("forward", "image", batch, forward)], torch.from_numpy(logits)


KIND = WorkloadKind(
    name="vision-inference",
    task="inference",
    phases={"forward": "image"},
    make_phases=make_phases,
    fidelity_logits=fidelity_logits,
    export_graphs=export_graphs,
    param_rules=IMAGE_PARAMS,
)
