"""Offline with `weights="imagenet"`, the run says so and trains from
random initialisation -- the same run as `weights=None`, bit for bit with
the same seed; another seed draws other weights. Class weights reach `fit`."""

import io

import numpy as np
import pytest

import keras
from keras_eca import finetune
from keras_eca.finetune import model as model_lib
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only


def offline(monkeypatch, keras_home):
    """Downloads fail as they do without a network; an empty cache."""
    monkeypatch.setenv("KERAS_HOME", str(keras_home))

    def get_file(*args, origin=None, **kwargs):
        raise Exception(
            f"URL fetch failure on {origin}: None -- [Errno -3] Temporary "
            "failure in name resolution"
        )

    monkeypatch.setattr(keras.utils, "get_file", get_file)


def tiny_run(output, dataset=None, **kwargs):
    if dataset is None:
        dataset = helpers.digits(64)
    kwargs.setdefault("stream", io.StringIO())
    return finetune.finetune(
        dataset,
        model="eca_resnet18",
        image_size=32,
        epochs=1,
        batch_size=16,
        output=output,
        export=False,
        figures=False,
        **kwargs,
    )


def weights_of(result):
    return [keras.ops.convert_to_numpy(w) for w in result.model.weights]


def test_offline_fallback_and_seeds(tmp_path, monkeypatch):
    """Also under mixed precision (what a GPU gets by default): float16
    compute, a float32 classifier, the global policy restored after."""
    offline(monkeypatch, tmp_path / "keras_home")
    log = io.StringIO()
    fallback = tiny_run(
        tmp_path / "a", weights="imagenet", stream=log,
        mixed_precision="mixed_float16",
    )
    assert keras.config.dtype_policy().name == "float32"
    assert fallback.report["settings"]["mixed_precision"] == "mixed_float16"
    backbone = fallback.model.get_layer("backbone")
    assert backbone.get_layer("conv1_conv").compute_dtype == "float16"
    assert fallback.model.get_layer("predictions").compute_dtype == "float32"
    text = log.getvalue()
    assert (
        "The weights 'imagenet' (eca_resnet18.official_in1k) are not at hand "
        "and could not be downloaded from https://" in text
    )
    assert "Training from random initialisation instead." in text
    assert str(tmp_path / "keras_home") in text  # where to put the file
    assert "one phase trains every layer" in text
    info = fallback.report["weights"]
    assert info["pretrained"] is False and info["requested"] == "imagenet"
    assert "could not be downloaded" in info["note"]
    assert [p["name"] for p in fallback.report["phases"]] == ["scratch"]

    plain = tiny_run(tmp_path / "b", weights=None, mixed_precision="mixed_float16")
    for a, b in zip(weights_of(fallback), weights_of(plain)):
        np.testing.assert_array_equal(a, b)
    assert fallback.history == plain.history
    assert fallback.report["confusion_matrix"] == plain.report["confusion_matrix"]
    # Trained from scratch, BatchNorm statistics moved.
    moving = [
        w for w in plain.model.weights if w.path.endswith("moving_mean")
    ]
    assert any(np.abs(keras.ops.convert_to_numpy(w)).max() > 0 for w in moving)



def test_the_seed_draws_the_weights():
    def initial(seed):
        net, _ = model_lib.build_finetune_model(
            "eca_resnet18", weights=None, image_size=32, num_classes=10,
            dropout=0.2, seed=seed,
        )
        return [keras.ops.convert_to_numpy(w) for w in net.trainable_weights]

    first, again, other = initial(0), initial(0), initial(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other) if a.std())


class Stop(Exception):
    pass


def test_class_weights_reach_fit(tmp_path, monkeypatch):
    """An imbalanced folder: `fit` gets `N / (K * n_class)` of the training
    part (the spy stops the run there; nothing is written)."""
    folder = helpers.write_folder(tmp_path / "data", {"big": 30, "small": 5})
    seen = []

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("class_weight"))
        raise Stop

    monkeypatch.setattr(keras.Model, "fit", spy)
    for enabled in (True, False):
        with pytest.raises(Stop):
            tiny_run(tmp_path / "run", dataset=str(folder), weights=None,
                     class_weights=enabled)
    # 24 and 4 training images (6 and 1 held out).
    assert seen == [pytest.approx({0: 28 / 48, 1: 28 / 8}), None]
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
