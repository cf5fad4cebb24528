"""Every notebook has its percent-format source beside it, and they agree.

notebooks/X.py is what a reviewer reads and what is edited;
notebooks/X.ipynb is generated from it (`jupytext --sync notebooks/*.py`)
and committed without outputs. A pair drifts when the cells of the
.ipynb (type and source) differ from the cells jupytext reads from the .py;
outputs and metadata are ignored. See notebooks/README.md.
"""

import difflib
import pathlib
import shutil

import jupytext
import nbformat
import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOK_DIR.glob("*.py"))
FORMATS = "ipynb,py:percent"


def _cells(notebook):
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def pair_drift(ipynb_path):
    """How the cells of `ipynb_path` differ from those of its .py source.

    Returns "" when they agree, else a description naming the first cell
    that differs, with a diff of its source.
    """
    ipynb_path = pathlib.Path(ipynb_path)
    py_path = ipynb_path.with_suffix(".py")
    if not py_path.exists():
        return f"{ipynb_path.name} has no source {py_path.name}"
    expected = _cells(jupytext.read(py_path, fmt="py:percent"))
    actual = _cells(nbformat.read(ipynb_path, as_version=4))
    if expected == actual:
        return ""
    fix = f"run `jupytext --sync notebooks/{py_path.name}`"
    for index, (want, got) in enumerate(zip(expected, actual)):
        if want != got:
            diff = "\n".join(
                difflib.unified_diff(
                    want[1].splitlines(),
                    got[1].splitlines(),
                    f"{py_path.name} cell {index} ({want[0]})",
                    f"{ipynb_path.name} cell {index} ({got[0]})",
                    lineterm="",
                )
            )
            return f"cell {index} differs ({fix}):\n{diff or 'cell types differ'}"
    return (
        f"{py_path.name} has {len(expected)} cells, {ipynb_path.name} "
        f"{len(actual)} ({fix})"
    )


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert NOTEBOOKS
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SOURCES]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_source_is_a_paired_percent_script(path):
    metadata = jupytext.read(path).metadata["jupytext"]
    assert metadata["formats"] == FORMATS
    assert metadata["text_representation"]["format_name"] == "percent"
    # Nothing outside the cells: a percent script starts with its header.
    assert path.read_text().startswith("# ---\n# jupyter:\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_has_not_drifted(path):
    drift = pair_drift(path)
    assert not drift, drift


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["jupytext"]["formats"] == FORMATS
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} was run"


@pytest.fixture
def pair(tmp_path):
    """A copy of the first pair, to be made to drift."""
    ipynb = shutil.copy(NOTEBOOKS[0], tmp_path)
    shutil.copy(NOTEBOOKS[0].with_suffix(".py"), tmp_path)
    return pathlib.Path(ipynb)


def test_copy_of_a_pair_agrees(pair):
    assert pair_drift(pair) == ""


def test_drift_an_edited_code_line(pair):
    source = pair.with_suffix(".py")
    text = source.read_text()
    assert "import numpy as np\n" in text
    source.write_text(text.replace("import numpy as np\n", "import numpy\n", 1))
    drift = pair_drift(pair)
    assert drift.startswith("cell 1 differs")
    assert "-import numpy\n+import numpy as np" in drift
    assert f"jupytext --sync notebooks/{source.name}" in drift


def test_drift_an_edited_markdown_cell_in_the_notebook(pair):
    notebook = nbformat.read(pair, as_version=4)
    notebook.cells[0].source += "\n\nOne more sentence."
    nbformat.write(notebook, pair)
    assert pair_drift(pair).startswith("cell 0 differs")


def test_drift_a_cell_added_to_the_source(pair):
    source = pair.with_suffix(".py")
    source.write_text(source.read_text() + "\n# %%\nprint('new cell')\n")
    drift = pair_drift(pair)
    assert "cells" in drift and drift.endswith(
        f"(run `jupytext --sync notebooks/{source.name}`)"
    )


def test_drift_a_cell_that_changed_type(pair):
    notebook = nbformat.read(pair, as_version=4)
    notebook.cells[0] = nbformat.v4.new_code_cell(notebook.cells[0].source)
    nbformat.write(notebook, pair)
    assert pair_drift(pair).startswith("cell 0 differs")


def test_outputs_and_metadata_are_not_drift(pair):
    notebook = nbformat.read(pair, as_version=4)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    code.execution_count = 1
    code.metadata["tags"] = ["x"]
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.write(notebook, pair)
    assert pair_drift(pair) == ""


def test_a_notebook_without_source(tmp_path):
    lone = shutil.copy(NOTEBOOKS[0], tmp_path / "lone.ipynb")
    assert pair_drift(lone) == "lone.ipynb has no source lone.py"
