"""`evaluate`'s preprocessing comes from the weights it evaluates."""

import json

import numpy as np
import pytest

from keras_eca.training import evaluation


def test_table_weights_bring_their_preprocessing_and_published_figures():
    pre, published = evaluation.evaluation_settings("eca_resnet50", "imagenet")
    assert pre == {
        "input_size": 224,
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    }
    assert published == {"key": "eca_resnet50.official_in1k",
                          "top1": 77.42, "top5": published["top5"]}
    assert published["top5"] is not None


def test_the_test_input_size_uses_the_test_crop_and_figures():
    pre, published = evaluation.evaluation_settings(
        "ecaresnet26t", "ra2_in1k", image_size=320
    )
    assert (pre["input_size"], pre["crop_pct"], pre["interpolation"]) == (
        320, 0.95, "bicubic"
    )
    assert published["top1"] == 79.9
    pre, published = evaluation.evaluation_settings("ecaresnet26t", "ra2_in1k")
    assert (pre["input_size"], pre["crop_pct"]) == (256, 0.875)
    assert published["top1"] == 78.894


def test_a_run_model_uses_the_recipe_beside_it(tmp_path):
    (tmp_path / "recipe.json").write_text(
        json.dumps({"image_size": 64, "eval_crop_pct": 0.9,
                    "eval_interpolation": "bicubic"})
    )
    model = tmp_path / "model.keras"
    model.write_bytes(b"")  # only its folder is read here
    pre, published = evaluation.evaluation_settings("resnet18", str(model))
    assert (pre["input_size"], pre["crop_pct"], pre["interpolation"]) == (
        64, 0.9, "bicubic"
    )
    assert published == {"key": None, "top1": None, "top5": None}


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match="no_such_in1k"):
        evaluation.evaluation_settings("eca_resnet50", "no_such_in1k")


@pytest.mark.tensorflow_only
def test_evaluate_counts_top1_and_top5_like_numpy(tmp_path):
    import io

    import keras

    from keras_eca import data
    from keras_eca.applications import build_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 40, 40, 3), dtype=np.uint8)
    labels = np.arange(12) % 6
    model = build_model("resnet18", input_shape=(32, 32, 3), classes=6)
    path = tmp_path / "model.keras"
    model.save(path)
    result = evaluation.evaluate(
        "resnet18", str(path), (images, labels), split="train",
        image_size=32, batch_size=5, stream=io.StringIO(), verbose=0,
    )
    batches = data.evaluation_dataset(
        data.resolve_source((images, labels)), image_size=32, crop_pct=0.875,
        interpolation="bilinear", mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225), batch_size=12,
    )
    x, y = next(iter(batches))
    scores = keras.ops.convert_to_numpy(model(x, training=False))
    ranks = np.argsort(-scores, axis=1)
    assert result["top1"] == pytest.approx(100 * np.mean(ranks[:, 0] == y))
    top5 = np.mean([label in row[:5] for label, row in zip(y.numpy(), ranks)])
    assert result["top5"] == pytest.approx(100 * top5)
    assert result["images"] == 12
