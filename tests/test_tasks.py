import pytest
import torch

from greenbench.models import build_model, parameter_count
from greenbench.protocol import TokenLatency
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
    # TTFT is a prefill call's time, TPOT a decode call's over its 3 steps (records.py)
    assert prefill.token_latency == TokenLatency("ttft", 1)
    assert decode.token_latency == TokenLatency("tpot", 3)

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


def test_new_catalogue_architectures_match_their_published_sizes():
    assert abs(parameter_count("smollm2-360m") - 361.8e6) < 0.1e6
    assert abs(parameter_count("smollm2-1.7b") - 1711.4e6) < 0.1e6
    assert abs(parameter_count("resnet18") - 11.69e6) < 0.01e6
    assert abs(parameter_count("mobilenet_v2") - 3.50e6) < 0.01e6


def test_every_inference_preset_has_a_training_preset():
    # but detectors (DETR's training needs box targets, which synthetic images do not have) and
    # sentence embedders (trained contrastively, on pairs: no standard `-train` for them)
    no_training = {"object-detection", "sentence-embedding"}
    inference = {n for n, p in PRESETS.items() if p.task == "inference"} - {
        n for n, p in PRESETS.items() if p.kind.name in no_training
    }
    training = {n for n, p in PRESETS.items() if p.task == "training"}
    assert {f"{n}-train" for n in inference} == training
    assert PRESETS["resnet18-train"].phases(PRESETS["resnet18-train"].defaults) == ("train",)


def test_mobilenet_forward_counts_images():
    params = PRESETS["mobilenet_v2"].resolve_params({"batch": 2, "image_size": 64})
    (forward,) = make_phases("vision-inference", build_model("mobilenet_v2"), params, "cpu")
    assert forward.step().shape == (2, 1000)


def test_real_weights_load_from_a_local_directory(tmp_path):
    saved = build_model("tiny-llama", seed=7)
    saved.save_pretrained(tmp_path / "tiny")
    params = PRESETS["slm-tiny"].resolve_params({"weights": str(tmp_path / "tiny")})
    loaded = build_model("tiny-llama", weights=params["weights"])
    assert all(
        torch.equal(a, b) for a, b in zip(saved.parameters(), loaded.parameters(), strict=True)
    )
    assert not torch.equal(next(build_model("tiny-llama").parameters()), next(loaded.parameters()))


def fake_hub_cache(root, repo_id):
    """The layout huggingface_hub leaves after a download: refs/main -> snapshots/HASH/."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")


def test_missing_weights_are_a_clear_error_and_nothing_is_downloaded(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    preset = PRESETS["slm-135m"]
    with pytest.raises(ValueError, match="no such directory"):
        preset.resolve_params({"weights": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match="without config.json"):
        preset.resolve_params({"weights": str(tmp_path)})
    with pytest.raises(ValueError, match="never downloads"):
        preset.resolve_params({"weights": "HuggingFaceTB/SmolLM2-135M"})


def test_a_hub_id_already_in_the_cache_is_accepted(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    fake_hub_cache(tmp_path, "org/model")
    assert PRESETS["slm-135m"].resolve_params({"weights": "org/model"})["weights"] == "org/model"
