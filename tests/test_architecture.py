"""The package's shape: subpackages by stage whose modules import as modules, a public API
that still answers every documented name, and the underscore rule (a name with a leading
underscore is private to its module: no other module imports it). The layers and the absence
of cycles are checked by ``lint-imports`` (.importlinter), which .ci/run runs."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import cartforensics as cf

PACKAGE = Path(cf.__file__).resolve().parent
STAGES = ("go", "io", "model", "analysis", "present", "jobs", "_runtime", "cli")


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(cf.__path__, "cartforensics.")
                  if not m.name.endswith("__main__"))


def test_every_stage_is_a_subpackage_with_a_docstring() -> None:
    for stage in STAGES:
        mod = importlib.import_module(f"cartforensics.{stage}")
        assert hasattr(mod, "__path__"), stage
        assert (mod.__doc__ or "").strip(), f"cartforensics.{stage} has no docstring"
    # the package docstring names every stage
    for stage in STAGES:
        assert f"{stage}/" in (cf.__doc__ or ""), stage


_IMPORT_AS = """
import importlib, sys, types
bad = []
for name in sys.argv[1:]:
    parent, _, leaf = name.rpartition(".")
    exec(f"import {name} as m")  # what `import x.y.z as m` hands back: the parent's attribute
    if not isinstance(m, types.ModuleType):
        bad.append(name)
print(" ".join(bad))
"""


def test_import_as_gives_the_module() -> None:
    """``import cartforensics.model.replay as m`` hands back the module, never a function of
    the same name that a package bound over it (in a fresh interpreter, every module)."""
    names = _modules()
    assert "cartforensics.model.replay" in names and "cartforensics.jobs.convert" in names
    run = subprocess.run([sys.executable, "-c", _IMPORT_AS, *names], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == []


def test_every_public_name_still_answers() -> None:
    for name in cf.__all__:
        assert getattr(cf, name) is not None, name
    for name in ("replay", "convert", "findings", "metrics", "repair", "read_events",
                 "write_report", "restore"):
        assert callable(getattr(cf, name)) and not isinstance(getattr(cf, name),
                                                               types.ModuleType), name


def test_the_version_has_one_home() -> None:
    from cartforensics._version import __version__

    assert cf.__version__ == __version__
    defining = [p for p in PACKAGE.rglob("*.py")
                if any(isinstance(n, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__version__" for t in n.targets)
                    for n in ast.parse(p.read_text()).body)]
    assert [p.relative_to(PACKAGE).as_posix() for p in defining] == ["_version.py"]


def _private_imports() -> list[str]:
    """``from cartforensics.x import _name`` anywhere in the package, where ``_name`` is a
    name inside module x (private modules such as the compiled cores are packages' own)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                    "cartforensics"):
                continue
            for alias in node.names:
                n = alias.name
                if not n.startswith("_") or n.startswith("__"):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{n}")
                    continue  # a private module of that package
                except ImportError:
                    pass
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.module}.{n}")
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    assert _private_imports() == []


def test_the_library_never_imports_its_cli() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("cartforensics.cli"), rel
                assert node.module != "argparse", rel
            elif isinstance(node, ast.Import):
                assert all(a.name != "argparse" and not a.name.startswith("cartforensics.cli")
                           for a in node.names), rel


def test_a_documented_module_that_moved_still_imports_and_warns() -> None:
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import cartforensics.sample\nexcept DeprecationWarning as w:\n"
            "    print(w)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "cartforensics.jobs.sample" in run.stdout, run.stderr
    with pytest.warns(DeprecationWarning):
        sys.modules.pop("cartforensics.sample", None)
        from cartforensics.sample import write_sample
    from cartforensics.jobs.sample import write_sample as moved

    assert write_sample is moved
