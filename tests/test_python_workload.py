"""Python workloads: factories by module, file or entry point, their errors, variants and the
README's example run end to end."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import greenbench
from greenbench import python_workload, workload_factories
from greenbench.api import skip_reason
from greenbench.backends import cpu
from greenbench.cell import Cell
from greenbench.cli import main
from greenbench.errors import GreenbenchError
from greenbench.python_workload import PythonWorkloadError, Workload, WorkloadPhase
from greenbench.suite import load_suite
from greenbench.workloads import get_preset

README = Path(__file__).resolve().parent.parent / "README.md"

MLP = """
import torch
import greenbench


def build(device):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def forward(model, params, device):
    x = torch.randn(params["batch"], 8).to(device, greenbench.input_dtype(model))
    return lambda: model(x)


def factory():
    phase = greenbench.WorkloadPhase("forward", "sample", forward, units_per_call="batch")
    return greenbench.Workload(build, [phase], params={"batch": 2, "scale": 1.0})
"""


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """Each test imports its own modules from its own folder, as the current directory."""
    before = set(sys.modules)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    workload_factories.forget()
    yield
    workload_factories.forget()
    # only the test's own modules: dropping a library's lazily imported parts (torch.export's
    # dynamo and inductor) would make their next import register torch ops twice
    for name in set(sys.modules) - before:
        if _from_folder(sys.modules[name], tmp_path):
            del sys.modules[name]


def _from_folder(module: object, folder: Path) -> bool:
    paths = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
    return any(p and Path(p).resolve().is_relative_to(folder.resolve()) for p in paths)


def write(tmp_path: Path, module: str, source: str) -> str:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    return module


def test_a_module_factory_is_a_preset_with_its_phases_params_and_model(tmp_path):
    write(tmp_path, "mlp_a", MLP)
    preset = get_preset("mlp_a:factory")
    assert preset.task == "inference" and preset.architecture == "Sequential"
    assert preset.parameter_count() == 8 * 16 + 16 + 16 * 4 + 4
    assert preset.phases(preset.defaults) == ("forward",)
    assert preset.resolve_params({"batch": 3, "scale": 2}) == {"batch": 3, "scale": 2.0}
    prepared = cpu.BACKEND.prepare(Cell("mlp_a:factory", "fp32", "cpu", {"batch": 3}), print)
    (phase,) = prepared.phases
    assert (phase.name, phase.unit, phase.units_per_call) == ("forward", "sample", 3)
    assert phase.step().shape == (3, 4)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"batch": "8"}, "'batch' must be a whole number like its default, got '8'"),
        ({"scale": True}, "'scale' must be a number like its default"),
        ({"size": 1}, "unknown parameter 'size' for mlp_b:factory (known: batch, scale"),
        ({"weights": "x"}, "'weights' does not apply to mlp_b:factory: its factory builds it"),
    ],
)
def test_bad_parameters_in_a_suite_are_one_line_naming_the_key(tmp_path, overrides, problem):
    write(tmp_path, "mlp_b", MLP)
    lines = [f"{k} = {v!r}".replace("'", '"').replace("True", "true") for k, v in overrides.items()]
    suite = tmp_path / "s.toml"
    suite.write_text('workloads = ["mlp_b:factory"]\n[params."mlp_b:factory"]\n' + "\n".join(lines))
    with pytest.raises(GreenbenchError, match=re.escape(problem)):
        load_suite(str(suite))


def test_suite_params_reach_the_cells(tmp_path):
    write(tmp_path, "mlp_c", MLP)
    suite = tmp_path / "s.toml"
    suite.write_text('workloads = ["mlp_c:factory"]\n[params."mlp_c:factory"]\nbatch = 8\n')
    (cell,) = load_suite(str(suite)).cells()
    assert cell.params == {"batch": 8, "scale": 1.0}


def test_param_rules_refuse_with_their_own_message(tmp_path):
    write(
        tmp_path,
        "ruled",
        MLP
        + """
def even(value):
    if value % 2:
        raise ValueError("'batch' must be even")
    return value


def ruled():
    return greenbench.Workload(build, factory().phases, {"batch": 2}, param_rules={"batch": even})
