"""Export a torch module to an ONNX file, for the kinds that graph runtimes can run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def export_onnx(
    module: Any, args: tuple[Any, ...], path: Path, names: Sequence[str], dynamic: Any = None
) -> None:
    import torch

    module.eval()  # the wrappers are new modules, in training mode; the models inside are not
    torch.onnx.export(
        module, args, str(path), input_names=list(names), dynamic_shapes=dynamic, dynamo=True
    )
