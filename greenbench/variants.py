"""Variants: what is done to a built fp32 model before it is measured.

A variant name is a base (precision or quantization) with an optional `+compile` suffix:
`fp32`, `bf16+compile`, `int8-dynamic`. Precision bases cast the model for inference and use
autocast for training (the weights stay fp32 there, as mixed-precision training does).
Quantization bases are inference-only.

A variant that does not apply is skipped with the reason, never failed. Reasons known from the
names alone (task, model family, device type) are found before a child process starts;
reasons that need the device itself (compute capability) are found in the child. Which devices
a variant runs on is each backend's to say (greenbench/backends); this module knows only what a
variant does to a torch model.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Any

from greenbench.tasks.base import WorkloadKind

COMPILE_SUFFIX = "+compile"
BASELINE = "fp32"


@dataclass(frozen=True)
class Base:
    name: str
    description: str
    training: bool = True  # whether training workloads can use it
    linear_only: bool = False  # quantizes nn.Linear layers only (LMs, not CNNs)
    needs: str | None = None  # an importable package


BASES: dict[str, Base] = {
    b.name: b
    for b in (
        Base("fp32", "float32 weights and activations"),
        Base("bf16", "bfloat16: weights cast for inference, autocast for training"),
        Base("fp16", "float16: weights cast for inference, autocast (+ grad scaling) for training"),
        Base(
            "int8-dynamic",
            "int8 weights, activations quantized per call (torch dynamic quantization)",
            training=False,
            linear_only=True,
        ),
        Base(
            "int8-wo",
            "int8 weight-only (torchao); activations bf16 on GPUs, fp32 on the CPU",
            training=False,
            linear_only=True,
            needs="torchao",
        ),
        Base(
            "int4-wo",
            "int4 weight-only, groups of up to 128 on GPUs (tinygemm) and 32 on the CPU (torchao)",
            training=False,
            linear_only=True,
            needs="torchao",
        ),
        Base(
            "fp8",
            "float8 e4m3 weights and activations, per-row scales (torchao)",
            training=False,
            linear_only=True,
            needs="torchao",
        ),
    )
}


@dataclass(frozen=True)
class Variant:
    name: str
    base: Base
    compiled: bool

    @property
    def description(self) -> str:
        suffix = ", torch.compile" if self.compiled else ", eager"
        return self.base.description + suffix

    @property
    def is_baseline(self) -> bool:
        """fp32 eager is what every other variant's fidelity is scored against."""
        return self.name == BASELINE

    def skip_reason(self, kind: WorkloadKind) -> str | None:
        """Why this variant cannot run a workload of `kind` on any device, or None."""
        base = self.base
        own = kind.variant_skip(self.name) if kind.variant_skip else None
        if own:
            return own
        if kind.task == "training" and not base.training:
            return f"{base.name} is an inference variant; training runs fp32, bf16 or fp16"
        if base.linear_only and not kind.linear_quantization:
            return (
                f"{base.name} quantizes Linear layers only; a convolutional network would stay "
                "fp32 in its convolutions"
            )
        return None

    def missing_package(self) -> str | None:
        """Why this variant cannot run here for want of a package, or None."""
        needs = self.base.needs
        if needs and importlib.util.find_spec(needs) is None:
            return f"{self.base.name} needs the {needs} package: pip install {needs}"
        return None

    def autocast_dtype(self) -> Any:
        """The autocast dtype for training, or None for full fp32."""
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.base.name)

    def prepare_for_inference(self, model: Any, device: str) -> Any:
        """The fp32 `model`, already on `device`, turned into this variant (in place if it can)."""
        model = _INFERENCE[self.base.name](model, device)
        return compile_model(model) if self.compiled else model

    @property
    def quantizes(self) -> bool:
        """Whether it quantizes Linear layers (and may leave some it cannot take as they were)."""
        return self.base.linear_only

    def prepare_for_training(self, model: Any) -> Any:
        return compile_model(model) if self.compiled else model


def compile_model(model: Any) -> Any:
    import torch

    return torch.compile(model)


def _cast(dtype_name: str):
    def apply(model: Any, device: str) -> Any:
        import torch

        return model.to(getattr(torch, dtype_name))

    return apply


