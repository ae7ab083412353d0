import tomllib
from pathlib import Path

from greenbench.backends.cpu import cpu_info, rapl_domains
from greenbench.cli import main


def fake_powercap(root, zones):
    for zone, (name, energy) in zones.items():
        (root / zone).mkdir(parents=True)
        (root / zone / "name").write_text(name + "\n")
        if energy is not None:
            (root / zone / "energy_uj").write_text(f"{energy}\n")
    return root


def test_rapl_counters_are_found_in_a_powercap_tree(tmp_path):
    root = fake_powercap(
        tmp_path / "powercap",
        {
            "intel-rapl:0": ("package-0", 123456),
            "intel-rapl:0:0": ("dram", 42),
            "intel-rapl:1": ("package-1", None),  # no counter file: not readable
        },
    )
    assert rapl_domains(root) == ["package-0", "dram"]
    assert cpu_info(root).method.startswith("rapl: energy counters (package-0, dram)")


def test_without_rapl_the_cpu_is_an_estimate(tmp_path):
    info = cpu_info(tmp_path / "absent")
    assert info.present and info.method.startswith("cpu-load-estimate")


def test_devices_command_lists_the_cpu_and_why_others_are_missing(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "cpu" in out and "energy measured by" in out and "npu" in out


def test_install_hints_in_brackets_are_printed_as_written(capsys, monkeypatch):
    from greenbench import cli
    from greenbench.backends.base import DeviceInfo

    missing = DeviceInfo("openvino:*", False, "OpenVINO", "pip install 'greenbench[openvino]'")
    monkeypatch.setattr(cli, "list_devices", lambda: [missing])
    assert main(["devices"]) == 0
    assert "pip install 'greenbench[openvino]'" in capsys.readouterr().out


def test_devices_lists_every_cuda_family_with_what_it_needs(capsys):
    assert main(["devices"]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for family in ("AMD GPU (ROCm)", "NVIDIA Jetson", "NVIDIA GH200 Grace Hopper"):
        assert family in out
    assert 'pip install "greenbench[amd]"' in out and "jetson-rails" in out
    assert "nvml-module-counter" in out


def test_the_amd_install_hint_names_an_extra_that_installs_amdsmi():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert any(req.startswith("amdsmi>=") for req in extras["amd"])


def test_devices_lists_every_family_with_how_it_is_measured_or_what_to_install(capsys):
    from greenbench.backends import list_devices

    rows = {row.device: row for row in list_devices()}
    assert rows["cpu"].present and rows["cpu"].method.split(":")[0] in ("rapl", "cpu-load-estimate")
    xpu = next(row for device, row in rows.items() if device.startswith("xpu"))
    assert xpu.present or "greenbench[intel]" in xpu.method
    mps = rows["mps"]
    assert mps.present or "greenbench[apple]" in mps.method
    coreml = next(row for device, row in rows.items() if device.startswith("coreml"))
    assert coreml.present or "greenbench[apple]" in coreml.method


def test_root_only_rapl_is_shown_with_the_grant_command(tmp_path, monkeypatch):
    from test_rapl import root_only, zone

    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 1)
    root_only(monkeypatch, pkg / "energy_uj")
    method = cpu_info(tmp_path, tmp_path / "no-hwmon").method
    assert "root-only" in method and "sudo chmod o+r" in method
