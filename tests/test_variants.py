"""What each variant does to a model (tiny presets, on the CPU), and why one that does not apply
is skipped: the skip reasons through greenbench.api.skip_reason, the check run before a cell."""

import math

import pytest
import torch

from greenbench.api import skip_reason
from greenbench.backends import backend_for
from greenbench.models import build_model
from greenbench.suite import Cell
from greenbench.tasks import fidelity_logits, input_dtype
from greenbench.variants import (
    BASES,
    get_variant,
    int4_group_size,
    linear_weight_sizes,
    quantized_share,
    variant_order,
)
from greenbench.workloads import get_preset

LM = get_preset("slm-tiny")
CNN = get_preset("resnet-tiny")


def prepared(variant: str, preset=LM):
    model = build_model(preset.architecture)
    return get_variant(variant).prepare_for_inference(model, "cpu"), preset


def logits(model, preset):
    return fidelity_logits(preset.kind, model, preset.defaults, "cpu")


def eager_fp32_logits(preset):
    return logits(build_model(preset.architecture), preset)


def skip(workload: str, variant: str, device: str = "cpu") -> str | None:
    params = get_preset(workload).resolve_params({})
    return skip_reason(Cell(workload, variant, device, params))


# --- what a variant does to the model


@pytest.mark.parametrize(
    ("variant", "dtype"),
    [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)],
)
@pytest.mark.parametrize("preset", [LM, CNN], ids=["lm", "cnn"])
def test_precision_variants_cast_weights_and_outputs(variant, dtype, preset):
    model, preset = prepared(variant, preset)
    assert input_dtype(model) == dtype
    assert all(p.dtype == dtype for p in model.parameters() if p.is_floating_point())
    out = logits(model, preset)
    assert out.shape == eager_fp32_logits(preset).shape and out.dtype == dtype


