import pytest
import torch

from greenbench.fidelity import score
from greenbench.models import build_model
from greenbench.tasks import fidelity_logits
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS


@pytest.mark.parametrize("name", ["slm-tiny", "resnet-tiny"])
def test_fp32_against_itself_is_exactly_perfect(name):
    preset = PRESETS[name]
    a = fidelity_logits(preset.kind, build_model(preset.architecture), preset.defaults, "cpu")
    b = fidelity_logits(preset.kind, build_model(preset.architecture), preset.defaults, "cpu")
    fidelity = score(a, b)
    assert fidelity.top1_agreement == 1.0 and fidelity.kl_divergence == 0.0
    assert fidelity.predictions == (16 if name == "slm-tiny" else 32)


def test_a_perturbed_model_is_scored_below_perfect():
    preset = PRESETS["slm-tiny"]
    reference = build_model(preset.architecture)
    perturbed = build_model(preset.architecture)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn_like(p) * 2 * p.std().clamp(min=1e-3))
    fidelity = score(
        fidelity_logits(preset.kind, reference, preset.defaults, "cpu"),
        fidelity_logits(preset.kind, perturbed, preset.defaults, "cpu"),
    )
    assert fidelity.top1_agreement < 1.0 and fidelity.kl_divergence > 0.0


def test_a_lower_precision_variant_is_close_but_not_identical():
    preset = PRESETS["slm-tiny"]
    model = build_model(preset.architecture)
    reference = fidelity_logits(preset.kind, model, preset.defaults, "cpu")
    model = get_variant("bf16").prepare_for_inference(model, "cpu")
    fidelity = score(reference, fidelity_logits(preset.kind, model, preset.defaults, "cpu"))
    assert 0.9 <= fidelity.top1_agreement <= 1.0
    assert 0.0 < fidelity.kl_divergence < 0.01


def test_known_logits_give_the_expected_numbers():
    reference = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    candidate = torch.tensor([[2.0, 0.0], [2.0, 0.0]])  # second prediction flipped
    fidelity = score(reference, candidate)
    assert fidelity.top1_agreement == 0.5
    p = torch.softmax(torch.tensor([0.0, 2.0], dtype=torch.float64), -1)
    q = torch.softmax(torch.tensor([2.0, 0.0], dtype=torch.float64), -1)
    expected_kl = (p * (p.log() - q.log())).sum().item() / 2
    assert fidelity.kl_divergence == pytest.approx(expected_kl)
    assert fidelity.as_record() == {
        "fidelity_top1": 0.5,
        "fidelity_kl": fidelity.kl_divergence,
        "fidelity_n": 2,
    }


def test_shapes_must_match():
    with pytest.raises(ValueError, match="logit shapes differ"):
        score(torch.zeros(2, 3), torch.zeros(2, 4))
