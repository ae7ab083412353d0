import torch

from greenbench.models import build_model, parameter_count
from greenbench.tasks import make_phases
from greenbench.workloads import PRESETS


def test_catalogue_sizes_match_the_architectures():
    assert abs(parameter_count("smollm2-135m") - 134.5e6) < 0.1e6
    assert abs(parameter_count("resnet50") - 25.6e6) < 0.1e6


def test_lm_phases_count_tokens_and_decode_exactly_n_from_a_reset_cache():
    params = PRESETS["slm-tiny"].resolve_params({"batch": 2, "prompt_tokens": 5, "new_tokens": 3})
    model = build_model("tiny-llama")
    prefill, decode = make_phases("lm-inference", model, params, "cpu")
    assert (prefill.name, prefill.unit, prefill.units_per_call) == ("prefill", "token", 10)
    assert (decode.name, decode.unit, decode.units_per_call) == ("decode", "token", 6)

    out = prefill.step()
    assert out.logits.shape[:2] == (2, 1)  # only the last position's logits, as generation does
    assert out.past_key_values.get_seq_length() == 5

    calls = []
    original_forward = model.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return original_forward(*args, **kwargs)

    decode.reset()  # prefill outside the window
    model.forward = counting_forward
    first = decode.step()
    second = decode.step()
    assert calls == [torch.Size([2, 1])] * 6  # 3 single-token steps per call, no prefill
    assert torch.equal(first, second)  # the cache was cropped back to the prompt


def test_lm_phases_param_selects_phases():
    params = PRESETS["slm-tiny"].resolve_params({"phases": ["decode"]})
    phases = make_phases("lm-inference", build_model("tiny-llama"), params, "cpu")
    assert [p.name for p in phases] == ["decode"]


def test_vision_phase_counts_images():
    params = PRESETS["resnet-tiny"].resolve_params({"batch": 3})
    (forward,) = make_phases("vision-inference", build_model("tiny-resnet"), params, "cpu")
    assert (forward.name, forward.unit, forward.units_per_call) == ("forward", "image", 3)
    assert forward.step().shape == (3, 10)


def test_random_weights_are_seeded():
    a, b = build_model("tiny-resnet"), build_model("tiny-resnet")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