def test_int8_dynamic_replaces_every_linear_layer_with_a_quantized_one():
    model = build_model(LM.architecture)
    linear_names = set(linear_weight_sizes(model))
    assert linear_names
    model = get_variant("int8-dynamic").prepare_for_inference(model, "cpu")
    modules = dict(model.named_modules())
    assert not [n for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
    assert all("quantized" in type(modules[n]).__module__ for n in linear_names)
    out = logits(model, LM)
    assert out.shape == eager_fp32_logits(LM).shape and out.dtype == torch.float32


@pytest.mark.parametrize(("variant", "tensor_type"), [("int8-wo", "Int8"), ("int4-wo", "Intx")])
def test_weight_only_variants_hold_quantized_weights(variant, tensor_type):
    model, preset = prepared(variant)
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert weights and all(tensor_type in type(w).__name__ for w in weights)
    assert logits(model, preset).shape == eager_fp32_logits(preset).shape


@pytest.mark.parametrize("variant", ["int8-dynamic", "int8-wo", "int4-wo", "int8-wo+compile"])
def test_quantization_variants_quantize_every_linear_weight_of_the_presets(variant):
    model = build_model(LM.architecture)
    sizes = linear_weight_sizes(model)
    assert quantized_share(model, sizes) == 0.0
    model = get_variant(variant).prepare_for_inference(model, "cpu")
    assert quantized_share(model, sizes) == 1.0  # through torch.compile's wrapper too


class AttentionThenHead(torch.nn.Module):
    """nn.MultiheadAttention's out_proj is a Linear that torch and torchao both leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True)
        self.head = torch.nn.Linear(64, 32)

    def forward(self, x):
        return self.head(self.attn(x, x, x)[0])


@pytest.mark.parametrize("variant", ["int8-dynamic", "int8-wo", "int4-wo"])
def test_a_linear_layer_the_quantizer_skips_lowers_the_share(variant):
    model = AttentionThenHead()
    sizes = linear_weight_sizes(model)
    assert set(sizes) == {"attn.out_proj", "head"}  # the skipped layer is counted in the total
    model = get_variant(variant).prepare_for_inference(model, "cpu")
    assert type(model.attn.out_proj.weight.data) is torch.Tensor  # skipped: still plain
    assert quantized_share(model, sizes) == pytest.approx(sizes["head"] / sum(sizes.values()))


def test_convolutions_are_not_counted_and_no_linear_weights_is_no_share():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert linear_weight_sizes(model) == {}
    assert math.isnan(quantized_share(model, {}))


@pytest.mark.parametrize(
    ("widths", "group"),
    [
        ([576, 1536], 64),  # SmolLM2-135M: 128 would leave every 576-wide layer unquantized
        ([960, 2560], 64),  # SmolLM2-360M
        ([2048, 8192], 128),  # SmolLM2-1.7B
        ([576, 100], 32),  # none divides all: the smallest, and the share says what was left
    ],
)
def test_int4_on_gpus_takes_the_largest_group_that_divides_every_layer(widths, group):
    assert int4_group_size(widths) == group


def test_int4_group_choices_are_tried_largest_first():
    assert int4_group_size([96], choices=(96, 48, 32)) == 96
    assert int4_group_size([48, 96], choices=(96, 48, 32)) == 48


def test_compile_suffix_wraps_the_prepared_model():
    model, _ = prepared("bf16+compile")
    assert type(model).__name__ == "OptimizedModule"
    assert input_dtype(model._orig_mod) == torch.bfloat16  # the base variant, then compile
    eager, _ = prepared("bf16")
    assert type(eager).__name__ != "OptimizedModule"


@pytest.mark.slow
def test_a_compiled_model_runs_and_agrees_with_eager():
    model, preset = prepared("fp32+compile")
    assert type(model).__name__ == "OptimizedModule"
    torch.testing.assert_close(
        logits(model, preset), eager_fp32_logits(preset), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    ("variant", "dtype"), [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_training_keeps_fp32_weights_and_autocasts_to_the_variant(variant, dtype):
    model = build_model(LM.architecture)
    assert get_variant(variant).autocast_dtype() == dtype
    assert get_variant(variant).prepare_for_training(model) is model
    assert input_dtype(model) == torch.float32
    compiled = get_variant(f"{variant}+compile").prepare_for_training(model)
    assert type(compiled).__name__ == "OptimizedModule" and compiled._orig_mod is model


# --- names


@pytest.mark.parametrize(
    ("name", "base", "compiled"),
    [("bf16+compile", "bf16", True), ("bf16", "bf16", False), ("int4-wo+compile", "int4-wo", True)],
)
def test_names_parse_into_base_and_compile_flag(name, base, compiled):
    variant = get_variant(name)
    assert (variant.name, variant.base.name, variant.compiled) == (name, base, compiled)


def test_only_eager_fp32_is_the_baseline_and_descriptions_say_compiled_or_eager():
    assert get_variant("fp32").is_baseline
    assert not get_variant("fp32+compile").is_baseline and not get_variant("bf16").is_baseline
    assert "torch.compile" in get_variant("bf16+compile").description
    assert "torch.compile" not in get_variant("bf16").description


@pytest.mark.parametrize("bad", ["int3", "bf16+compile+compile", "bf16+", "+compile", "BF16"])
def test_unknown_names_are_rejected_naming_the_known_variants(bad):
    with pytest.raises(KeyError, match="unknown variant") as error:
        get_variant(bad)
    message = str(error.value)
    assert f"'{bad}'" in message and "+compile" in message
    assert all(name in message for name in BASES)


def test_order_puts_fp32_first_and_compiled_after_eager():
    names = ["int8-dynamic", "bf16+compile", "fp32", "bf16", "zzz"]
    assert sorted(names, key=variant_order) == [
        "fp32",
        "bf16",
        "bf16+compile",
        "int8-dynamic",
        "zzz",
    ]


# --- why a variant is skipped


@pytest.mark.parametrize("variant", ["fp32", "bf16", "fp16", "bf16+compile"])
@pytest.mark.parametrize(
    "workload", ["slm-tiny", "slm-tiny-train", "resnet-tiny", "resnet-tiny-train"]
)
def test_precision_variants_run_every_workload_on_the_cpu(variant, workload):
    assert skip(workload, variant) is None


@pytest.mark.parametrize("variant", ["int8-dynamic", "int8-wo", "int4-wo", "int8-wo+compile"])
def test_quantization_variants_run_lm_inference_on_the_cpu(variant):
    assert skip("slm-tiny", variant) is None


@pytest.mark.parametrize(
    ("variant", "device"),
    [
        ("int8-dynamic", "cpu"),
        ("int8-wo", "cpu"),
        ("int4-wo", "cpu"),
        ("fp8", "cuda:0"),
        ("int8-dynamic+compile", "cpu"),
    ],
)
def test_quantization_variants_do_not_train(variant, device):
    reason = skip("slm-tiny-train", variant, device)
    assert reason is not None
    assert variant.split("+")[0] in reason and "inference variant" in reason


@pytest.mark.parametrize(("variant", "device"), [("int8-dynamic", "cpu"), ("fp8", "cuda:0")])
def test_quantization_variants_do_not_take_a_convolutional_network(variant, device):
    reason = skip("resnet-tiny", variant, device)
    assert reason is not None and "Linear layers only" in reason


@pytest.mark.parametrize(
    ("variant", "device", "says"),
    [
        ("fp8", "cpu", "fp8 runs on cuda, not cpu"),
        ("int8-dynamic", "cuda:0", "int8-dynamic runs on cpu, not cuda"),
        ("int8-wo", "mps", "int8-wo runs on cpu and cuda, not mps"),
    ],
)
def test_a_variant_on_a_device_it_does_not_run_on_is_skipped(variant, device, says):
    assert says in skip("slm-tiny", variant, device)


def test_a_missing_package_is_a_skip_naming_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a)
    )
    assert skip("slm-tiny", "int8-wo") == "int8-wo needs the torchao package: pip install torchao"
    assert skip("slm-tiny", "int8-dynamic") is None  # torch's own: needs no torchao


def test_compute_capability_below_the_minimum_is_a_skip(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100")

    def in_child(variant, device):  # the check a cell's child makes on its device
        return backend_for(device).device_skip_reason(get_variant(variant), device)

    assert in_child("fp8", "cuda:0") == "fp8 needs compute capability >= 8.9; NVIDIA A100 has 8.0"
    assert in_child("bf16", "cuda:0") is None
    assert in_child("fp8", "cpu") is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert "needs compute capability >= 8.0" in in_child("int4-wo", "cuda")


def test_the_terminal_notes_a_cell_that_left_weights_unquantized():
    import pandas as pd
    from rich.console import Console

    from greenbench.terminal import print_partial_quantization

    frame = pd.DataFrame(
        {
            "cell_id": ["slm/int4-wo/cuda"] * 2 + ["slm/int8-wo/cuda", "slm/fp32/cuda"],
            "quantized_share": [0.197, 0.197, 1.0, None],
        }
    )
    console = Console(record=True, width=200)
    print_partial_quantization(frame, console)
    lines = console.export_text().strip().splitlines()
    assert lines == [
        "note: slm/int4-wo/cuda: 19.7% of its Linear weights were quantized; the rest kept the "
        "model's precision (layers the quantization kernels cannot take)"
    ]
