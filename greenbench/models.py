"""Model architectures built from transformers configs, with random weights by default.

Nothing is downloaded: every preset is a config written out here, so a run is offline and
reproducible. The `slm-*` configs follow SmolLM2's published architectures, the CNNs torchvision's
ResNet and MobileNetV2 (1000 ImageNet classes), `vit-b16` google/vit-base-patch16-224 and
`detr-resnet50` facebook/detr-resnet-50 (both from their config.json on the Hugging Face hub;
DETR's ResNet-50 backbone is transformers' own ResNet instead of the timm one the published
checkpoint names, the same layers without the timm package), `whisper-tiny`
openai/whisper-tiny's config.json (d_model 384, 4 + 4 layers, 6 heads, FFN 1536, 80 mel bins,
51,865 tokens, 1500 source and 448 target positions:
https://huggingface.co/openai/whisper-tiny/blob/main/config.json), and the text encoders the
config.json files of distilbert/distilbert-base-uncased (with a 2-label classification head)
and sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face hub. Real weights are loaded only
when a suite names a local directory or a Hugging Face id that is already in the local cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greenbench.hub_cli import download_hint


def _smollm2(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, rope: float):
    def config() -> Any:
        from transformers import LlamaConfig

        # transformers 5 takes rope_theta through **kwargs (into rope_parameters); its
        # annotations name only the new keywords
        return LlamaConfig(  # type: ignore[call-arg]
            vocab_size=49152, hidden_size=hidden, intermediate_size=intermediate,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
            max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=rope,
            tie_word_embeddings=True,
        )  # fmt: skip

    return config


def _tiny_llama() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True,
    )  # fmt: skip


def _resnet(
    hidden_sizes: list[int], depths: list[int], layer_type: str, embedding: int = 64, labels=1000
):
    def config() -> Any:
        from transformers import ResNetConfig

        return ResNetConfig(  # type: ignore[call-arg]  # num_labels: PretrainedConfig **kwargs
            num_channels=3, embedding_size=embedding, hidden_sizes=hidden_sizes, depths=depths,
            layer_type=layer_type, num_labels=labels,
        )  # fmt: skip

    return config


def _mobilenet_v2() -> Any:
    from transformers import MobileNetV2Config

    # num_labels goes through PretrainedConfig's **kwargs, which the annotations omit
    return MobileNetV2Config(depth_multiplier=1.0, image_size=224, num_labels=1000)  # type: ignore[call-arg]


def _vit(hidden: int, layers: int, heads: int, mlp: int, patch: int, size: int, labels: int):
    def config() -> Any:
        from transformers import ViTConfig

        return ViTConfig(  # type: ignore[call-arg]  # num_labels: PretrainedConfig **kwargs
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=mlp, patch_size=patch, image_size=size, num_labels=labels,
        )  # fmt: skip

    return config


def _distilbert() -> Any:
    from transformers import DistilBertConfig

    # distilbert-base-uncased's config.json; num_labels goes through **kwargs
    return DistilBertConfig(  # type: ignore[call-arg]
        vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
        max_position_embeddings=512, activation="gelu", dropout=0.1, attention_dropout=0.1,
        qa_dropout=0.1, seq_classif_dropout=0.2, sinusoidal_pos_embds=False,
        initializer_range=0.02, pad_token_id=0, num_labels=2,
    )  # fmt: skip


def _bert(hidden: int, layers: int, heads: int, intermediate: int, vocab=30522, positions=512):
    def config() -> Any:
        from transformers import BertConfig

        # all-MiniLM-L6-v2's config.json (a BertModel) for the MiniLM sizes
        return BertConfig(
            vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=intermediate, hidden_act="gelu",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
            max_position_embeddings=positions, type_vocab_size=2, initializer_range=0.02,
            layer_norm_eps=1e-12, pad_token_id=0,
        )  # fmt: skip

    return config


def _detr(
    backbone: Callable[[], Any], d_model=256, layers=6, heads=8, ffn=2048, queries=100, labels=91
):
    """DETR on transformers' ResNet backbone (its last stage), built without timm or a download."""

    def config() -> Any:
        from transformers import DetrConfig

        return DetrConfig(  # type: ignore[call-arg]  # these go through **kwargs
            use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=backbone(),
            d_model=d_model, encoder_layers=layers, decoder_layers=layers,
            encoder_attention_heads=heads, decoder_attention_heads=heads,
            encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, num_queries=queries, num_labels=labels,
        )  # fmt: skip

    return config


