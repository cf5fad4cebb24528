"""`keras-eca detect-train` / `detect-eval` / `detect` on a run folder, the
exact resume of a killed run, and the detection recipes."""

import json

import numpy as np
import pytest

import keras

from keras_eca import cli
from keras_eca import detection
from keras_eca.detection import recipes
from keras_eca.detection import training
from keras_eca.training import backup as backup_lib

pytestmark = pytest.mark.tensorflow_only

SMOKE = ["--recipe", "smoke", "--train-examples", "8"]


def test_coco_1x_is_the_papers_mmdetection_schedule():
    recipe = recipes.get_detection_recipe("coco_1x")
    assert (recipe.epochs, recipe.batch_size, recipe.learning_rate) == (12, 8, 0.01)
    assert (recipe.momentum, recipe.weight_decay, recipe.decay_epochs) == (0.9, 1e-4, (8, 11))
    schedule = training.build_schedule(recipe, global_batch_size=16, steps_per_epoch=100)
    # Linear scaling (batch 16 = 2 x 8), 500 warmup steps, x0.1 from the
    # starts of epochs 8 and 11.
    assert float(schedule(79)) == pytest.approx(0.02 * 80 / 500)
    assert float(schedule(499)) == pytest.approx(0.02)
    assert float(schedule(799)) == pytest.approx(0.02)
    assert float(schedule(800)) == pytest.approx(0.002)
    assert float(schedule(1099)) == pytest.approx(0.002)
    assert float(schedule(1100)) == pytest.approx(0.0002)
    optimizer = training.build_optimizer(recipe, global_batch_size=16, steps_per_epoch=100)
    assert (optimizer.momentum, optimizer.global_clipnorm) == (0.9, 35.0)
    assert training.resolve_detection_recipe(None, "synthetic").name == "synthetic"
    assert training.resolve_detection_recipe(None, "coco/2017").name == "coco_1x"


def test_detection_recipe_overrides_are_typed_and_checked():
    recipe = training.resolve_detection_recipe(
        "coco_1x", "coco/2017", ["decay_epochs=6,9", "image_size=512"], epochs=10
    )
    assert (recipe.decay_epochs, recipe.image_size, recipe.epochs) == ((6, 9), 512, 10)
    assert training.resolve_detection_recipe(
        "coco_1x", "x", ["decay_epochs=()"]
    ).decay_epochs == ()
    with pytest.raises(ValueError, match="image_size=300"):
        training.resolve_detection_recipe("coco_1x", "x", ["image_size=300"])
    with pytest.raises(ValueError, match="decay_epochs=.*12"):
        training.resolve_detection_recipe("coco_1x", "x", ["decay_epochs=8,12"])
    with pytest.raises(ValueError, match="Unknown detection recipe 'coco_3x'"):
        training.resolve_detection_recipe("coco_3x", "x")
    assert "decay_epochs" in recipes.get_detection_recipe("coco_1x").describe()


def test_detect_train_eval_and_detect_on_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["detect-train", "--backbone", "eca_resnet18", "--dataset", "synthetic",
            "--output", str(run), "--epochs", "1", "--eval-examples", "4", *SMOKE]
    assert cli.main(argv) == 0
    for name in ("model.keras", "best.keras", "last.keras", "log.csv",
                 "recipe.json", "metrics.json", "saved_model/saved_model.pb"):
        assert (run / name).is_file(), name
    settings = json.loads((run / "run.json").read_text())
    assert settings["finished"] and settings["class_names"] == ["circle", "square", "triangle"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == set(detection.METRIC_NAMES) and metrics == settings["metrics"]
    assert "val_AP50" in (run / "log.csv").read_text()
    printed = capsys.readouterr().out
    assert "COCO on 4 validation images" in printed and "ETA" in printed

    # The same images, the same model: the same numbers.
    out = tmp_path / "metrics.json"
    assert cli.main(["detect-eval", "--model", str(run), "--num-examples", "4",
                     "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == pytest.approx(metrics)
    assert "AP50" in capsys.readouterr().out

    from PIL import Image

    image = tmp_path / "shapes.png"
    Image.fromarray(detection.synthetic.draw(0, "test", 0)[0]).save(image)
    assert cli.main(["detect", str(image), "--model", str(run), "--output",
                     str(tmp_path / "boxes"), "--threshold", "0.01"]) == 0
    assert (tmp_path / "boxes" / "shapes_boxes.png").is_file()
    assert "boxes ->" in capsys.readouterr().out

    # A finished run is not trained again; another run is refused.
    assert cli.main(argv) == 0
    assert "holds a finished run" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="backbone: 'eca_resnet18' there, 'resnet18' now"):
        cli.main([*argv[:2], "resnet18", *argv[3:]])


def test_detect_eval_names_a_missing_model(tmp_path):
    with pytest.raises(SystemExit, match="keras-eca detect-eval: --model .*missing"):
        cli.main(["detect-eval", "--model", str(tmp_path / "missing")])


class _Killed(Exception):
    pass


class _KillAfter(keras.callbacks.Callback):
    """Raises after the `step`-th training step of this process (a kill)."""

    def __init__(self, step):
        super().__init__()
        self.step, self.done = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == self.step:
            raise _Killed()


def _train(folder, **extra):
    return detection.train_detector(
        "retinanet", "eca_resnet18", "synthetic", folder, recipe="smoke",
        train_examples=16, steps_per_epoch=4, eval_split=None, export=False,
        **extra,
    )


def test_a_killed_run_resumes_at_its_step_exactly(tmp_path):
    straight = _train(tmp_path / "straight")
    # Backups every 2 steps: killed in step 3 of epoch 2, after the backup
    # of its step 2 (user callbacks run before the backup).
    with pytest.raises(_Killed):
        _train(tmp_path / "killed", callbacks=[_KillAfter(7)])
    saved = backup_lib.read_backup(tmp_path / "killed" / training.BACKUP_FILE)
    assert (saved.position["epoch"], saved.position["step"]) == (1, 2)
    resumed = _train(tmp_path / "killed")
    assert resumed.resumed_from == {"epoch": 1, "step": 2}
    for a, b in zip(straight.model.weights, resumed.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert [row["epoch"] for row in resumed.history] == [0, 1]
    assert resumed.history[-1]["loss"] == pytest.approx(straight.history[-1]["loss"], rel=1e-6)


@pytest.mark.slow  # YOLOV8's fit and export are in the default run (backbone_test)
def test_yolov8_trains_in_a_run_folder(tmp_path):
    run = detection.train_detector(
        "yolov8", "eca_mobilenet_v2", "synthetic", tmp_path / "run",
        recipe="smoke", epochs=1, train_examples=8, eval_examples=4,
    )
    assert set(run.metrics) == set(detection.METRIC_NAMES)
    assert np.isfinite(run.history[-1]["loss"])
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").is_file()


def test_keras_hub_retinanet_trains_in_a_run_folder(tmp_path):
    run = detection.train_detector(
        "retinanet", "eca_resnet18", "synthetic", tmp_path / "run", api="keras_hub",
        recipe="smoke", epochs=1, train_examples=8, eval_examples=4,
    )
    assert set(run.metrics) == set(detection.METRIC_NAMES)
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").is_file()
    model, settings = detection.load_run(tmp_path / "run")
    assert settings["api"] == "keras_hub"
    assert isinstance(model.backbone.image_encoder, detection.KerasHubBackbone)
    with pytest.raises(ValueError, match=r"\['retinanet'\] with api='keras_hub'"):
        detection.train_detector("yolov8", "eca_resnet18", "synthetic", tmp_path / "y",
                                 api="keras_hub")
