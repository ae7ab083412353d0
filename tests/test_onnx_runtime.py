"""The ONNX Runtime backend on the CPU: export, sessions, phases that agree with torch."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import greenbench
from greenbench.backends import check_available, onnx_runtime, parse_device, skip_reason
from greenbench.errors import GreenbenchError
from greenbench.models import build_model
from greenbench.protocol import TokenLatency
from greenbench.tasks import make_phases
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS


def graphs(preset, model, params, variant):
    session = onnx_runtime.ort_session("onnxruntime:CPU", variant)
    return onnx_runtime.prepare_graphs(preset.kind, model, params, session)


def test_devices_parse_and_name_the_missing_provider():
    assert parse_device("onnxruntime:cpu") == "onnxruntime:CPU"
    assert parse_device("ONNXRuntime:openvino") == "onnxruntime:OpenVINO"
    with pytest.raises(ValueError, match="unknown ONNX Runtime provider 'tpu'"):
        parse_device("onnxruntime:tpu")
    check_available("onnxruntime:CPU")
    with pytest.raises(GreenbenchError, match="install onnxruntime-gpu"):
        check_available("onnxruntime:CUDA")


@pytest.mark.slow
def test_lm_phases_decode_the_same_tokens_as_torch():
    preset = PRESETS["slm-tiny"]
    params = preset.resolve_params({"batch": 2, "prompt_tokens": 6, "new_tokens": 5})
    model = build_model(preset.architecture)
    phases, logits = graphs(preset, model, params, "fp32")
    prefill, decode = phases
    assert (prefill.units_per_call, decode.units_per_call) == (12, 10)
    out = prefill.step()
    assert out[0].shape == (2, 1, 512) and len(out) == 1 + 2 * model.config.num_hidden_layers
    assert logits.shape == (2, 6, 512)

    torch_prefill, torch_decode = make_phases("lm-inference", model, params, "cpu")
    torch_decode.reset()
    expected = torch_decode.step().numpy()
    decode.reset()
    first, second = decode.step(), decode.step()
    assert np.array_equal(first, expected) and np.array_equal(second, expected)


@pytest.mark.slow
def test_vision_forward_agrees_with_torch_and_int8_runs():
    preset = PRESETS["resnet-tiny"]
    params = preset.resolve_params({"batch": 3})
    model = build_model(preset.architecture)
    (forward,), logits = graphs(preset, model, params, "fp32")
    (torch_forward,) = make_phases("vision-inference", model, params, "cpu")
    np.testing.assert_allclose(forward.step(), torch_forward.step().numpy(), rtol=1e-4, atol=1e-5)
    assert logits.shape == (32, 10)  # fidelity images, in batches of 3 (the last of 2)

    lm = PRESETS["slm-tiny"]
    (prefill, decode), _ = graphs(lm, build_model(lm.architecture), lm.defaults, "int8-dynamic")
    assert np.isfinite(prefill.step()[0]).all()
    assert (prefill.token_latency, decode.token_latency) == (
        TokenLatency("ttft"),
        TokenLatency("tpot", lm.defaults["new_tokens"]),
    )


def test_variants_and_tasks_that_do_not_apply_are_skipped():
    def reason(workload, variant):
        return skip_reason(PRESETS[workload].kind, get_variant(variant), "onnxruntime:CPU")

    assert "inference workloads" in reason("slm-tiny-train", "fp32")
    assert reason("slm-tiny", "bf16") == "ONNX Runtime runs fp32 and int8-dynamic, not bf16"
    assert reason("slm-tiny", "int8-dynamic") is None
    assert "Linear layers only" in reason("resnet-tiny", "int8-dynamic")


def test_cells_ask_ray_for_the_hardware_their_provider_uses():
    from greenbench.executors.ray_executor import task_options

    assert task_options("onnxruntime:CUDA")["num_gpus"] == 1
    assert "num_gpus" not in task_options("onnxruntime:CPU")
    assert task_options("onnxruntime:CPU")["resources"] == {"greenbench-node": 1}


@pytest.mark.slow
def test_a_run_on_onnx_runtime_records_energy_and_agreement_with_torch(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(
        'workloads = ["slm-tiny"]\ndevices = ["onnxruntime:CPU"]\n[protocol]\nrepetitions = 1\n'
        "min_window_s = 0.2\nidle_s = 0.2\nmin_calls = 1\nsettle_max_s = 0.5\nwarmup_max_s = 0.5\n"
        "[params.slm-tiny]\nprompt_tokens = 8\n"
        "new_tokens = 4\n"
    )
    result = greenbench.run(str(suite), out=tmp_path / "r")
    assert result.ok
    frame = result.to_frame()
    assert set(frame["phase"]) == {"prefill", "decode"} and (frame["energy_j"] > 0).all()
    assert (frame["fidelity_top1"] == 1.0).all() and (frame["fidelity_kl"] < 1e-6).all()
