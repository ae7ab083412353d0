"""Object detection (DETR) and the ViT-B/16 preset: phases, parameters, fidelity, variants,
parameter counts on the meta device, `hf:` detector checkpoints and one real run."""

import json

import pytest
from conftest import ONE_WINDOW_PROTOCOL

import greenbench
from greenbench.cli import main
from greenbench.errors import SuiteError
from greenbench.fidelity import score
from greenbench.models import build_model, linear_share, parameter_count
from greenbench.suite import parse_suite
from greenbench.tasks import KINDS, fidelity_logits, make_phases
from greenbench.tasks.object_detection import FIDELITY_IMAGES
from greenbench.variants import get_variant
from greenbench.workloads import LINEAR_COVERAGE, PRESETS, get_preset

TINY_QUERIES, TINY_LABELS = 10, 5  # models.py's tiny-detr


@pytest.fixture(scope="module")
def tiny_detr():
    return build_model("tiny-detr")


def test_object_detection_measures_a_forward_pass_per_image(tiny_detr):
    assert KINDS["object-detection"].phases == {"forward": "image"}
    preset = PRESETS["detr-tiny"]
    assert preset.kind.name == "object-detection" and preset.task == "inference"
    params = preset.resolve_params({"batch": 3})
    (forward,) = make_phases("object-detection", tiny_detr, params, "cpu")
    assert (forward.name, forward.unit, forward.units_per_call) == ("forward", "image", 3)
    # one class distribution per query over the labels and "no object"
    assert tuple(forward.step().shape) == (3, TINY_QUERIES, TINY_LABELS + 1)


