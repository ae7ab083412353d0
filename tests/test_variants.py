"""Each variant applied to the tiny presets on the CPU; the rules that skip a variant."""

import pytest
import torch

from greenbench.backends import backend_for, skip_reason
from greenbench.models import build_model
from greenbench.tasks import fidelity_logits, input_dtype
from greenbench.variants import (
    BASES,
    get_variant,
    int4_group_size,
    linear_weight_sizes,
    quantized_share,
    variant_order,
)
from greenbench.workloads import PRESETS

LM = PRESETS["slm-tiny"]
CNN = PRESETS["resnet-tiny"]


def prepared(variant: str, preset=LM):
    model = build_model(preset.architecture)
    return get_variant(variant).prepare_for_inference(model, "cpu"), preset


def logits(model, preset):
    return fidelity_logits(preset.kind, model, preset.defaults, "cpu")


@pytest.mark.parametrize(("variant", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
@pytest.mark.parametrize("preset", [LM, CNN], ids=["lm", "cnn"])
def test_precision_variants_cast_weights_and_outputs(variant, dtype, preset):
    model, preset = prepared(variant, preset)
    assert input_dtype(model) == dtype
    assert all(p.dtype == dtype for p in model.parameters() if p.is_floating_point())
    out = logits(model, preset)
    expected = (1, 16, 512) if preset is LM else (32, 10)
    assert out.shape == expected and out.dtype == dtype


def test_fp16_casts_the_cnn_too():
    model, preset = prepared("fp16", CNN)
    assert logits(model, preset).dtype == torch.float16


def test_int8_dynamic_replaces_every_linear_layer():
    model, preset = prepared("int8-dynamic")
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    quantized = [m for m in model.modules() if type(m).__name__ == "Linear" and m not in linears]
    assert not linears and len(quantized) == 2 * 7 + 1  # 7 per layer, and the LM head
    assert all("quantized" in type(m).__module__ for m in quantized)
    out = logits(model, preset)
    assert out.shape == (1, 16, 512) and out.dtype == torch.float32


@pytest.mark.parametrize(("variant", "tensor_type"), [("int8-wo", "Int8"), ("int4-wo", "Intx")])
def test_weight_only_variants_hold_quantized_weights(variant, tensor_type):
    model, preset = prepared(variant)
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert weights and all(tensor_type in type(w).__name__ for w in weights)
    assert logits(model, preset).shape == (1, 16, 512)


@pytest.mark.parametrize("variant", ["int8-dynamic", "int8-wo", "int4-wo", "int8-wo+compile"])
def test_quantization_variants_quantize_every_linear_weight_of_the_presets(variant):
    model = build_model(LM.architecture)
    sizes = linear_weight_sizes(model)
    assert quantized_share(model, sizes) == 0.0
    model = get_variant(variant).prepare_for_inference(model, "cpu")
    assert quantized_share(model, sizes) == 1.0  # through torch.compile's wrapper too


def test_a_layer_left_unquantized_lowers_the_share():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = build_model(LM.architecture)
    sizes = linear_weight_sizes(model)
    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: fqn == "lm_head")
    assert quantized_share(model, sizes) == pytest.approx(sizes["lm_head"] / sum(sizes.values()))


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


def test_compile_suffix_wraps_the_model_and_still_runs():
    model, preset = prepared("fp32+compile")
    assert type(model).__name__ == "OptimizedModule"
    eager = logits(build_model(LM.architecture), preset)
    torch.testing.assert_close(logits(model, preset), eager, rtol=1e-4, atol=1e-4)


def test_names_parse_into_base_and_compile_flag():
    variant = get_variant("bf16+compile")
    assert (variant.base.name, variant.compiled) == ("bf16", True)
    assert "torch.compile" in variant.description
    assert not get_variant("fp32").compiled and get_variant("fp32").is_baseline
    assert not get_variant("fp32+compile").is_baseline
    for bad in ("int3", "bf16+compile+compile", "bf16+", "+compile"):
        with pytest.raises(KeyError, match="unknown variant"):
            get_variant(bad)


def test_order_puts_fp32_first_and_compiled_after_eager():
    names = ["int8-dynamic", "bf16+compile", "fp32", "bf16", "zzz"]
    assert sorted(names, key=variant_order) == [
        "fp32",
        "bf16",
        "bf16+compile",
        "int8-dynamic",
        "zzz",
    ]


def reason(variant, workload, device="cpu"):
    return skip_reason(PRESETS[workload].kind, get_variant(variant), device)


@pytest.mark.parametrize(
    ("variant", "workload", "device", "expected"),
    [
        ("fp8", "slm-tiny", "cpu", "fp8 runs on cuda, not cpu"),
        ("int8-dynamic", "slm-tiny", "cuda:0", "runs on cpu, not cuda"),
        ("int8-wo", "slm-tiny-train", "cpu", "inference variant"),
        ("int4-wo", "resnet-tiny", "cpu", "Linear layers only"),
        ("int8-dynamic+compile", "slm-tiny-train", "cpu", "inference variant"),
    ],
)
def test_variants_that_do_not_apply_give_the_reason(variant, workload, device, expected):
    assert expected in reason(variant, workload, device)


def test_variants_that_apply_have_no_reason():
    for name in ("fp32", "bf16", "fp16", "bf16+compile"):
        for workload in ("resnet-tiny", "resnet-tiny-train"):
            assert reason(name, workload) is None
    for name in ("int8-dynamic", "int8-wo", "int4-wo"):
        assert reason(name, "slm-tiny") is None


def test_missing_package_is_a_skip_naming_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "torchao" else real(name)
    )
    assert reason("int8-wo", "slm-tiny") == "int8-wo needs the torchao package: pip install torchao"


def test_compute_capability_below_the_minimum_is_a_skip(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100")
    cuda = backend_for("cuda:0")
    assert cuda.device_skip_reason(get_variant("fp8"), "cuda:0") == (
        "fp8 needs compute capability >= 8.9; NVIDIA A100 has 8.0"
    )
    assert cuda.device_skip_reason(get_variant("bf16"), "cuda:0") is None
    assert backend_for("cpu").device_skip_reason(get_variant("fp8"), "cpu") is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert "needs compute capability >= 8.0" in cuda.device_skip_reason(
        get_variant("int4-wo"), "cuda"
    )


def test_every_base_states_its_devices_and_training_support():
    assert set(BASES) == {"fp32", "bf16", "fp16", "int8-dynamic", "int8-wo", "int4-wo", "fp8"}
    assert {b.name for b in BASES.values() if b.training} == {"fp32", "bf16", "fp16"}


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
