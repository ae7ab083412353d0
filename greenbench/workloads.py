"""The workload catalogue: named presets, their parameters, phases and units of work.

Inference presets carry the model's name (`slm-135m`, `resnet50`); training presets add `-train`
(`slm-135m-train`). Every preset also takes `weights`, a local directory or a cached hub id, to
measure real weights instead of random ones, and the real-input parameters its kind declares
(`prompts`, `texts`, `images`: tasks/). `hf:SOURCE` names a Hugging Face checkpoint
(checkpoints.py): a preset made from its config, measured with its own weights.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from greenbench.checkpoints import (
    Checkpoint,
    CheckpointError,
    check_task,
    find_checkpoint,
    is_checkpoint_name,
)
from greenbench.models import (
    build_model,
    check_weights,
    load_pretrained,
    max_positions,
    parameter_count,
    pretrained_linear_share,
    pretrained_parameter_count,
)
from greenbench.preprocessors import source_config
from greenbench.python_workload import Workload, build_workload_model
from greenbench.tasks import get_kind
from greenbench.tasks.base import Task, WorkloadKind
from greenbench.workload_factories import is_entry_point, is_python_name, load_workload

OPTIONAL_PARAMS = ("weights",)  # accepted by every preset, absent by default
# an image classifier whose nn.Linear weights are at least this share of its parameters (a
# vision transformer, not a CNN) takes the Linear-only quantization variants
LINEAR_COVERAGE = 0.9


@dataclass(frozen=True)
class WorkloadPreset:
    name: str
    architecture: str  # a key of models.ARCHITECTURES
    kind: WorkloadKind  # what a cell does with the model: phases, units, inputs, fidelity
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    checkpoint: Checkpoint | None = None  # hf: workloads: the checkpoint, with its own weights
    positions: int | None = None  # presets whose token lengths are checked: the model's limit
    python: Workload | None = None  # Python workloads: what their factory returned
    parameters: int | None = None  # Python workloads: counted when the factory was loaded

    @property
    def task(self) -> Task:
        return self.kind.task

    def build_model(self, params: Mapping[str, Any]) -> Any:
        """The model in eval mode on the CPU, in float32: the checkpoint's weights, those
        `params` name, or random ones."""
        if self.checkpoint:
            return load_pretrained(self.checkpoint.source, self.checkpoint.family)
        if self.python:
            return build_workload_model(self.python, "cpu")
        return build_model(self.architecture, weights=params.get("weights"))

    def parameter_count(self) -> int:
        if self.parameters is not None:
            return self.parameters
        if self.checkpoint:
            return pretrained_parameter_count(self.checkpoint.source, self.checkpoint.family)
        return parameter_count(self.architecture)

    def checkpoint_columns(self) -> dict[str, Any]:
        """The record columns that say which checkpoint a cell measured (None for presets)."""
        checkpoint = self.checkpoint
        return {
            "checkpoint": checkpoint.source if checkpoint else None,
            "config_hash": checkpoint.config_hash if checkpoint else None,
            "checkpoint_dtype": checkpoint.dtype if checkpoint else None,
        }

    def param_names(self) -> list[str]:
        """Every parameter it takes: its defaults' and the optional ones."""
        optional = [*OPTIONAL_PARAMS, *self.kind.input_params]
        if self.checkpoint:
            optional.append("task")  # confirms the task read from config.json
        return [*self.defaults, *optional]

    def resolve_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated by `overrides`; raises ValueError naming the bad key."""
        params = dict(self.defaults)
        names = self.param_names()
        for key, value in overrides.items():
            if key not in names:
                known = ", ".join(sorted(names))
                raise ValueError(f"unknown parameter '{key}' for {self.name} (known: {known})")
            params[key] = self._check_param(key, value)
        limit = self._positions_limit()
        if limit:
            _check_length(params, *limit)
        if any(key in params for key in self.kind.input_params):
            source = self.checkpoint.source if self.checkpoint else params.get("weights")
            config = self.checkpoint.config if self.checkpoint else None
            if config is None and source:
                config = source_config(source)
            self.kind.check_inputs(params, source, config)
        return params

    def _positions_limit(self) -> tuple[int, str] | None:
        """The longest token sequence the model takes, and where that limit is written."""
        checkpoint = self.checkpoint
        if checkpoint and checkpoint.positions:
            where = f"{checkpoint.positions_key} in its config.json"
            count = checkpoint.positions
            return count, f"the checkpoint's {count} positions ({where})"
        limit = self.positions
        if limit is None and self.kind.unit_tokens and not self.python:
            limit = max_positions(self.architecture)  # text presets: their config's limit
        if limit:
            return limit, f"{self.name}'s {limit} positions"
        return None

    def _check_param(self, key: str, value: Any) -> Any:
        if key == "task" and self.checkpoint:
            return check_task(self.checkpoint, value)
        if key == "weights" and self.checkpoint:
            raise ValueError(f"'weights' does not apply to {self.name}: the checkpoint has its own")
        if key == "weights" and self.python:
            raise ValueError(f"'weights' does not apply to {self.name}: its factory builds it")
        if key == "weights":
            if not isinstance(value, str) or not value.strip():
                raise ValueError("'weights' must be a local directory or a cached hub id")
            return check_weights(value.strip())
        return self.kind.check_param(key, value)

    def phases(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return self.kind.phase_names(params)


def _check_length(params: Mapping[str, Any], positions: int, limit: str) -> None:
    """ValueError unless a workload's tokens fit the model's `positions` (`limit` says whose)."""
    if "seq_len" in params:
        what, tokens = "seq_len", params["seq_len"]
    elif "audio_seconds" in params:  # speech: the decoder's start token, then new_tokens
        what, tokens = "new_tokens + 1 (the start token)", params["new_tokens"] + 1
    elif "prompt_tokens" in params:
        what, tokens = "prompt_tokens + new_tokens", params["prompt_tokens"] + params["new_tokens"]
    else:
        return
    if tokens > positions:
        raise ValueError(f"{what} = {tokens} is more than {limit}; lower it")


def _preset(
    name: str,
    architecture: str,
    kind_name: str,
    description: str,
    checkpoint: Checkpoint | None = None,
    positions: int | None = None,
    **defaults: Any,
) -> WorkloadPreset:
    kind = get_kind(kind_name)
    if kind.selectable_phases:
        defaults = {"phases": list(kind.phases), **defaults}
    return WorkloadPreset(name, architecture, kind, defaults, description, checkpoint, positions)


def _with_linear_quantization(preset: WorkloadPreset) -> WorkloadPreset:
    """The preset with Linear-only quantization allowed: for models whose Linear layers hold at
    least LINEAR_COVERAGE of the weights (vision transformers, unlike CNNs or DETR)."""
    kind = dataclasses.replace(preset.kind, linear_quantization=True)
    return dataclasses.replace(preset, kind=kind)


def _lm(name: str, architecture: str, label: str, batch=1, prompt=128, new=32, train_seq=128):
    return (
        _preset(
            name,
            architecture,
            "lm-inference",
            f"{label}: prefill and greedy decode",
            batch=batch,
            prompt_tokens=prompt,
            new_tokens=new,
        ),
        _preset(
            f"{name}-train",
            architecture,
            "lm-training",
            f"{label}: AdamW fine-tuning steps on random tokens",
            batch=batch,
            seq_len=train_seq,
        ),
    )


def _cnn(name: str, architecture: str, label: str, batch=8, size=224, train_batch=8):
    return (
        _preset(
            name,
            architecture,
            "vision-inference",
            f"{label}: image classification",
            batch=batch,
            image_size=size,
        ),
        _preset(
            f"{name}-train",
            architecture,
            "vision-training",
            f"{label}: SGD steps on synthetic images",
            batch=train_batch,
            image_size=size,
        ),
    )


def _vit(name: str, architecture: str, label: str):
    """A vision transformer's pair: the CNNs' kinds, Linear-only quantization allowed (its share
    is checked against LINEAR_COVERAGE by the tests, as `hf:` checkpoints are at run time)."""
    return tuple(map(_with_linear_quantization, _cnn(name, architecture, label)))


def _detector(name: str, architecture: str, label: str, batch=1, size=800):
    """An object detector: inference only (DETR's training needs box targets)."""
    return (
        _preset(
            name,
            architecture,
            "object-detection",
            f"{label}: object detection",
            batch=batch,
            image_size=size,
        ),
    )


def _speech(name: str, architecture: str, label: str, positions: int, new=32, train_seq=32):
    """Whisper presets: `positions` is the architecture's max_target_positions."""
    return (
        _preset(
            name,
            architecture,
            "speech-recognition",
            f"{label}: encoder over 30 s of audio and greedy decode",
            positions=positions,
            batch=1,
            audio_seconds=30,
            new_tokens=new,
        ),
        _preset(
            f"{name}-train",
            architecture,
            "speech-training",
            f"{label}: AdamW fine-tuning steps, teacher-forced on random tokens",
            positions=positions,
            batch=1,
            audio_seconds=30,
            seq_len=train_seq,
        ),
    )


def _encoder(name: str, architecture: str, label: str, batch=8, seq_len=128, train=True):
    """A text classifier (and its `-train`) or, with `train=False`, a sentence embedder."""
    if not train:
        return (
            _preset(name, architecture, "sentence-embedding",
                    f"{label}: sentence embeddings (mean pooling)", batch=batch, seq_len=seq_len),
        )  # fmt: skip
    return (
        _preset(name, architecture, "text-classification", f"{label}: text classification",
                batch=batch, seq_len=seq_len),
        _preset(f"{name}-train", architecture, "text-classification-training",
                f"{label}: AdamW fine-tuning steps on random sequences and labels",
                batch=batch, seq_len=seq_len),
    )  # fmt: skip


PRESETS: dict[str, WorkloadPreset] = {
    p.name: p
    for pair in (
        _lm("slm-135m", "smollm2-135m", "SmolLM2-135M architecture"),
        _lm("slm-360m", "smollm2-360m", "SmolLM2-360M architecture"),
        _lm("slm-1.7b", "smollm2-1.7b", "SmolLM2-1.7B architecture"),
        _lm("slm-tiny", "tiny-llama", "2-layer Llama for tests", 1, 16, 8, 16),
        _cnn("resnet18", "resnet18", "ResNet-18, 1000 classes"),
        _cnn("resnet50", "resnet50", "ResNet-50, 1000 classes"),
        _cnn("mobilenet_v2", "mobilenet_v2", "MobileNetV2 1.0, 1000 classes"),
        _cnn("resnet-tiny", "tiny-resnet", "2-stage ResNet for tests", 2, 64, 2),
        _vit("vit-b16", "vit-b16", "ViT-B/16, 224 px, 1000 classes"),
        _detector("detr-resnet50", "detr-resnet50", "DETR, ResNet-50 backbone, 100 queries"),
        _detector("detr-tiny", "tiny-detr", "2+2-layer DETR on a 2-stage ResNet for tests", 2, 64),
        _speech("whisper-tiny", "whisper-tiny", "Whisper tiny architecture", 448),
        _speech("whisper-tiny-test", "tiny-whisper", "2+2-layer Whisper for tests", 64, 8, 8),
        _encoder("distilbert", "distilbert-base", "DistilBERT-base-uncased architecture, 2 labels"),
        _encoder("minilm-l6", "minilm-l6", "all-MiniLM-L6-v2 architecture", train=False),
        _encoder("distilbert-tiny", "tiny-distilbert", "2-layer DistilBERT for tests", 2, 16),
        _encoder("bert-tiny", "tiny-bert", "2-layer BERT for tests", 2, 16, train=False),
    )
    for p in pair
}


def checkpoint_preset(name: str) -> WorkloadPreset:
    """The preset of an `hf:` workload, made from its checkpoint's config; CheckpointError
    (a KeyError) naming the fix when there is no usable checkpoint."""
    checkpoint = find_checkpoint(name)
    config = checkpoint.config
    what = f"{checkpoint.architecture} checkpoint"
    if checkpoint.family == "causal-lm":
        positions = checkpoint.positions or 4096
        if checkpoint.training:
            kind, seq_len = "lm-training", min(128, positions)
            return _preset(name, checkpoint.architecture, kind, f"{what}: AdamW steps",
                           checkpoint, batch=1, seq_len=seq_len)  # fmt: skip
        prompt, new = min(128, positions // 2), min(32, positions // 4)
        return _preset(name, checkpoint.architecture, "lm-inference",
                       f"{what}: prefill and greedy decode", checkpoint,
                       batch=1, prompt_tokens=max(prompt, 1), new_tokens=max(new, 1))  # fmt: skip
    if checkpoint.family in ("text-classification", "sentence-embedding"):
        return _text_checkpoint_preset(name, checkpoint)
    if checkpoint.family == "speech-seq2seq":
        return _speech_checkpoint_preset(name, checkpoint)
    if checkpoint.family == "object-detection":
        if checkpoint.training:
            raise CheckpointError(
                f"workload '{name}': greenbench measures object detection as inference only; "
                "drop the '-train' suffix"
            )
        # DETR's configs give no image size: its usual shorter side, 800 px
        size = _image_size(config.get("image_size"), default=800)
        preset = _preset(name, checkpoint.architecture, "object-detection",
                         f"{what}: object detection", checkpoint,
                         batch=1, image_size=size)  # fmt: skip
    else:
        size = _image_size(config.get("image_size"))
        kind = "vision-training" if checkpoint.training else "vision-inference"
        label = "SGD steps on synthetic images" if checkpoint.training else "image classification"
        preset = _preset(name, checkpoint.architecture, kind, f"{what}: {label}", checkpoint,
                         batch=8, image_size=size)  # fmt: skip
    share = _linear_share(checkpoint.source, checkpoint.family, checkpoint.config_hash)
    return _with_linear_quantization(preset) if share >= LINEAR_COVERAGE else preset


def _speech_checkpoint_preset(name: str, checkpoint: Checkpoint) -> WorkloadPreset:
    what = f"{checkpoint.architecture} checkpoint"
    positions = checkpoint.positions or 448
    if checkpoint.training:
        return _preset(name, checkpoint.architecture, "speech-training",
                       f"{what}: AdamW steps, teacher-forced", checkpoint,
                       batch=1, audio_seconds=30, seq_len=min(32, positions))  # fmt: skip
    new_tokens = max(1, min(32, positions - 1))  # the start token takes one position
    return _preset(name, checkpoint.architecture, "speech-recognition",
                   f"{what}: encoder over 30 s of audio and greedy decode", checkpoint,
                   batch=1, audio_seconds=30, new_tokens=new_tokens)  # fmt: skip


def _text_checkpoint_preset(name: str, checkpoint: Checkpoint) -> WorkloadPreset:
    """A text classifier's inference or training preset, or a bare encoder's embeddings."""
    what = f"{checkpoint.architecture} checkpoint"
    seq_len = min(128, checkpoint.positions or 512)
    if checkpoint.family == "sentence-embedding":
        if checkpoint.training:
            raise CheckpointError(
                f"workload '{name}': {checkpoint.source} is a bare encoder (sentence "
                "embeddings), which greenbench measures for inference only; drop '-train', "
                "or give a sequence classifier (save_pretrained of an ...ForSequenceClassification)"
            )
        return _preset(name, checkpoint.architecture, "sentence-embedding",
                       f"{what}: sentence embeddings (mean pooling)", checkpoint,
                       batch=8, seq_len=seq_len)  # fmt: skip
    if checkpoint.training:
        return _preset(name, checkpoint.architecture, "text-classification-training",
                       f"{what}: AdamW steps on random sequences and labels", checkpoint,
                       batch=8, seq_len=seq_len)  # fmt: skip
    return _preset(name, checkpoint.architecture, "text-classification",
                   f"{what}: text classification", checkpoint,
                   batch=8, seq_len=seq_len)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _linear_share(source: str, family: str, config_hash: str) -> float:
    """Cached by the config's hash: presets are looked up many times per run."""
    return pretrained_linear_share(source, family)


def _image_size(value: Any, default: int = 224) -> int:
    """The config's image side (an int, a [h, w] pair or a {height, width} table); `default`
    if none."""
    if isinstance(value, Mapping):
        value = value.get("height") or value.get("shortest_edge")
    if isinstance(value, list | tuple) and value:
        value = value[0]
    whole = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if whole else default


def python_preset(name: str) -> WorkloadPreset:
    """The preset of a Python workload (`module:factory`, `file.py:factory` or an entry
    point's name); PythonWorkloadError (a KeyError) naming the fix when it cannot be used."""
    loaded = load_workload(name)
    workload = loaded.workload
    what = workload.description or f"{loaded.architecture} from {name}"
    return WorkloadPreset(
        name,
        loaded.architecture,
        loaded.kind,
        dict(workload.params),
        what,
        python=workload,
        parameters=loaded.parameters,
    )


def get_preset(name: str) -> WorkloadPreset:
    if is_checkpoint_name(name):
        return checkpoint_preset(name)
    if name in PRESETS:
        return PRESETS[name]
    if is_python_name(name) or is_entry_point(name):
        return python_preset(name)
    raise KeyError(
        f"unknown workload '{name}' (known: {', '.join(PRESETS)}; or a Python factory "
        "MODULE:FUNCTION)"
    )
