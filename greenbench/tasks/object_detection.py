"""Object-detection inference (DETR-like): one forward pass over a batch of images (J per image).

A DETR-like model answers every image with a fixed set of object queries, each a class logit
vector over the labels plus "no object" and a box. Fidelity scores the queries' class logits
against fp32; the boxes are not scored.

Linear-only quantization does not cover DETR: its ResNet backbone holds most of the weights in
convolutions, so the kind leaves `linear_quantization` off and the presets and `hf:` checkpoints
turn it on only for models that are Linear-heavy enough (workloads.LINEAR_COVERAGE, e.g. YOLOS).
"""

from __future__ import annotations

from typing import Any

from greenbench.tasks.base import Params, WorkloadKind

# the measured phase is the classifiers' (a forward pass over a batch of seeded random images)
from greenbench.tasks.vision_inference import IMAGE_PARAMS, make_phases, random_images

# an image gives one prediction per object query (100 for DETR): a few images are enough, and
# more would make scoring a full-size model at 800 px take longer than its measurement
FIDELITY_IMAGES = 4


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """The queries' class logits (images x queries x labels + 1) for FIDELITY_IMAGES fixed
    images, run in batches of the workload's size."""
    import torch

    images = random_images(model, FIDELITY_IMAGES, params["image_size"], device, seed=1)
    with torch.inference_mode():
        return torch.cat([model(pixel_values=b).logits for b in images.split(params["batch"])])


KIND = WorkloadKind(
    name="object-detection",
    task="inference",
    phases={"forward": "image"},
    make_phases=make_phases,
    fidelity_logits=fidelity_logits,
    param_rules=IMAGE_PARAMS,
)