""",
    )
    with pytest.raises(ValueError, match="'batch' must be even"):
        get_preset("ruled:ruled").resolve_params({"batch": 3})


BROKEN = {
    "no module": ("nosuch_module_xyz:factory", None, "no module 'nosuch_module_xyz' in"),
    "no attribute": ("wl_attr:factry", MLP, "wl_attr has no 'factry' (its callables: build,"),
    "import fails": ("wl_syntax:factory", "def factory(:\n", "importing wl_syntax failed"),
    "dependency missing": (
        "wl_dep:factory",
        "import nosuch_dependency_xyz\n",
        "importing wl_dep failed (ModuleNotFoundError: No module named 'nosuch_dependency_xyz')",
    ),
    "factory raises": (
        "wl_raises:factory",
        "def factory():\n    raise RuntimeError('no GPU here')\n",
        "the factory raised RuntimeError: no GPU here; fix the factory",
    ),
    "not a Workload": (
        "wl_dict:factory",
        "def factory():\n    return {'model': None}\n",
        "the factory returned a dict, not a greenbench.Workload",
    ),
    "not callable": ("wl_const:factory", "factory = 3\n", "names 3, not a factory"),
    "no phases": (
        "wl_nophase:factory",
        "import greenbench\ndef factory():\n    return greenbench.Workload(lambda d: None, [])\n",
        "phases must be a non-empty list of greenbench.WorkloadPhase",
    ),
    "bad units": (
        "wl_units:factory",
        MLP.replace('units_per_call="batch"', 'units_per_call="size"'),
        "phase 'forward': units_per_call 'size' must name an integer parameter in params",
    ),
    "a phase that is not a WorkloadPhase": (
        "wl_tuple:factory",
        "import greenbench\ndef factory():\n"
        "    return greenbench.Workload(lambda d: None, [('forward', 'sample')])\n",
        "a phase is a tuple, not a greenbench.WorkloadPhase",
    ),
    "no such file": ("missing_dir/wl.py:factory", None, "no such file 'missing_dir/wl.py'"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_bad_python_workload_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    name, source, problem = BROKEN[case]
    if source is not None:
        write(tmp_path, name.split(":")[0], source)
    out = tmp_path / "results"
    assert main(["run", "--workload", name, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"greenbench: error: --workload: workload '{name}'")
    assert problem in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_an_entry_point_of_an_installed_package_names_a_workload(tmp_path):
    """A fake distribution on sys.path: what `pip install` of a package registering one leaves."""
    write(tmp_path, "fakepkg_bench", MLP)
    info = tmp_path / "fakepkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[greenbench.workloads]\nfake-mlp = fakepkg_bench:factory\nfake-bad = fakepkg_bench:nope\n"
    )
    assert "fake-mlp" in workload_factories.entry_point_names()
    preset = get_preset("fake-mlp")
    assert preset.name == "fake-mlp" and preset.phases(preset.defaults) == ("forward",)
    (cell,) = load_suite(str(_suite(tmp_path, "fake-mlp"))).cells()
    assert cell.workload == "fake-mlp"
    with pytest.raises(PythonWorkloadError, match="its entry point 'fakepkg_bench:nope' does not"):
        get_preset("fake-bad")
    with pytest.raises(KeyError, match="unknown workload 'fake-none'"):
        get_preset("fake-none")


def _suite(tmp_path: Path, workload: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'workloads = ["{workload}"]\n')
    return path


def test_a_file_path_names_a_factory_and_its_guarded_code_stays_unrun(tmp_path):
    script = tmp_path / "sub" / "bench.py"
    script.parent.mkdir()
    script.write_text(MLP + '\nif __name__ == "__main__":\n    raise SystemExit("ran")\n')
    preset = get_preset(f"{script}:factory")
    assert preset.phases(preset.defaults) == ("forward",)
    assert get_preset("sub/bench.py:factory").architecture == "Sequential"


def test_run_takes_a_factory_or_its_workload_by_the_name_the_child_imports(tmp_path):
    write(tmp_path, "mlp_d", MLP)
    import mlp_d  # type: ignore[import-not-found]

    assert workload_factories.workload_name(mlp_d.factory) == "mlp_d:factory"
    assert workload_factories.workload_name(mlp_d.factory()) == "mlp_d:factory"
    assert get_preset("mlp_d:factory").defaults == {"batch": 2, "scale": 1.0}

    def nested():
        return mlp_d.factory()

    with pytest.raises(PythonWorkloadError, match="'.*nested' is not a module-level function"):
        workload_factories.workload_name(nested)
    made_at_top_level = eval("greenbench.Workload(mlp_d.build, mlp_d.factory().phases)")
    with pytest.raises(PythonWorkloadError, match="made outside a function"):
        workload_factories.workload_name(made_at_top_level)
    with pytest.raises(GreenbenchError, match="not a module-level function"):
        greenbench.run(workload=nested, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_factory_in_a_script_is_named_by_the_scripts_path(tmp_path, monkeypatch):
    """`python script.py` calling greenbench.run(workload=factory): the factory's module is
    __main__, which a child cannot import by name, so the name is the script's path."""
    script = tmp_path / "script.py"
    script.write_text(MLP + '\nif __name__ == "__main__":\n    raise SystemExit("ran")\n')
    namespace: dict = {"__name__": "__main__", "__file__": str(script)}
    exec(compile(script.read_text().split("if __name__")[0], str(script), "exec"), namespace)
    # raising=False: under pytest-xdist the worker's __main__ has no __file__ of its own
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)
    name = workload_factories.workload_name(namespace["factory"])
    assert name == f"{script}:factory"
    workload_factories.forget()  # what the cell's child starts with: the name alone
    assert get_preset(name).phases({"batch": 2}) == ("forward",)