def test_detection_presets_default_to_detrs_usual_800_px_and_take_smaller_images():
    assert PRESETS["detr-resnet50"].defaults == {"batch": 1, "image_size": 800}
    assert PRESETS["detr-resnet50"].resolve_params({"image_size": 512})["image_size"] == 512
    assert "detr-resnet50-train" not in PRESETS  # DETR training needs box targets


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"image_size": 16}, "'image_size' must be >= 32, got 16"),
        ({"batch": 0}, "'batch' must be a whole number >= 1, got 0"),
        ({"queries": 5}, "unknown parameter 'queries' for detr-tiny"),
    ],
)
def test_bad_detection_params_name_the_fix(params, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["detr-tiny"].resolve_params(params)
    with pytest.raises(SuiteError, match="params.detr-tiny"):
        parse_suite({"workloads": ["detr-tiny"], "params": {"detr-tiny": params}}, "s.toml")


def test_fidelity_scores_every_query_and_fp32_against_itself_is_exact(tiny_detr):
    params = PRESETS["detr-tiny"].resolve_params({})
    reference = fidelity_logits("object-detection", tiny_detr, params, "cpu")
    assert tuple(reference.shape) == (FIDELITY_IMAGES, TINY_QUERIES, TINY_LABELS + 1)
    same = score(reference, fidelity_logits("object-detection", tiny_detr, params, "cpu"))
    assert (same.top1_agreement, same.kl_divergence) == (1.0, 0.0)
    assert same.predictions == FIDELITY_IMAGES * TINY_QUERIES


def test_linear_only_quantization_skips_detr_but_takes_vit_b16():
    int8 = get_variant("int8-dynamic")
    for name in ("detr-resnet50", "detr-tiny"):
        assert "Linear layers only" in int8.skip_reason(PRESETS[name].kind)
        assert get_variant("bf16").skip_reason(PRESETS[name].kind) is None
    assert int8.skip_reason(PRESETS["vit-b16"].kind) is None
    assert PRESETS["vit-b16"].kind.name == "vision-inference"
    assert "inference variant" in int8.skip_reason(PRESETS["vit-b16-train"].kind)
    assert PRESETS["vit-b16-train"].kind.name == "vision-training"


@pytest.mark.parametrize("name", ["resnet50", "vit-b16", "vit-b16-train", "detr-resnet50"])
def test_a_presets_linear_quantization_follows_its_linear_share(name):
    """The rule `hf:` checkpoints get at run time, checked here for the presets' fixed flags."""
    preset = PRESETS[name]
    share = linear_share(preset.architecture)
    assert preset.kind.linear_quantization == (share >= LINEAR_COVERAGE), share


def test_full_size_presets_have_their_published_parameter_counts():
    # google/vit-base-patch16-224: 86.6 M; facebook/detr-resnet-50: 41.3 M as quoted (the DETR
    # paper rounds to 41 M), within 1 %: transformers' ResNet-50 has timm's layers
    assert parameter_count("vit-b16") == pytest.approx(86.6e6, rel=1e-3)
    assert parameter_count("detr-resnet50") == pytest.approx(41.3e6, rel=1e-2)
    assert PRESETS["vit-b16"].defaults == {"batch": 8, "image_size": 224}


@pytest.fixture(scope="module")
def detr_checkpoint(tmp_path_factory, tiny_detr):
    folder = tmp_path_factory.mktemp("checkpoints") / "detr"
    tiny_detr.save_pretrained(folder)
    return folder


def test_a_detr_checkpoint_is_an_object_detection_workload_with_its_own_weights(
    detr_checkpoint, tiny_detr
):
    import torch

    preset = get_preset(f"hf:{detr_checkpoint}")
    assert preset.kind.name == "object-detection"
    assert preset.architecture == "DetrForObjectDetection"
    assert preset.defaults == {"batch": 1, "image_size": 800}
    assert "Linear layers only" in get_variant("int8-dynamic").skip_reason(preset.kind)
    model = preset.build_model(preset.defaults)
    for name, tensor in tiny_detr.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert preset.parameter_count() == sum(p.numel() for p in tiny_detr.parameters())


def _bad(args, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", *args, "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("greenbench: error: ")
    assert not out.exists()
    return line


def _config(tmp_path, name, config):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_sigmoid_scored_detector_exits_2_naming_the_supported_detectors(tmp_path, capsys):
    config = {"architectures": ["DeformableDetrForObjectDetection"]}
    line = _bad(["--workload", f"hf:{_config(tmp_path, 'deformable', config)}"], tmp_path, capsys)
    assert "DeformableDetrForObjectDetection" in line
    assert "object detection (DETR, Table Transformer, YOLOS)" in line


def test_a_detector_checkpoint_takes_no_train_suffix(detr_checkpoint, tmp_path, capsys):
    line = _bad(["--workload", f"hf:{detr_checkpoint}-train"], tmp_path, capsys)
    assert "inference only" in line and "drop the '-train' suffix" in line


def test_a_timm_backbone_without_timm_exits_2_naming_the_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "timm" else find_spec(name)
    )
    # facebook/detr-resnet-50's config.json as transformers 4 wrote it
    config = {
        "architectures": ["DetrForObjectDetection"],
        "model_type": "detr",
        "use_timm_backbone": True,
        "backbone": "resnet50",
        "backbone_config": None,
    }
    folder = _config(tmp_path, "detr-timm", config)
    line = _bad(["--workload", f"hf:{folder}"], tmp_path, capsys)
    assert str(folder / "config.json") in line and "pip install timm" in line


FAST = (
    """
name = "detection"
workloads = ["detr-tiny"]
variants = ["fp32", "bf16", "int8-dynamic"]
devices = ["cpu"]
"""
    + ONE_WINDOW_PROTOCOL
)


@pytest.mark.slow
def test_detr_runs_end_to_end_with_energy_per_image_and_query_fidelity(tmp_path):
    suite = tmp_path / "detection.toml"
    suite.write_text(FAST)
    result = greenbench.run(str(suite), out=tmp_path / "results")
    assert result.ok
    frame = greenbench.load_results(tmp_path / "results")
    skipped = frame[frame["status"] != "ok"]
    assert list(skipped["variant"]) == ["int8-dynamic"]
    assert skipped["error"].str.contains("Linear layers only").all()
    ok = frame[frame["status"] == "ok"]
    assert set(zip(ok["phase"], ok["unit"], strict=True)) == {("forward", "image")}
    assert (ok["energy_j"] > 0).all()
    assert set(ok["architecture"]) == {"tiny-detr"}
    bf16 = ok[ok["variant"] == "bf16"]
    assert len(bf16) == 1 and (bf16["fidelity_n"] == FIDELITY_IMAGES * TINY_QUERIES).all()
    assert bf16["fidelity_top1"].between(0, 1).all() and (bf16["fidelity_kl"] >= 0).all()
    assert ok[ok["variant"] == "fp32"]["fidelity_top1"].isna().all()
