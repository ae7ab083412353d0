"""What importing greenbench costs: the pytest plugin and the CLI's help load no pandas or torch.

Each check runs in a fresh interpreter, since this test session has loaded everything already.
"""

import subprocess
import sys

import pytest

HEAVY = ("pandas", "torch", "plotly", "codecarbon", "apscheduler")


def loaded_after(code: str) -> set[str]:
    """The heavy top-level packages in sys.modules after running `code` in a fresh python."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_pytest_plugin_entry_point_loads_nothing_heavy():
    assert loaded_after("import greenbench, greenbench.pytest_plugin") == set()


def test_the_public_names_resolve_on_first_use():
    code = (
        "import greenbench\n"
        "from greenbench.api import RunResult, run\n"
        "from greenbench.results import load_results\n"
        "from greenbench.suite import Cell, Suite, load_suite\n"
        "assert greenbench.run is run and greenbench.load_results is load_results\n"
        "assert (greenbench.RunResult, greenbench.Cell) == (RunResult, Cell)\n"
        "assert (greenbench.Suite, greenbench.load_suite) == (Suite, load_suite)\n"
        "assert set(greenbench.__all__) <= set(dir(greenbench))\n"
        "from greenbench import run as imported\n"
        "assert imported is run"
    )
    assert "pandas" in loaded_after(code)  # the API itself does load pandas, once asked for


def test_an_unknown_name_is_an_attribute_error():
    import greenbench

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        greenbench.nonexistent  # noqa: B018


@pytest.mark.parametrize("argv", [["--help"], ["forecast", "--help"], ["schedule", "--help"]])
def test_cli_help_loads_neither_torch_nor_pandas(argv):
    code = (
        "import contextlib, io\n"
        "from greenbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})"
    )
    assert loaded_after(code) == set()
