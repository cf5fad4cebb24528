"""Data flows one way: layers <- architectures <- conversion <- applications.

Read from the source with `ast`, so a cycle fails here even when Python's
import order happens to resolve it.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_eca"

# package -> the keras_eca packages it must never import.
FORBIDDEN = {
    "layers": {"applications", "conversion", "checkpoints", "benchmark"},
    "architectures": {"applications", "conversion", "checkpoints", "layers"},
    "checkpoints": {"applications", "conversion", "layers", "benchmark"},
    "conversion": {"applications", "benchmark"},
    # training may use data and applications; the CLI sits on top of it.
    "training": {"cli"},
    # data may use applications (the ImageNet statistics), never training.
    "data": {"training", "cli", "benchmark"},
    # visualization reads models; fine-tuning and the CLI use it.
    "visualization": {"finetune", "cli", "training", "data", "benchmark"},
    # fine-tuning stands on data, training and visualization, below the CLI.
    "finetune": {"cli"},
    # detection puts the builders into Keras detectors, below the CLI.
    "detection": {"cli", "finetune", "benchmark"},
    # The inference form rewrites models of layers; export serves it.
    "inference": {
        "applications", "conversion", "checkpoints", "data", "training",
        "finetune", "detection", "visualization", "export", "cli", "benchmark",
    },
    # export serves every model (detectors duck-typed), below them all.
    "export": {"detection", "training", "finetune", "cli", "benchmark"},
}


def _imported_packages(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "keras_eca":
                names = [f"keras_eca.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "keras_eca" and len(parts) > 1:
                yield parts[1], node.lineno


def _files(package):
    single = PACKAGE / f"{package}.py"
    return [single] if single.exists() else sorted(
        (PACKAGE / package).rglob("*.py")
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_do_not_import_higher_ones(package):
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports keras_eca.{name}"
        for path in _files(package)
        for name, line in _imported_packages(path)
        if name in FORBIDDEN[package]
    ]
    assert not found, "\n".join(found)


def test_the_scan_sees_imports():
    names = {
        name
        for path in _files("conversion")
        for name, _ in _imported_packages(path)
    }
    assert {"architectures", "layers"} <= names
