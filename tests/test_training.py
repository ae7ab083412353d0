import math

import pytest
import torch

from greenbench.models import build_model
from greenbench.tasks import make_phases
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS


def train_phase(name, variant="fp32", **overrides):
    preset = PRESETS[name]
    params = preset.resolve_params(overrides)
    model = get_variant(variant).prepare_for_training(build_model(preset.architecture))
    (phase,) = make_phases(preset.kind, model, params, "cpu", get_variant(variant).autocast_dtype())
    return model, phase


@pytest.mark.parametrize("variant", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize(
    ("name", "unit", "units"),
    [
        ("slm-tiny-train", "token", 2 * 16),
        ("resnet-tiny-train", "image", 2),
        ("distilbert-tiny-train", "sequence", 2),
    ],
)
def test_training_steps_change_the_weights_with_a_finite_loss(name, unit, units, variant):
    model, phase = train_phase(name, variant, batch=2)
    assert (phase.name, phase.unit, phase.units_per_call) == ("train", unit, units)
    before = [p.detach().clone() for p in model.parameters()]
    losses = [phase.step() for _ in range(3)]
    assert all(math.isfinite(loss.item()) for loss in losses)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert sum(changed) >= len(changed) // 2
    # mixed precision keeps fp32 master weights
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_the_lm_loss_falls_when_it_trains_on_the_same_batch():
    _, phase = train_phase("slm-tiny-train")
    first = phase.step().item()
    for _ in range(20):
        last = phase.step().item()
    assert last < first


def test_training_parameters_are_validated():
    with pytest.raises(ValueError, match="seq_len"):
        PRESETS["slm-135m-train"].resolve_params({"seq_len": 0})
    with pytest.raises(ValueError, match="unknown parameter 'prompt_tokens'"):
        PRESETS["slm-135m-train"].resolve_params({"prompt_tokens": 8})
