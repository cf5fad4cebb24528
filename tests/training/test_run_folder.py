"""The run folder's rules: recipe precedence, refusing another run, the log."""

import pytest

from keras_eca.training import run as run_lib
from keras_eca.training import run_folder


def test_the_explicit_arguments_override_set_which_overrides_the_recipe():
    recipe = run_lib.resolve_recipe(
        None, "eca_resnet50", ["epochs=7", "batch_size=64"], epochs=3
    )
    assert recipe.name == "eca_resnet"
    assert (recipe.epochs, recipe.batch_size) == (3, 64)
    assert run_lib.resolve_recipe(None, "sa_resnet50").epochs == 90
    with pytest.raises(ValueError, match="epochz"):
        run_lib.resolve_recipe("smoke", "resnet18", ["epochz=1"])


def test_a_folder_of_another_run_is_not_resumed(tmp_path):
    previous = {"model": "resnet18", "dataset": "a", "recipe": {"epochs": 1},
                "validation_fraction": None, "weights": None}
    now = dict(previous, model="resnet34")
    with pytest.raises(ValueError, match="model: 'resnet18' there, 'resnet34' now"):
        run_folder.check_same_run(tmp_path, previous, now, run_lib.RESUME_KEYS)
    run_folder.check_same_run(
        tmp_path, previous, dict(previous, strategy="mirrored"), run_lib.RESUME_KEYS
    )


def test_history_rows_of_unbacked_epochs_are_dropped(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,2.0\n1,1.5\n1,1.4\n")
    run_folder.truncate_history(path, 1)
    assert path.read_text() == "epoch,loss\n0,2.0\n"
    assert run_folder.read_history(path) == [{"epoch": 0, "loss": 2.0}]


def test_train_names_an_unknown_set_key_and_lists_the_valid_ones(tmp_path):
    from keras_eca import cli

    with pytest.raises(SystemExit) as error:
        cli.main(
            [
                "train", "--model", "resnet18", "--dataset", str(tmp_path),
                "--set", "epochz=3", "--output", str(tmp_path / "run"),
            ]
        )
    message = str(error.value)
    assert message.startswith("keras-eca train:") and "'epochz'" in message
    assert "batch_size" in message and "label_smoothing" in message
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_unknown_model(tmp_path):
    from keras_eca import cli

    with pytest.raises(SystemExit, match="Unknown model 'resnet9'"):
        cli.main(
            [
                "train", "--model", "resnet9", "--dataset", str(tmp_path),
                "--output", str(tmp_path / "run"),
            ]
        )


@pytest.mark.tensorflow_only
def test_keras_eca_train_on_a_folder_writes_a_complete_run_folder(
    tmp_path, capsys
):
    import json

    import numpy as np
    from PIL import Image

    from keras_eca import cli

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{index}.jpg")
    run = tmp_path / "run"
    code = cli.main(
        [
            "train", "--model", "resnet18", "--dataset", str(tmp_path / "photos"),
            "--recipe", "smoke", "--image-size", "32", "--batch-size", "4",
            "--epochs", "1", "--validation-fraction", "0.25",
            "--set", "label_smoothing=0.1", "--output", str(run),
        ]
    )
    assert code == 0
    settings = json.loads((run / "run.json").read_text())
    assert settings["finished"] and settings["monitor"] == "val_accuracy"
    assert settings["recipe"]["label_smoothing"] == 0.1
    history = run_folder.read_history(run / "log.csv")
    assert [row["epoch"] for row in history] == [0]
    assert "val_accuracy" in history[0]
    for name in ("model.keras", "last.keras", "best.keras", "saved_model",
                 "recipe.json", "backup/state.npz", "logs"):
        assert (run / name).exists(), name
    assert not list(run.rglob(".*.partial*"))

    # evaluate finds the run's held-out quarter again (its fraction and
    # seed are in run.json) and measures what the run's validation did.
    code = cli.main(
        [
            "evaluate", "--model", "resnet18", "--weights",
            str(run / "model.keras"), "--dataset", str(tmp_path / "photos"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 images at 32 px" in printed
    assert f"top-1 {100 * history[0]['val_accuracy']:6.2f} %" in printed


@pytest.mark.tensorflow_only
def test_user_callbacks_see_the_run_as_one_fit(tmp_path):
    """`fit` runs once per epoch, yet EarlyStopping stops the run and
    restores its best weights, and TensorBoard keeps one event file."""
    import io

    import keras
    import numpy as np

    from keras_eca import training

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls, self.epoch_weights = [], []

        def on_train_begin(self, logs=None):
            self.calls.append(("begin", self.params["epochs"]))

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(("epoch", epoch))
            self.epoch_weights.append(self.model.get_weights())

        def on_train_end(self, logs=None):
            self.calls.append(("end", None))

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 32, 32, 3)).astype("uint8")
    labels = np.arange(8) % 2
    recorder = Recorder()
    # No epoch can improve on the first by 1e9: patience 1 stops after the
    # second epoch of four and puts the first epoch's weights back.
    stopper = keras.callbacks.EarlyStopping(
        monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True
    )
    run = training.train(
        "resnet18", (images, labels), tmp_path / "run", recipe="smoke",
        image_size=32, batch_size=4, epochs=4, steps_per_epoch=1,
        export=False, callbacks=[recorder, stopper], stream=io.StringIO(),
    )
    assert recorder.calls == [("begin", 4), ("epoch", 0), ("epoch", 1), ("end", None)]
    assert stopper.stopped_epoch == 1
    assert [row["epoch"] for row in run.history] == [0, 1]
    for restored, first in zip(run.model.get_weights(), recorder.epoch_weights[0]):
        np.testing.assert_array_equal(restored, first)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(recorder.epoch_weights[0], recorder.epoch_weights[1])
    )
    assert len(list((tmp_path / "run" / "logs" / "train").iterdir())) == 1