def _int8_dynamic(model: Any, device: str) -> Any:
    import torch

    with warnings.catch_warnings():  # deprecated in favour of torchao, still the fast CPU path
        warnings.simplefilter("ignore")
        quantize_dynamic = getattr(torch.ao.quantization, "quantize_dynamic", None)
        if quantize_dynamic is not None:
            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    # removed from newer torch: torchao's equivalent (slower on CPUs without compile)
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return model


def _torchao(make_config: Any):
    def apply(model: Any, device: str) -> Any:
        import torch
        from torchao.quantization import quantize_

        kind = torch.device(device).type
        if kind == "cuda":
            model = model.to(torch.bfloat16)  # torchao's GPU kernels take bf16 activations
        quantize_(model, make_config(kind, model))
        return model

    return apply


def _int8_wo_config(kind: str, model: Any) -> Any:
    from torchao.quantization import Int8WeightOnlyConfig

    return Int8WeightOnlyConfig()


def int4_group_size(in_features: list[int], choices: tuple[int, ...] = (128, 64, 32)) -> int:
    """The largest group size dividing every Linear's input width: torchao leaves a layer it
    does not divide unquantized (SmolLM2-135M's 576-wide layers with 128, say)."""
    for size in choices:
        if all(width % size == 0 for width in in_features):
            return size
    return choices[-1]


def _int4_wo_config(kind: str, model: Any) -> Any:
    if kind == "cuda":
        from torchao.quantization import Int4WeightOnlyConfig

        widths = [m.in_features for m in model.modules() if _is_linear(m)]
        return Int4WeightOnlyConfig(
            group_size=int4_group_size(widths), int4_packing_format="tile_packed_to_4d"
        )
    import torch
    from torchao.quantization import IntxWeightOnlyConfig, PerGroup

    int4 = torch.int4  # type: ignore[attr-defined]  # in torch >= 2.5; its stubs lack it
    return IntxWeightOnlyConfig(weight_dtype=int4, granularity=PerGroup(32))


def _fp8_config(kind: str, model: Any) -> Any:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())


_INFERENCE = {
    "fp32": _cast("float32"),
    "bf16": _cast("bfloat16"),
    "fp16": _cast("float16"),
    "int8-dynamic": _int8_dynamic,
    "int8-wo": _torchao(_int8_wo_config),
    "int4-wo": _torchao(_int4_wo_config),
    "fp8": _torchao(_fp8_config),
}


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)


def _is_matmul_layer(module: Any) -> bool:
    """A Linear, or transformers' Conv1D (GPT-2's blocks): a Linear with its weight transposed,
    which the quantization variants leave in the model's precision."""
    from transformers.pytorch_utils import Conv1D

    return _is_linear(module) or isinstance(module, Conv1D)


def linear_weight_sizes(model: Any) -> dict[str, int]:
    """Each Linear (or Conv1D) layer's weight elements, by module name: taken before
    quantizing."""
    return {name: m.weight.numel() for name, m in model.named_modules() if _is_matmul_layer(m)}


def quantized_share(model: Any, sizes: dict[str, int]) -> float:
    """The share of those Linear weight elements that a quantization variant actually quantized:
    a layer counts when it was replaced (torch dynamic quantization) or its weight became a
    quantized tensor subclass (torchao); a layer still holding a plain tensor does not."""
    import torch

    modules = dict(getattr(model, "_orig_mod", model).named_modules())  # through torch.compile

    def quantized(module: Any) -> bool:
        if module is None:
            return False
        return not _is_matmul_layer(module) or type(module.weight.data) is not torch.Tensor

    total = sum(sizes.values())
    done = sum(n for name, n in sizes.items() if quantized(modules.get(name)))
    return done / total if total else float("nan")


def get_variant(name: str) -> Variant:
    """`bf16+compile` -> Variant(bf16, compiled); KeyError naming the known ones."""
    base_name, suffix, rest = name.partition(COMPILE_SUFFIX)
    if base_name not in BASES or rest:
        raise KeyError(
            f"unknown variant '{name}' (known: {', '.join(BASES)}; "
            f"add {COMPILE_SUFFIX} to any for torch.compile)"
        )
    return Variant(name, BASES[base_name], compiled=bool(suffix))


def variant_order(name: str) -> tuple[int, bool, str]:
    """Sort key: fp32 first, then the catalogue's order, eager before compiled."""
    base, suffix, _ = name.partition(COMPILE_SUFFIX)
    names = list(BASES)
    return (names.index(base) if base in names else len(names), bool(suffix), name)


def known_variants() -> list[Variant]:
    return [get_variant(name) for name in BASES]
