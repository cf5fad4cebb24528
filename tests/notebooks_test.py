"""Every notebook in notebooks/ runs top to bottom (SMOKE=1: tiny data).

This is how CI runs the notebooks: in a fresh kernel, in an empty working
folder, offline. SMOKE=1 makes each one use tiny data and a few steps; see
notebooks/README.md.
"""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


def _outputs(notebook):
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("SMOKE", "1")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = _outputs(notebook)
    errors = [output for output in outputs if output.get("output_type") == "error"]
    assert not errors
    # Every code cell ran, and the notebook wrote nothing into its folder
    # (files go to temporary folders, so running it leaves no litter).
    assert all(
        cell.execution_count for cell in notebook.cells if cell.cell_type == "code"
    )
    assert not list(tmp_path.iterdir())
    # Figures render: a notebook drawing with matplotlib shows PNGs.
    source = "\n".join(cell.source for cell in notebook.cells)
    if "matplotlib" in source:
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, "no figure was displayed"