def test_variants_apply_where_they_make_sense_and_skip_with_reasons(tmp_path):
    write(
        tmp_path,
        "kinds",
        MLP
        + """
def conv(device):
    return torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))


def cnn():
    return greenbench.Workload(conv, factory().phases, {"batch": 2})


def train(model, params, device):
    return lambda: model(torch.randn(2, 8)).sum().backward()


def training():
    phase = greenbench.WorkloadPhase("train", "sample", train, units_per_call=2)
    return greenbench.Workload(build, [phase], task="training")
""",
    )
    reasons = {
        (workload, variant, device): skip_reason(Cell(f"kinds:{workload}", variant, device, {}))
        for workload in ("factory", "cnn", "training")
        for variant in ("fp32", "bf16", "fp16", "int8-dynamic", "bf16+compile")
        for device in ("cpu", "onnxruntime:CPU")
    }
    assert reasons["factory", "int8-dynamic", "cpu"] is None
    assert reasons["factory", "bf16+compile", "cpu"] is None
    assert "quantizes Linear layers only" in reasons["cnn", "int8-dynamic", "cpu"]
    assert reasons["cnn", "bf16", "cpu"] is None
    assert reasons["training", "bf16", "cpu"] is None
    assert "fp16 training needs gradient scaling" in reasons["training", "fp16", "cpu"]
    assert "int8-dynamic is an inference variant" in reasons["training", "int8-dynamic", "cpu"]
    assert reasons["factory", "fp32", "onnxruntime:CPU"] == (
        "ONNX Runtime cannot run python-inference workloads (no ONNX graphs for them)"
    )


def test_training_steps_autocast_under_bf16(tmp_path):
    seen = []

    def train(model, params, device):
        def step():
            seen.append(torch.is_autocast_enabled("cpu"))
            return model(torch.randn(2, 8)).sum().backward()

        return step

    workload = Workload(
        lambda device: torch.nn.Linear(8, 2),
        [WorkloadPhase("train", "sample", train)],
        task="training",
    )
    python_workload.check_workload("t", workload)
    kind = python_workload.workload_kind(workload, 1.0)
    model = python_workload.build_workload_model(workload, "cpu")
    assert model.training
    for autocast in (None, torch.bfloat16):
        (phase,) = kind.make_phases(model, {}, "cpu", autocast)
        phase.step()
    assert seen == [False, True]


def test_quantized_variant_scores_fidelity_against_fp32(tmp_path):
    write(
        tmp_path,
        "fid",
        MLP
        + """
def outputs(model, params, device):
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    return model(x.to(device, greenbench.input_dtype(model)))


def scored():
    return greenbench.Workload(build, factory().phases, {"batch": 2}, fidelity=outputs)
""",
    )
    prepared = cpu.BACKEND.prepare(Cell("fid:scored", "int8-dynamic", "cpu", {"batch": 2}), print)
    columns = prepared.record_columns()
    assert columns["fidelity_n"] == 16 and columns["quantized_share"] == 1.0
    assert 0 <= columns["fidelity_kl"] < 0.01


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_torchscript_file_runs_precision_variants_only(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Linear(8, 4))).save(str(path))
    write(
        tmp_path,
        "scripted",
        MLP + f"\ndef script():\n    return greenbench.Workload({str(path)!r}, *SCRIPTED)\n"
        "SCRIPTED = (factory().phases, {'batch': 2})\n",
    )
    assert get_preset("scripted:script").architecture == "TorchScript"
    cell = Cell("scripted:script", "bf16", "cpu", {"batch": 2})
    assert skip_reason(cell) is None
    (phase,) = cpu.BACKEND.prepare(cell, print).phases
    assert phase.step().dtype == torch.bfloat16
    reason = skip_reason(Cell("scripted:script", "int8-dynamic", "cpu", {}))
    assert "TorchScript" in reason
    assert "torch.compile does not take TorchScript" in skip_reason(
        Cell("scripted:script", "fp32+compile", "cpu", {})
    )


