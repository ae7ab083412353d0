"""The Core ML backend on a machine without macOS: what it says, what it skips, and its
conversion against a fake coremltools (convert returns a model whose predict runs the traced
graph, so the phases and fidelity path are the real ones)."""

import sys
import types

import pytest

from greenbench.backends import coreml, parse_device, skip_reason
from greenbench.errors import GreenbenchError
from greenbench.models import build_model
from greenbench.variants import get_variant
from greenbench.workloads import PRESETS


def test_device_strings_name_the_compute_units():
    assert parse_device("coreml:ane") == "coreml:ANE"
    with pytest.raises(ValueError, match="compute unit 'npu'.*coreml:ANE, coreml:GPU, coreml:CPU"):
        parse_device("coreml:npu")


def test_off_macos_it_says_so_and_what_to_install(monkeypatch):
    monkeypatch.setattr(coreml.platform, "system", lambda: "Linux")
    with pytest.raises(GreenbenchError, match="macOS only"):
        coreml.BACKEND.check_available("coreml:ANE")
    (row,) = coreml.BACKEND.device_rows()
    assert not row.present and "greenbench[apple]" in row.method
    monkeypatch.setattr(coreml.platform, "system", lambda: "Darwin")
    monkeypatch.setitem(sys.modules, "coremltools", None)
    with pytest.raises(GreenbenchError, match=r"greenbench\[apple\]"):
        coreml.BACKEND.check_available("coreml:GPU")


def test_what_core_ml_skips():
    assert "runs fp32 and fp16, not bf16" in skip_reason(
        PRESETS["resnet-tiny"].kind, get_variant("bf16"), "coreml:GPU"
    )
    assert "vision-inference workloads, not lm-inference" in skip_reason(
        PRESETS["slm-tiny"].kind, get_variant("fp16"), "coreml:CPU"
    )
    ane = coreml.BACKEND.device_skip_reason(get_variant("fp32"), "coreml:ANE")
    assert "fp16 only" in ane
    assert coreml.BACKEND.device_skip_reason(get_variant("fp16"), "coreml:ANE") is None


def fake_coremltools(converted):
    def convert(traced, inputs, convert_to, compute_units, compute_precision):
        import torch

        converted.update(shape=inputs[0].shape, units=compute_units, precision=compute_precision)

        class Model:
            def predict(self, feed):
                with torch.inference_mode():
                    return {"logits": traced(torch.from_numpy(feed["pixel_values"])).numpy()}

        return Model()

    return types.SimpleNamespace(
        convert=convert,
        TensorType=lambda name, shape: types.SimpleNamespace(name=name, shape=shape),
        ComputeUnit=types.SimpleNamespace(CPU_AND_NE="ne", CPU_AND_GPU="gpu", CPU_ONLY="cpu"),
        precision=types.SimpleNamespace(FLOAT16="f16", FLOAT32="f32"),
    )


def test_conversion_traces_the_vision_graph_at_the_phase_batch(monkeypatch):
    import torch

    converted = {}
    monkeypatch.setitem(sys.modules, "coremltools", fake_coremltools(converted))
    monkeypatch.setattr(coreml.vision_inference, "FIDELITY_IMAGES", 4)  # a batch and a part
    preset = PRESETS["resnet-tiny"]
    params = preset.resolve_params({"batch": 3, "image_size": 32})  # last batch not full
    model = build_model(preset.architecture).eval()
    (forward,), logits = coreml.convert_vision(model, params, "coreml:ANE", "fp16")
    assert converted["shape"][0] == 3 and converted["units"] == "ne"
    assert converted["precision"] == "f16"
    reference = preset.kind.fidelity_logits(model, params, "cpu")
    assert torch.allclose(logits, reference, atol=1e-4)
    assert forward.unit == "image" and forward.step() is not None
