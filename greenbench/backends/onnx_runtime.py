"""The ONNX Runtime backend: export the torch model to ONNX, run it with an execution provider.

Devices are `onnxruntime:PROVIDER` (CPU, CUDA, OpenVINO, QNN, VitisAI, DirectML). The same
workloads and phases as torch: a vision forward; an LM prefill graph (prompt -> last-position
logits and the KV cache) and a one-token decode-step graph (token + cache -> logits + cache),
so decode runs exactly N greedy steps from the prefilled cache, as on torch. Variants: fp32, and
int8-dynamic through onnxruntime.quantization. Fidelity compares with torch fp32 eager.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError
from greenbench.protocol import Phase

PREFIX = "onnxruntime"
# what --device says -> (execution provider, the pip package that brings it)
PROVIDERS = {
    "CPU": ("CPUExecutionProvider", "onnxruntime"),
    "CUDA": ("CUDAExecutionProvider", "onnxruntime-gpu"),
    "OpenVINO": ("OpenVINOExecutionProvider", "onnxruntime-openvino"),
    "QNN": ("QNNExecutionProvider", "onnxruntime-qnn"),
    "VitisAI": ("VitisAIExecutionProvider", "onnxruntime-vitisai"),
    "DirectML": ("DmlExecutionProvider", "onnxruntime-directml"),
}
VARIANTS = ("fp32", "int8-dynamic")


def parse(name: str) -> str:
    """`onnxruntime:cpu` -> `onnxruntime:CPU`; ValueError naming the providers."""
    _, _, provider = name.partition(":")
    for known in PROVIDERS:
        if provider.lower() == known.lower():
            return f"{PREFIX}:{known}"
    raise ValueError(
        f"unknown ONNX Runtime provider '{provider}' (known: "
        f"{', '.join(f'{PREFIX}:{p}' for p in PROVIDERS)})"
    )


def provider_of(device: str) -> str:
    return PROVIDERS[device.partition(":")[2]][0]


def check_available(device: str) -> None:
    provider, package = PROVIDERS[device.partition(":")[2]]
    try:
        import onnxruntime
    except ImportError:
        raise GreenbenchError(
            f"device '{device}' needs ONNX Runtime: pip install 'greenbench[onnx]'"
        ) from None
    if provider not in onnxruntime.get_available_providers():
        raise GreenbenchError(
            f"device '{device}' is not available: this onnxruntime has no {provider}; install "
            f"{package} (and its driver) instead of onnxruntime"
        )


def skip_reason(task: str, variant: str) -> str | None:
    if task == "training":
        return "ONNX Runtime runs inference workloads; train with torch devices"
    if variant not in VARIANTS:
        return f"ONNX Runtime runs {' and '.join(VARIANTS)}, not {variant}"
    return None


def _export(module: Any, args: tuple, path: Path, names: list[str], dynamic: Any = None) -> None:
    import torch

    module.eval()  # the wrappers are new modules, in training mode; the models inside are not
    torch.onnx.export(
        module, args, str(path), input_names=names, dynamic_shapes=dynamic, dynamo=True
    )


def _quantize(path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_name(path.stem + ".int8.onnx")
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8)
    return out


def _session(path: Path, device: str) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=[provider_of(device)])


def _vision_module(model: Any) -> Any:
    """A module with plain tensor input and output, which ONNX export needs."""
    import torch

    class Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return self.model(pixel_values=pixel_values).logits

    return Vision()


def _lm_modules(model: Any) -> tuple[Any, Any, Any]:
    """(full-logits graph for fidelity, prefill graph, decode-step graph)."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers

    def flat(cache: Any) -> list[Any]:
        out = []
        for layer in cache.layers:
            out += [layer.keys, layer.values]
        return out

    class Full(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> Any:
            return self.model(input_ids=input_ids, use_cache=False).logits

    class Prefill(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> tuple:
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            return (out.logits, *flat(out.past_key_values))

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, *kv: Any) -> tuple:
            cache = DynamicCache()
            for i in range(layers):
                cache.update(kv[2 * i], kv[2 * i + 1], i)
            out = self.model(
                input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1
            )
            return (out.logits, *flat(out.past_key_values))

    return Full(), Prefill(), Step()


Session = Callable[[Path], Any]  # an ONNX file -> an object with .run(None, feed) -> outputs


def ort_session(device: str, variant: str) -> Session:
    def make(path: Path) -> Any:
        return _session(_quantize(path) if variant == "int8-dynamic" else path, device)

    return make


def prepare(
    kind: str,
    model: Any,
    params: Mapping[str, Any],
    device: str,
    variant: str,
    session: Session | None = None,
) -> tuple[list[Phase], Any]:
    """Export to ONNX and open the graphs with `session` (ONNX Runtime's by default).

    Returns the phases and the logits on the fidelity inputs, to score against torch.
    """
    workdir = Path(tempfile.mkdtemp(prefix="greenbench-onnx-"))
    session = session or ort_session(device, variant)
    if kind == "vision-inference":
        return _vision(model, params, session, workdir)
    if kind == "lm-inference":
        return _lm(model, params, session, workdir)
    raise GreenbenchError(f"no graph-runtime task for workload kind '{kind}'")


def _vision(model, params, make_session, workdir) -> tuple[list[Phase], Any]:
    import numpy as np
    import torch

    from greenbench.tasks.vision_inference import FIDELITY_IMAGES, random_images

    batch = params["batch"]
    images = random_images(model, batch, params["image_size"], "cpu", seed=0)
    path = workdir / "vision.onnx"
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 12)
    _export(
        _vision_module(model), (images,), path, ["pixel_values"], {"pixel_values": {0: batch_dim}}
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


def _lm(model, params, make_session, workdir) -> tuple[list[Phase], Any]:
    import numpy as np
    import torch

    from greenbench.tasks.lm_inference import make_prompt

    batch, new_tokens = params["batch"], params["new_tokens"]
    prompt = make_prompt(model, params, "cpu")
    full, prefill_module, step_module = _lm_modules(model)
    layers = model.config.num_hidden_layers
    names = [f"past_{i}" for i in range(2 * layers)]

    with torch.no_grad():
        first = prefill_module(prompt)
    token = first[0][:, -1].argmax(-1, keepdim=True)
    length = torch.export.Dim("cache_length", min=2, max=1 << 16)
    paths = {name: workdir / f"{name}.onnx" for name in ("full", "prefill", "step")}
    _export(full, (prompt,), paths["full"], ["input_ids"])
    _export(prefill_module, (prompt,), paths["prefill"], ["input_ids"])
    _export(
        step_module,
        (token, *first[1:]),
        paths["step"],
        ["input_ids", *names],
        {"input_ids": None, "kv": tuple({2: length} for _ in names)},
    )
    sessions = {k: make_session(p) for k, p in paths.items()}
    prompt_feed = {"input_ids": prompt.numpy()}
    state: dict[str, Any] = {}

    def prefill() -> Any:
        return sessions["prefill"].run(None, prompt_feed)

    def reset_decode() -> None:
        out = prefill()
        state["first"] = out[0][:, -1].argmax(-1)[:, None].astype(np.int64)
        state["cache"] = out[1:]  # kept as is: every call starts from the prompt's cache

    def decode() -> Any:
        token, cache = state["first"], state["cache"]
        for _ in range(new_tokens):
            feed = {"input_ids": token, **dict(zip(names, cache, strict=True))}
            out = sessions["step"].run(None, feed)
            token, cache = out[0][:, -1].argmax(-1)[:, None].astype(np.int64), out[1:]
        return token

    phases = {
        "prefill": Phase("prefill", "token", batch * params["prompt_tokens"], prefill),
        "decode": Phase("decode", "token", batch * new_tokens, decode, reset=reset_decode),
    }
    logits = torch.from_numpy(sessions["full"].run(None, prompt_feed)[0])
    return [phases[name] for name in params["phases"]], logits
