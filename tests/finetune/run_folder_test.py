"""The output folder: refused before training when it holds something
else, assembled beside it and moved into place at the end, so that an
interrupted run leaves it as it was."""

import json
import os
import subprocess
import sys

import pytest

from keras_eca.finetune import run as run_lib


def previous_run(path, extra="old.txt"):
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps({"command": "finetune"}))
    (path / extra).write_text("from the earlier run")
    (path / "saved_model").mkdir()
    (path / "saved_model" / "saved_model.pb").write_text("old")


def fill(staging):
    (staging / "report.json").write_text(json.dumps({"command": "finetune"}))
    (staging / "labels.txt").write_text("a\nb\n")
    (staging / "saved_model").mkdir()
    (staging / "saved_model" / "saved_model.pb").write_text("new")


def siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.mark.parametrize("exists", [False, True])
def test_a_new_or_empty_folder_appears_whole(tmp_path, exists):
    output = tmp_path / "runs" / "digits"
    if exists:
        output.mkdir(parents=True)
    folder = run_lib.RunFolder(output)
    staging = folder.stage()
    assert staging.parent == output.parent and staging.name.startswith(".digits.")
    fill(staging)
    assert folder.commit() == output
    assert sorted(p.name for p in output.iterdir()) == [
        "labels.txt", "report.json", "saved_model"
    ]
    assert siblings(output) == []


def test_an_earlier_finetune_run_is_replaced_as_a_whole(tmp_path):
    output = tmp_path / "run"
    previous_run(output)
    folder = run_lib.RunFolder(output)
    fill(folder.stage())
    folder.commit()
    assert not (output / "old.txt").exists()
    assert (output / "saved_model" / "saved_model.pb").read_text() == "new"
    assert siblings(output) == []


def test_another_folder_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files but no finetune run.*--overwrite"):
        run_lib.RunFolder(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        run_lib.RunFolder(tmp_path / "file")


def test_overwrite_writes_into_it_and_keeps_the_other_files(tmp_path):
    output = tmp_path / "mixed"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "labels.txt").write_text("old labels")
    (output / "saved_model").mkdir()
    (output / "saved_model" / "variables.txt").write_text("old")
    folder = run_lib.RunFolder(output, overwrite=True)
    fill(folder.stage())
    folder.commit()
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "labels.txt").read_text() == "a\nb\n"
    # The SavedModel folder is replaced, not merged.
    assert sorted(p.name for p in (output / "saved_model").iterdir()) == [
        "saved_model.pb"
    ]
    assert sorted(p.name for p in output.iterdir() if p.name.startswith(".")) == []
    assert siblings(output) == []


def test_a_discarded_run_leaves_the_folder_as_it_was(tmp_path):
    output = tmp_path / "run"
    previous_run(output)
    folder = run_lib.RunFolder(output)
    fill(folder.stage())
    folder.discard()
    assert (output / "old.txt").exists()
    assert (output / "saved_model" / "saved_model.pb").read_text() == "old"
    assert siblings(output) == []


def test_the_staging_folder_of_a_killed_run_is_removed(tmp_path):
    output = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".run.finetune-{int(dead.stdout)}.partial"
    stale.mkdir()
    (stale / "model.keras").write_text("half")
    alive = tmp_path / f".run.finetune-{os.getppid()}.partial"
    alive.mkdir()  # another process's run in progress: kept
    folder = run_lib.RunFolder(output)
    staging = folder.stage()
    assert not stale.exists() and alive.exists()
    folder.discard()
    assert not staging.exists()


def fake_fit(self, *args, epochs, initial_epoch, callbacks, **kwargs):
    """The callbacks' side of `fit`, without training (fast)."""
    import types

    logs = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}
    for callback in callbacks:
        callback.set_model(self)
        callback.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
            callback.on_epoch_end(epoch, logs)
    for callback in callbacks:
        callback.on_train_end()
    return types.SimpleNamespace(
        epoch=list(range(initial_epoch, epochs)),
        history={key: [value] * (epochs - initial_epoch) for key, value in logs.items()},
    )


@pytest.mark.tensorflow_only
def test_a_run_interrupted_while_writing_leaves_the_earlier_run(tmp_path, monkeypatch):
    import io

    import keras
    from keras_eca import finetune
    from keras_eca.finetune import report as report_lib
    from tests.finetune import helpers

    output = tmp_path / "run"
    previous_run(output)
    before = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", fake_fit)
    monkeypatch.setattr(report_lib, "write_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune.finetune(
            helpers.digits(40), model="resnet18", weights=None, image_size=32,
            epochs=1, batch_size=8, output=output, stream=io.StringIO(),
        )
    after = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    assert after == before
    assert siblings(output) == []


@pytest.mark.tensorflow_only
def test_a_failing_attention_figure_does_not_lose_the_run(tmp_path, monkeypatch):
    import io

    import keras
    from keras_eca import finetune
    from keras_eca import visualization
    from tests.finetune import helpers

    def broken(*args, **kwargs):
        raise ValueError("cannot draw this model")

    monkeypatch.setattr(keras.Model, "fit", fake_fit)
    monkeypatch.setattr(visualization, "write_attention_figure", broken)
    log = io.StringIO()
    result = finetune.finetune(
        helpers.digits(40), model="resnet18", weights=None, image_size=32,
        epochs=1, batch_size=8, output=tmp_path / "run", export=False, stream=log,
    )
    assert result.report["attention_figure"] == {
        "error": "ValueError: cannot draw this model"
    }
    assert "No attention figure: ValueError: cannot draw this model" in log.getvalue()
    assert sorted(p.name for p in result.run_dir.iterdir()) == [
        "confusion_matrix.png", "curves.png", "labels.txt", "log.csv", "report.json"
    ]
