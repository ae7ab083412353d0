"""Text-classification inference: one forward pass over a batch of sequences (J per sequence).

Each sequence is `seq_len` random tokens, or a text of `texts` padded and cut to `seq_len`
(text_inputs.py; labelled texts give accuracy), so one unit holds `seq_len` tokens and J per
token is J per sequence / seq_len (the records' `tokens_per_unit`). A batch padded to `seq_len`
costs the same: an encoder computes every position, padding included. The random fidelity
inputs are padded to varied lengths, so that the attention mask takes part in what fidelity
compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenbench.protocol import Phase
from greenbench.quality import Quality, top1_accuracy
from greenbench.tasks.base import Params, SessionFactory, WorkloadKind
from greenbench.tasks.onnx_export import export_onnx
from greenbench.tasks.text_inputs import eval_texts, label_ids, measured_texts, texts_param

FIDELITY_SEQUENCES = 32  # a forward batch is often 8 sequences: too few to state an agreement
UNIT = "sequence"


def random_tokens(
    model: Any, count: int, seq_len: int, device: str, seed: int, padded: bool = False
) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of `count` random sequences of `seq_len` tokens; `padded`:
    each sequence keeps a seeded length from half of seq_len up, the rest is padding."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    config = model.config
    ids = torch.randint(0, config.vocab_size, (count, seq_len), generator=generator)
    mask = torch.ones(count, seq_len, dtype=torch.long)
    if padded:
        lengths = torch.randint((seq_len + 1) // 2, seq_len + 1, (count,), generator=generator)
        mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
        ids = ids.masked_fill(mask == 0, config.pad_token_id or 0)
    return ids.to(device), mask.to(device)


def measured_sequences(model: Any, params: Params, device: str) -> tuple[Any, Any]:
    """The measured batch: the first texts of `texts`, else seeded random tokens."""
    real = measured_texts(model, params, device)
    return (
        real
        if real is not None
        else random_tokens(model, params["batch"], params["seq_len"], device, seed=0)
    )


def fidelity_sequences(model: Any, params: Params, device: str) -> tuple[Any, Any]:
    """What fidelity compares: the first EVAL_TEXTS of `texts`, else FIDELITY_SEQUENCES fixed
    random sequences padded to varied lengths."""
    if params.get("texts"):
        ids, mask, _ = eval_texts(model, params, device)
        return ids, mask
    return random_tokens(model, FIDELITY_SEQUENCES, params["seq_len"], device, 1, True)


def _logits(model: Any, ids: Any, mask: Any, batch: int) -> Any:
    import torch

    with torch.inference_mode():
        return torch.cat(
            [
                model(input_ids=i, attention_mask=m).logits
                for i, m in zip(ids.split(batch), mask.split(batch), strict=True)
            ]
        )


def fidelity_logits(model: Any, params: Params, device: str) -> Any:
    """Class logits of the fidelity sequences, in batches of the workload's."""
    ids, mask = fidelity_sequences(model, params, device)
    return _logits(model, ids, mask, params["batch"])


def quality(model: Any, params: Params, device: str) -> Quality | None:
    """Accuracy on labelled `texts` (None without labels)."""
    if not params.get("texts"):
        return None
    ids, mask, labels = eval_texts(model, params, device)
    if labels is None:
        return None
    expected = label_ids(labels, model.config.to_dict(), Path(params["texts"]))
    return top1_accuracy(_logits(model, ids, mask, params["batch"]), expected, "accuracy")


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    batch = params["batch"]
    ids, mask = measured_sequences(model, params, device)

    @torch.inference_mode()
    def classify() -> Any:
        return model(input_ids=ids, attention_mask=mask).logits

    return [Phase("classify", UNIT, batch, classify)]


def export_sequence_graph(
    module: Any, model: Any, params: Params, make_session: SessionFactory, path: Path
) -> tuple[Any, Any]:
    """`module` (input_ids, attention_mask -> one row per sequence) as a graph-runtime session:
    (a call on the measured batch, the outputs on the fidelity sequences)."""
    import numpy as np
    import torch

    batch = params["batch"]
    ids, mask = measured_sequences(model, params, "cpu")
    batch_dim = torch.export.Dim("batch", min=1, max=1 << 12)
    names = ["input_ids", "attention_mask"]
    export_onnx(module, (ids, mask), path, names, {n: {0: batch_dim} for n in names})
    session = make_session(path)
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}

    def call() -> Any:
        return session.run(None, feed)[0]

    check_ids, check_mask = fidelity_sequences(model, params, "cpu")
    outputs = np.concatenate(
        [
            session.run(None, {"input_ids": i.numpy(), "attention_mask": m.numpy()})[0]
            for i, m in zip(check_ids.split(batch), check_mask.split(batch), strict=True)
        ]
    )
    return call, torch.from_numpy(outputs)


def _graph_module(model: Any) -> Any:
    """A module with plain tensor inputs and output, which ONNX export needs."""
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return Classifier()


def export_graphs(
    model: Any, params: Params, make_session: SessionFactory, workdir: Path
) -> tuple[list[Phase], Any]:
    """The classify phase on a graph runtime, and its logits on the fidelity sequences."""
    path = workdir / "classifier.onnx"
    call, logits = export_sequence_graph(_graph_module(model), model, params, make_session, path)
    return [Phase("classify", UNIT, params["batch"], call)], logits


KIND = WorkloadKind(
    name="text-classification",
    task="inference",
    phases={"classify": UNIT},
    make_phases=make_phases,
    linear_quantization=True,
    fidelity_logits=fidelity_logits,
    export_graphs=export_graphs,
    unit_tokens="seq_len",
    input_params={"texts": texts_param(labels_allowed=True)},
    quality=quality,
)
