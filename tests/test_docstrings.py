"""The examples in the package's docstrings run and print what they say (the ones marked
``+SKIP`` need a corpus and are documentation only)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cartforensics


def _with_examples() -> list[str]:
    names = []
    for m in pkgutil.walk_packages(cartforensics.__path__, "cartforensics."):
        if m.name.endswith("__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(m.name)
        if any(t.examples for t in doctest.DocTestFinder().find(module)):
            names.append(m.name)
    return sorted(names)


MODULES = _with_examples()


def test_the_package_has_examples() -> None:
    assert {"cartforensics.go.json", "cartforensics.go.envelope", "cartforensics.io.logs"} <= set(
        MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