def test_an_onnx_file_runs_in_fp32_through_onnx_runtime_and_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from greenbench.tasks.onnx_export import export_onnx

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    path = tmp_path / "mlp.onnx"
    x = torch.randn(2, 8)
    export_onnx(module, (x,), path, ["x"], {"input": {0: torch.export.Dim("batch", min=1, max=64)}})
    write(
        tmp_path,
        "exported",
        MLP + f"\ndef graph():\n    return greenbench.Workload({str(path)!r}, *EXPORTED)\n"
        "EXPORTED = (factory().phases, {'batch': 2})\n",
    )
    preset = get_preset("exported:graph")
    assert preset.architecture == "ONNX"
    assert preset.parameter_count() == sum(p.numel() for p in module.parameters())
    model = preset.build_model({"batch": 2})
    assert torch.allclose(model(x), module(x), atol=1e-5)
    (phase,) = cpu.BACKEND.prepare(
        Cell("exported:graph", "fp32", "cpu", {"batch": 2}), print
    ).phases
    assert phase.step().shape == (2, 4)
    for variant in ("bf16", "int8-dynamic", "fp32+compile"):
        reason = skip_reason(Cell("exported:graph", variant, "cpu", {"batch": 2}))
        assert reason and "an ONNX model runs as exported" in reason, variant


def test_a_missing_onnx_file_is_one_line(tmp_path):
    write(tmp_path, "gone", MLP + "\ndef graph():\n    return greenbench.Workload('no.onnx', [])\n")
    with pytest.raises(PythonWorkloadError, match="no ONNX file 'no.onnx'; check the path"):
        get_preset("gone:graph")


def readme_example() -> tuple[str, str]:
    """The README's Python workload and its command, as written there."""
    text = README.read_text(encoding="utf-8")
    code = re.search(r"```python\n(# my_workload\.py\n.*?)```", text, re.S)
    command = re.search(r"^greenbench run --workload my_workload:factory.*$", text, re.M)
    assert code and command, "the README's 'A Python workload' example is gone"
    return code.group(1), command.group(0)


def test_the_readme_example_runs_as_written(tmp_path, capsys):
    code, command = readme_example()
    (tmp_path / "my_workload.py").write_text(code)
    suite = tmp_path / "fast.toml"  # the example's workload, with a protocol made quick
    suite.write_text(
        'name = "fast"\nworkloads = ["resnet-tiny"]\n[protocol]\nrepetitions = 1\n'
        "min_window_s = 0.2\nmin_calls = 1\nwarmup_calls = 1\nidle_s = 0.2\n"
        "settle_max_s = 0\nwarmup_max_s = 0.2\n"
        '[params."my_workload:factory"]\nbatch = 4\n'
    )
    argv = command.split()[1:]
    variants = argv[argv.index("--variant") + 1].split(",")
    assert {"fp32", "int8-dynamic"} <= set(variants)
    # one cell, in the CI budget: int8-dynamic scores itself against fp32 in the same child
    argv[argv.index("--variant") + 1] = "int8-dynamic"
    out = tmp_path / "r"
    assert main([*argv, "--suite", str(suite), "--out", str(out)]) == 0, capsys.readouterr()
    (row,) = greenbench.load_results(out).to_dict("records")
    assert (row["workload"], row["variant"], row["status"]) == (
        "my_workload:factory",
        "int8-dynamic",
        "ok",
    )
    assert row["unit"] == "sample" and row["unit_count"] == row["calls"] * 4
    assert row["architecture"] == "Sequential" and row["parameters"] == 273418
    assert row["fidelity_n"] == 4 and row["quantized_share"] == 1.0
    assert row["energy_j"] > 0


def test_greenbench_run_takes_the_factory_and_the_workload_it_returns(tmp_path, monkeypatch):
    write(tmp_path, "mlp_e", MLP)
    import mlp_e  # type: ignore[import-not-found]

    suites = []

    def execute(opened, executor, reporter, sources):
        suites.append(opened.suite)
        return None

    monkeypatch.setattr("greenbench.api._execute", execute)
    greenbench.run(workload=mlp_e.factory, out=tmp_path / "r")
    greenbench.run(workloads=["resnet-tiny", mlp_e.factory()], out=tmp_path / "r")
    assert [s.workloads for s in suites] == [
        ("mlp_e:factory",),
        ("resnet-tiny", "mlp_e:factory"),
    ]
    assert all(c.params == {"batch": 2, "scale": 1.0} for c in suites[0].cells())
