"""Sentence embeddings: a bare encoder's forward pass and mean pooling over the attention mask,
as sentence-transformers' all-MiniLM-L6-v2 pools (J per sequence; J per token is J per
sequence / seq_len, the records' `tokens_per_unit`).

Fidelity compares the embeddings by their cosine similarity to fp32 (fidelity.py): there are
no classes whose top-1 could agree. `texts =` embeds real texts (text_inputs.py); labels in the
file are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenbench.fidelity import score_embeddings
from greenbench.protocol import Phase
from greenbench.tasks.base import Params, SessionFactory, WorkloadKind
from greenbench.tasks.text_classification import (
    UNIT,
    export_sequence_graph,
    fidelity_sequences,
    measured_sequences,
)
from greenbench.tasks.text_inputs import texts_param


def mean_pool(hidden: Any, mask: Any) -> Any:
    """The mean of each sequence's hidden states over its real (unmasked) tokens."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def embed(model: Any, ids: Any, mask: Any) -> Any:
    return mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)


def fidelity_embeddings(model: Any, params: Params, device: str) -> Any:
    """Embeddings of the fidelity sequences (real texts or fixed random ones), in batches of the
    workload's."""
    import torch

    ids, mask = fidelity_sequences(model, params, device)
    batch = params["batch"]
    with torch.inference_mode():
        return torch.cat(
            [embed(model, i, m) for i, m in zip(ids.split(batch), mask.split(batch), strict=True)]
        )


def make_phases(model: Any, params: Params, device: str, autocast: Any = None) -> list[Phase]:
    import torch

    batch = params["batch"]
    ids, mask = measured_sequences(model, params, device)

    @torch.inference_mode()
    def forward() -> Any:
        return embed(model, ids, mask)

    return [Phase("embed", UNIT, batch, forward)]


def _graph_module(model: Any) -> Any:
    """A module with plain tensor inputs and output, which ONNX export needs."""
    import torch

    class Embedder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return embed(self.model, input_ids, attention_mask)

    return Embedder()


def export_graphs(
    model: Any, params: Params, make_session: SessionFactory, workdir: Path
) -> tuple[list[Phase], Any]:
    """The embed phase on a graph runtime, and its embeddings of the fidelity sequences."""
    path = workdir / "embedder.onnx"
    call, embeddings = export_sequence_graph(
        _graph_module(model), model, params, make_session, path
    )
    return [Phase("embed", UNIT, params["batch"], call)], embeddings


KIND = WorkloadKind(
    name="sentence-embedding",
    task="inference",
    phases={"embed": UNIT},
    make_phases=make_phases,
    linear_quantization=True,
    fidelity_logits=fidelity_embeddings,
    fidelity_score=score_embeddings,
    export_graphs=export_graphs,
    unit_tokens="seq_len",
    input_params={"texts": texts_param(labels_allowed=False)},
)
