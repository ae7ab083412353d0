"""Model architectures built from transformers configs, with random weights.

Nothing is downloaded: every preset is a config written out here, so a run is offline and
reproducible. The `slm-*` configs follow SmolLM2's published architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _smollm2_135m() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
    )


def _tiny_llama() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )


def _resnet50() -> Any:
    from transformers import ResNetConfig

    return ResNetConfig(
        num_channels=3,
        embedding_size=64,
        hidden_sizes=[256, 512, 1024, 2048],
        depths=[3, 4, 6, 3],
        layer_type="bottleneck",
        num_labels=1000,
    )


def _tiny_resnet() -> Any:
    from transformers import ResNetConfig

    return ResNetConfig(
        num_channels=3,
        embedding_size=16,
        hidden_sizes=[16, 32],
        depths=[1, 1],
        layer_type="basic",
        num_labels=10,
    )


# architecture name -> (model family, config factory)
ARCHITECTURES: dict[str, tuple[str, Callable[[], Any]]] = {
    "smollm2-135m": ("causal-lm", _smollm2_135m),
    "tiny-llama": ("causal-lm", _tiny_llama),
    "resnet50": ("image-classification", _resnet50),
    "tiny-resnet": ("image-classification", _tiny_resnet),
}


def _model_class(family: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForImageClassification

    return {
        "causal-lm": AutoModelForCausalLM,
        "image-classification": AutoModelForImageClassification,
    }[family]


def build_config(architecture: str) -> Any:
    return ARCHITECTURES[architecture][1]()


def build_model(architecture: str, seed: int = 0) -> Any:
    """Build the architecture with seeded random weights, in eval mode, on the CPU."""
    import torch

    family, make_config = ARCHITECTURES[architecture]
    torch.manual_seed(seed)
    model = _model_class(family).from_config(make_config())
    return model.eval()


def parameter_count(architecture: str) -> int:
    """Count parameters without allocating them (built on torch's meta device)."""
    import torch

    family, make_config = ARCHITECTURES[architecture]
    with torch.device("meta"):
        model = _model_class(family).from_config(make_config())
    return sum(p.numel() for p in model.parameters())