def _resnet_backbone(hidden_sizes: list[int], depths: list[int], layer_type: str, embedding=64):
    def config() -> Any:
        from transformers import ResNetConfig

        return ResNetConfig(  # type: ignore[call-arg]  # out_features: BackboneConfigMixin
            embedding_size=embedding, hidden_sizes=hidden_sizes, depths=depths,
            layer_type=layer_type, out_features=[f"stage{len(depths)}"],
        )  # fmt: skip

    return config


def _whisper(
    d_model: int, layers: int, heads: int, ffn: int, mel_bins: int, vocab: int, source: int,
    target: int, start: int, end: int,
):  # fmt: skip
    def config() -> Any:
        from transformers import WhisperConfig

        return WhisperConfig(
            vocab_size=vocab, num_mel_bins=mel_bins, d_model=d_model, encoder_layers=layers,
            decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
            encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_source_positions=source,
            max_target_positions=target, decoder_start_token_id=start, pad_token_id=end,
            bos_token_id=end, eos_token_id=end, suppress_tokens=None, begin_suppress_tokens=None,
        )  # fmt: skip

    return config


def _tiny_distilbert() -> Any:
    from transformers import DistilBertConfig

    return DistilBertConfig(  # type: ignore[call-arg]
        vocab_size=512, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
        max_position_embeddings=128, num_labels=2,
    )  # fmt: skip


# architecture name -> (model family, config factory)
ARCHITECTURES: dict[str, tuple[str, Callable[[], Any]]] = {
    "smollm2-135m": ("causal-lm", _smollm2(576, 1536, 30, 9, 3, 100000.0)),
    "smollm2-360m": ("causal-lm", _smollm2(960, 2560, 32, 15, 5, 100000.0)),
    "smollm2-1.7b": ("causal-lm", _smollm2(2048, 8192, 24, 32, 32, 130000.0)),
    "tiny-llama": ("causal-lm", _tiny_llama),
    "resnet18": ("image-classification", _resnet([64, 128, 256, 512], [2, 2, 2, 2], "basic")),
    "resnet50": (
        "image-classification",
        _resnet([256, 512, 1024, 2048], [3, 4, 6, 3], "bottleneck"),
    ),
    "mobilenet_v2": ("image-classification", _mobilenet_v2),
    "tiny-resnet": ("image-classification", _resnet([16, 32], [1, 1], "basic", 16, 10)),
    "vit-b16": ("image-classification", _vit(768, 12, 12, 3072, 16, 224, 1000)),
    "detr-resnet50": (
        "object-detection",
        _detr(_resnet_backbone([256, 512, 1024, 2048], [3, 4, 6, 3], "bottleneck")),
    ),
    "tiny-detr": (
        "object-detection",
        _detr(_resnet_backbone([16, 32], [1, 1], "basic", 16), 32, 2, 2, 64, 10, 5),
    ),
    # <|startoftranscript|> is 50258, <|endoftext|> 50257 in Whisper's multilingual vocabulary
    "whisper-tiny": (
        "speech-seq2seq",
        _whisper(384, 4, 6, 1536, 80, 51865, 1500, 448, 50258, 50257),
    ),
    # a 30 s window of 32 frames instead of 3000, so tests stay short
    "tiny-whisper": ("speech-seq2seq", _whisper(32, 2, 2, 64, 16, 512, 16, 64, 1, 2)),
    "distilbert-base": ("text-classification", _distilbert),
    "minilm-l6": ("sentence-embedding", _bert(384, 6, 12, 1536)),
    "tiny-distilbert": ("text-classification", _tiny_distilbert),
    "tiny-bert": ("sentence-embedding", _bert(32, 2, 2, 64, vocab=512, positions=128)),
}


def family(architecture: str) -> str:
    return ARCHITECTURES[architecture][0]


