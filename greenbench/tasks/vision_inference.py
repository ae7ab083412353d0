"""Image-classification inference: one forward pass over a batch of images (J per image).

Real inputs: `images = FOLDER` (inputs.py) feeds the measured batch (its first `batch` images,
starting over when it has fewer) and fidelity (its first EVAL_IMAGES). A folder laid out by
class (FOLDER/CLASS/*.jpg) also gives top-1 accuracy, its class names matched to the model's
id2label. Images are prepared by the checkpoint's image processor (preprocessor_config.json)
when it has one, else by DEFAULT_PREPROCESSING; either way they end `image_size` square.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenbench.inputs import ImageSet, cycled, input_path, label_ids, list_images
from greenbench.preprocessors import (
    has_image_processor,
    id2label,
    load_image_processor,
    model_source,
)
from greenbench.protocol import Phase
from greenbench.quality import Quality, top1_accuracy
from greenbench.tasks.base import (
    InputParam,
    Params,
    SessionFactory,
    WorkloadKind,
    input_dtype,
    whole_number_at_least,
)
from greenbench.tasks.onnx_export import export_onnx

FIDELITY_IMAGES = 32  # a forward batch is often 8 images: too few to state an agreement rate
EVAL_IMAGES = 256  # the real images fidelity and accuracy read, in sorted order
# without an image processor: RGB, resized to image_size x image_size (bilinear), scaled to
# [0, 1] and normalised with ImageNet's mean and standard deviation
DEFAULT_PREPROCESSING = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# the vision kinds' own parameter rules (training shares them)
IMAGE_PARAMS = {"image_size": whole_number_at_least("image_size", 32)}


def _check_images(value: Any) -> str:
    path = input_path("images", value)
    list_images(path)
    return str(path)


def _check_labels(value: Any, source: str | None, config: Mapping[str, Any] | None) -> None:
    """A folder laid out by class must name the model's labels: accuracy means nothing else."""
    images = list_images(Path(value))
    if images.classes is not None:
        label_ids(images.class_names, id2label(config), images.folder)


IMAGE_INPUTS = {"images": InputParam(_check_images, _check_labels)}


def load_images(model: Any, paths: list[Path], size: int) -> Any:
    """Images as the model's pixel_values (count, channels, size, size)."""
    import torch
    from PIL import Image

    mode = "L" if model.config.num_channels == 1 else "RGB"
    pictures = []
    for path in paths:
        with Image.open(path) as image:
            pictures.append(image.convert(mode))
    source = model_source(model)
    if source and has_image_processor(source):
        pixels = load_image_processor(source)(images=pictures, return_tensors="pt")["pixel_values"]
        if pixels.shape[-2:] != (size, size):
            pixels = torch.nn.functional.interpolate(
                pixels, size=(size, size), mode="bilinear", align_corners=False
            )
    else:
        resized = [p.resize((size, size), Image.Resampling.BILINEAR) for p in pictures]
        pixels = torch.stack([_to_tensor(p) for p in resized])
        channels = pixels.shape[1]
        mean = torch.tensor(DEFAULT_PREPROCESSING["mean"][:channels]).view(1, -1, 1, 1)
        std = torch.tensor(DEFAULT_PREPROCESSING["std"][:channels]).view(1, -1, 1, 1)
        pixels = (pixels - mean) / std
    return pixels.to(input_dtype(model))


def _to_tensor(picture: Any) -> Any:
    import numpy as np
    import torch

    array = np.asarray(picture, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1)


def _image_set(params: Params) -> ImageSet | None:
    folder = params.get("images")
    return list_images(Path(folder)) if folder else None


def phase_images(model: Any, params: Params, device: str) -> Any:
    """The measured batch: the folder's first images, else random ones (seeded)."""
    images = _image_set(params)
    if images is None:
        return random_images(model, params["batch"], params["image_size"], device, seed=0)
    paths = cycled(images.paths, params["batch"])
    return load_images(model, paths, params["image_size"]).to(device)


def fidelity_images(model: Any, params: Params, device: str) -> Any:
    images = _image_set(params)
    if images is None:
        return random_images(model, FIDELITY_IMAGES, params["image_size"], device, seed=1)
    paths = list(images.paths[:EVAL_IMAGES])
    return load_images(model, paths, params["image_size"]).to(device)


def random_images(model: Any, count: int, size: int, device: str, seed: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, model.config.num_channels, size, size, generator=generator)
    return images.to(device, input_dtype(model))


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Class logits for the real images (else FIDELITY_IMAGES random ones), in batches of the
    workload's size."""
    import torch

    images = fidelity_images(model, params, device)
    with torch.inference_mode():
        return torch.cat([model(pixel_values=b).logits for b in images.split(params["batch"])])


def quality(model: Any, params: Params, device: str) -> Quality | None:
    """Top-1 accuracy on a folder laid out by class (None otherwise)."""
    images = _image_set(params)
    if images is None or images.classes is None:
        return None
    classes = images.classes[:EVAL_IMAGES]
    labels = label_ids(classes, id2label(model.config.to_dict()), images.folder)
    return top1_accuracy(fidelity_logits(model, params, device), labels)


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    batch = params["batch"]
    images = phase_images(model, params, device)

    @torch.inference_mode()
    def forward() -> Any:
        return model(pixel_values=images).logits

    return [Phase("forward", "image", batch, forward)]


def graph_module(model: Any) -> Any:
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
    images = phase_images(model, params, "cpu")
    path = workdir / "vision.onnx"
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 12)
    export_onnx(
        graph_module(model), (images,), path, ["pixel_values"], {"pixel_values": {0: batch_dim}}
    )
    session = make_session(path)
    feed = {"pixel_values": images.numpy()}

    def forward() -> Any:
        return session.run(None, feed)[0]

    checks = fidelity_images(model, params, "cpu")
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
    input_params=IMAGE_INPUTS,
    quality=quality,
)
