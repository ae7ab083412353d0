"""Python workloads by name: `MODULE:FACTORY`, `FILE.py:FACTORY`, or an entry point's name.

`mypkg.bench:factory` (or `my_workload:factory` for a file my_workload.py in the current
directory, importable as with `python -m`), `path/to/file.py:factory`, or a name that an
installed package registers in the `greenbench.workloads` entry-point group. Each cell's child
process gets only that name and imports the factory again; the factory runs in the parent too,
so it should be cheap: the Workload's `model` builds the model, in the child.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenbench.errors import one_line
from greenbench.python_workload import (
    PythonWorkloadError,
    Workload,
    check_workload,
    model_summary,
    workload_kind,
)
from greenbench.tasks.base import WorkloadKind

ENTRY_POINT_GROUP = "greenbench.workloads"
_MODULE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_QUALNAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_NAME = re.compile(rf"(?P<target>{_MODULE}|.+\.py):(?P<qualname>{_QUALNAME.pattern})")


@dataclass(frozen=True)
class Loaded:
    """A factory's Workload with what greenbench derives from it, once per process."""

    workload: Workload
    kind: WorkloadKind
    architecture: str  # the model's class name
    parameters: int


# factories handed to greenbench.run in this process, by the name the children import
_REGISTERED: dict[str, Callable[[], Any]] = {}
_LOADED: dict[str, Loaded] = {}


def is_python_name(name: str) -> bool:
    """Whether `name` has the form of a factory (`module:factory`, `file.py:factory`)."""
    return _NAME.fullmatch(name) is not None


def entry_point_names() -> list[str]:
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def is_entry_point(name: str) -> bool:
    return bool(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name))


def load_workload(name: str) -> Loaded:
    """The Workload that the factory `name` returns, and its kind (once per process);
    PythonWorkloadError naming the fix when it cannot be imported, raises or returns
    something else."""
    if name not in _LOADED:
        factory = _REGISTERED.get(name) or _find_factory(name)
        try:
            workload = factory()
        except Exception as e:  # noqa: BLE001 - the user's code: any failure is reported
            raise PythonWorkloadError(
                f"workload '{name}': the factory raised {one_line(e)}; fix the factory"
            ) from None
        check_workload(name, workload)
        try:
            architecture, parameters, share = model_summary(workload)
        except Exception as e:  # noqa: BLE001 - the user's builder
            raise PythonWorkloadError(
                f"workload '{name}': building its model failed ({one_line(e)}); fix the model"
            ) from None
        _LOADED[name] = Loaded(workload, workload_kind(workload, share), architecture, parameters)
    return _LOADED[name]


def forget(name: str | None = None) -> None:
    """Drop what was loaded or registered (`name`, or everything): for tests and notebooks."""
    for table in (_LOADED, _REGISTERED):
        if name is None:
            table.clear()
        else:
            table.pop(name, None)


def _find_factory(name: str) -> Callable[[], Any]:
    match = _NAME.fullmatch(name)
    if match is None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
            try:
                factory = ep.load()
            except Exception as e:  # noqa: BLE001
                raise PythonWorkloadError(
                    f"workload '{name}': its entry point '{ep.value}' does not load "
                    f"({one_line(e)}); reinstall the package that registers it"
                ) from None
            return _callable(name, factory)
        raise PythonWorkloadError(f"unknown workload '{name}'")
    target, qualname = match["target"], match["qualname"]
    module = _import_file(name, target) if target.endswith(".py") else _import(name, target)
    value: Any = module
    for part in qualname.split("."):
        if not hasattr(value, part):
            public = sorted(k for k, v in vars(module).items() if callable(v) and k[0] != "_")
            raise PythonWorkloadError(
                f"workload '{name}': {target} has no '{qualname}' (its callables: "
                f"{', '.join(public) or 'none'}); check the name after the colon"
            )
        value = getattr(value, part)
    return _callable(name, value)


def _callable(name: str, value: Any) -> Callable[[], Any]:
    if not callable(value):
        raise PythonWorkloadError(
            f"workload '{name}' names {value!r}, not a factory; name a function that returns "
            "a greenbench.Workload"
        )
    return value


def _import(name: str, module: str) -> Any:
    """The module, with the current directory importable as `python -m` makes it."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise PythonWorkloadError(
                f"workload '{name}': no module '{module}' in {here} or the installed packages; "
                f"run greenbench from the folder holding {module.split('.')[0]}.py, or install "
                "its package"
            ) from None
        raise _import_failed(name, module, e) from None
    except Exception as e:  # noqa: BLE001 - the user's module: any failure is reported
        raise _import_failed(name, module, e) from None


def _import_file(name: str, target: str) -> Any:
    """A .py file as a module of its own (never `__main__`: a script's guarded code stays
    unrun), its folder importable as when the script runs."""
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise PythonWorkloadError(f"workload '{name}': no such file '{target}'; check the path")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    module_name = f"_greenbench_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001
        del sys.modules[module_name]
        raise _import_failed(name, str(path), e) from None
    return module


def _import_failed(name: str, module: str, error: BaseException) -> PythonWorkloadError:
    return PythonWorkloadError(
        f"workload '{name}': importing {module} failed ({one_line(error)}); fix the module "
        "or install what it imports"
    )


def workload_name(workload: Any) -> str:
    """The name the cells' children import for `workload`: a name as is, a factory's
    `module:qualname` (a script's factory by the script's path), or the factory that made a
    Workload; registered here so this process uses the object it was given."""
    if isinstance(workload, str):
        return workload
    if isinstance(workload, Workload):
        assert workload.maker is not None  # set by __post_init__
        module, qualname, file = workload.maker
        factory: Callable[[], Any] = lambda: workload  # noqa: E731 - this process has it
    elif callable(workload):
        module = getattr(workload, "__module__", None) or ""
        qualname = getattr(workload, "__qualname__", "")
        file = getattr(sys.modules.get(module), "__file__", None)
        factory = workload
    else:
        raise PythonWorkloadError(
            f"a workload is a name, a factory or a greenbench.Workload, not a "
            f"{type(workload).__name__}"
        )
    if qualname == "<module>":
        raise PythonWorkloadError(
            "this Workload was made outside a function: each cell's child process imports a "
            "factory by name, so return it from a module-level function and pass that"
        )
    if not _QUALNAME.fullmatch(qualname) or "." in qualname:
        raise PythonWorkloadError(
            f"'{qualname}' is not a module-level function: each cell's child process imports "
            "the factory by name, so define it at the top level of a module or script"
        )
    if module == "__main__":
        if not file:
            raise PythonWorkloadError(
                f"'{qualname}' is defined in an interactive session; put the factory in a .py "
                "file so each cell's child process can import it"
            )
        name = f"{Path(file).resolve()}:{qualname}"
    else:
        name = f"{module}:{qualname}"
    _REGISTERED[name] = factory
    _LOADED.pop(name, None)
    return name
