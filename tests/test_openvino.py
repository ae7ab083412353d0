"""The OpenVINO backend on the CPU: the same graphs and phases as torch, precision hints."""

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("onnxscript")

import greenbench
from greenbench.backends import (
    check_available,
    onnx_runtime,
    openvino_runtime,
    parse_device,
    skip_reason,
)
from greenbench.energy.meter import SharedPackageMeter
from greenbench.errors import GreenbenchError
from greenbench.models import build_model
from greenbench.tasks import make_phases
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS


def test_devices_parse_and_a_missing_device_names_its_driver():
    assert parse_device("openvino:npu") == "openvino:NPU"
    with pytest.raises(ValueError, match="unknown OpenVINO device 'TPU'"):
        parse_device("openvino:TPU")
    check_available("openvino:CPU")
    with pytest.raises(GreenbenchError, match="install the NPU driver"):
        check_available("openvino:NPU")


def prepared(name, variant="fp32", **overrides):
    preset = PRESETS[name]
    params = preset.resolve_params(overrides)
    model = build_model(preset.architecture)
    session = openvino_runtime.session_factory("openvino:CPU", variant)
    phases, logits = onnx_runtime.prepare_graphs(preset.kind, model, params, session)
    return model, params, phases, logits


@pytest.mark.slow
def test_lm_decode_gives_torch_tokens_and_vision_torch_logits():
    model, params, (prefill, decode), logits = prepared("slm-tiny", batch=2, new_tokens=5)
    assert logits.shape == (2, 16, 512)
    _, torch_decode = make_phases("lm-inference", model, params, "cpu")
    torch_decode.reset()
    decode.reset()
    assert np.array_equal(decode.step(), torch_decode.step().numpy())

    model, params, (forward,), _ = prepared("resnet-tiny")
    (torch_forward,) = make_phases("vision-inference", model, params, "cpu")
    np.testing.assert_allclose(forward.step(), torch_forward.step().numpy(), rtol=1e-4, atol=1e-5)


def test_variant_rules():
    def reason(workload, variant, device="openvino:CPU"):
        return skip_reason(PRESETS[workload].kind, get_variant(variant), device)

    assert reason("slm-tiny", "bf16") is None
    assert reason("slm-tiny", "int8-dynamic") == (
        "OpenVINO runs fp32, bf16, fp16, int8-wo, not int8-dynamic"
    )
    assert "inference workloads" in reason("slm-tiny-train", "fp32")


def test_only_intel_gpu_and_npu_cells_ask_ray_for_a_device_resource():
    from greenbench.executors.ray_executor import task_options

    assert task_options("openvino:CPU")["resources"] == {"greenbench-node": 1}
    assert task_options("openvino:NPU")["resources"] == {"greenbench-node": 1, "intel-npu": 1}


def test_npu_and_igpu_energy_is_labelled_as_inside_the_cpu_package(meter, clock):
    shared = SharedPackageMeter(meter)
    shared.begin_window()
    clock.sleep(1.0)
    assert shared.end_window().methods["gpu"] == "in-cpu-package"


@pytest.mark.slow
def test_a_run_on_openvino_records_energy_and_agreement_with_torch(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(
        'workloads = ["resnet-tiny"]\ndevices = ["openvino:CPU"]\nvariants = ["fp32", "bf16"]\n'
        "[protocol]\nrepetitions = 1\nmin_window_s = 0.2\nidle_s = 0.2\nmin_calls = 1\n"
        "settle_max_s = 0.5\nwarmup_max_s = 0.5\n"
    )
    result = greenbench.run(str(suite), out=tmp_path / "r")
    assert result.ok
    frame = result.to_frame()
    assert (frame["energy_j"] > 0).all() and set(frame["device"]) == {"openvino:CPU"}
    assert frame["fidelity_top1"].between(0.9, 1.0).all()