def _model_class(family: str) -> Any:
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForImageClassification,
        AutoModelForObjectDetection,
        AutoModelForSequenceClassification,
        AutoModelForSpeechSeq2Seq,
    )

    return {
        "causal-lm": AutoModelForCausalLM,
        "image-classification": AutoModelForImageClassification,
        "object-detection": AutoModelForObjectDetection,
        "speech-seq2seq": AutoModelForSpeechSeq2Seq,
        "text-classification": AutoModelForSequenceClassification,
        "sentence-embedding": AutoModel,  # the bare encoder; the kind pools its states
    }[family]


@functools.cache  # asked each time a preset resolves its parameters
def max_positions(architecture: str) -> int | None:
    """The longest sequence an architecture's config allows, if it says."""
    value = getattr(build_config(architecture), "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def build_config(architecture: str) -> Any:
    return ARCHITECTURES[architecture][1]()


def build_model(architecture: str, seed: int = 0, weights: str | None = None) -> Any:
    """The architecture in eval mode on the CPU, in float32.

    With `weights` (a local directory or an already-cached hub id) the real weights are loaded,
    offline; otherwise the weights are random, seeded by `seed`.
    """
    import torch

    if weights:
        check_weights(weights)
        return load_pretrained(weights, family(architecture))
    torch.manual_seed(seed)
    return _model_class(family(architecture)).from_config(build_config(architecture)).eval()


def load_pretrained(source: str, family: str) -> Any:
    """The real weights of a local folder or a cached hub id (never downloaded), in eval mode
    on the CPU, in float32."""
    model = _model_class(family).from_pretrained(source, local_files_only=True)
    if family == "text-classification" and model.config.pad_token_id is None:
        # decoder classifiers (GPT-2, Llama) refuse batches of more than one sequence without
        # a pad token; the inputs have no padding, so any id will do
        model.config.pad_token_id = model.config.vocab_size - 1
    return model.float().eval()  # transformers 5 keeps the checkpoint's dtype otherwise


def check_weights(weights: str) -> str:
    """ValueError with the fix unless `weights` can be loaded without a download."""
    path = Path(weights).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"weights '{weights}' is a directory without config.json; give the folder "
                "that save_pretrained wrote"
            )
        return weights
    if path.is_absolute() or weights.startswith((".", "~")) or weights.count("/") > 1:
        raise ValueError(f"weights '{weights}': no such directory; check the path")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(weights, "config.json")
    except ValueError:  # not a valid repo id
        cached = None
    if not isinstance(cached, str):
        raise ValueError(
            f"weights '{weights}' is neither a local directory nor in the Hugging Face cache; "
            f"greenbench never downloads: fetch it once ({download_hint(weights)}) or give a path"
        )
    return weights


def parameter_count(architecture: str) -> int:
    """Count parameters without allocating them (built on torch's meta device)."""
    return _count_on_meta(family(architecture), build_config(architecture))


def pretrained_parameter_count(source: str, family: str) -> int:
    """A checkpoint's parameter count from its config alone, offline and without its weights."""
    from transformers import AutoConfig

    return _count_on_meta(family, AutoConfig.from_pretrained(source, local_files_only=True))


def pretrained_linear_share(source: str, family: str) -> float:
    """The Linear share (`linear_share`) of a checkpoint, from its config alone."""
    from transformers import AutoConfig

    return _linear_share_on_meta(family, AutoConfig.from_pretrained(source, local_files_only=True))


def linear_share(architecture: str) -> float:
    """The share of an architecture's Linear and convolution weight elements that are Linear
    (built on the meta device): near 1 for vision transformers, whose only convolution embeds
    the patches, near 0 for CNNs, about 0.4 for DETR (a CNN backbone under a transformer)."""
    return _linear_share_on_meta(family(architecture), build_config(architecture))


def _linear_share_on_meta(family: str, config: Any) -> float:
    import torch

    with torch.device("meta"):
        return module_linear_share(_model_class(family).from_config(config))


def module_linear_share(model: Any) -> float:
    """The share of a built module's Linear and convolution weight elements that are Linear
    (0 when it has neither)."""
    import torch

    linear = conv = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            linear += module.weight.numel()
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            conv += module.weight.numel()
    return linear / (linear + conv) if linear + conv else 0.0


def _count_on_meta(family: str, config: Any) -> int:
    import torch

    with torch.device("meta"):
        model = _model_class(family).from_config(config)
    return sum(p.numel() for p in model.parameters())
