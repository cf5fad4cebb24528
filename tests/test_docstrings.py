"""Runs every `>>>` example in the public modules' docstrings."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import keras
import keras_eca

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(keras_eca.__path__, prefix="keras_eca.")
    if keras.backend.backend() == "tensorflow" or ".layers" in info.name
)


def docstring_tests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    globs = {"np": np, "keras": keras, "keras_eca": keras_eca}
    return [t for t in finder.find(module, globs=globs) if t.examples]


def test_examples_exist():
    assert sum(len(docstring_tests(name)) for name in MODULES) >= 8


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in docstring_tests(module_name):
        result = runner.run(test)
        assert result.failed == 0, f"{test.name} failed, see the output above"
