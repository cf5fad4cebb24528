"""Top-1 / top-5 the way the published figures were measured.

Each table entry of `keras_eca.applications.weights` carries the
evaluation preprocessing of its source (input size, crop fraction,
interpolation, mean, std); `evaluate()` uses it, so a table model's top-1
can be put beside the figure the table quotes. A run's `.keras` file uses
the recipe saved beside it.
"""

import json
import os
import pathlib
import sys

import keras

from keras_eca import data as data_lib
from keras_eca.applications import build_model
from keras_eca.applications import registry
from keras_eca.applications import weights as weights_lib
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD

# The torchvision evaluation the ECA and SA papers used: resize 256, crop 224.
DEFAULT_PREPROCESSING = {
    "input_size": 224,
    "crop_pct": 0.875,
    "interpolation": "bilinear",
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
}


def evaluation_settings(model, weights, image_size=None):
    """The preprocessing and published figures for `weights`.

    Args:
        model: str. A registry key.
        weights: a table key or tag of `model`, `"imagenet"`, or a file.
        image_size: evaluate at this size instead of the weights' own. At
            the entry's `test_input_size` its `test_crop_pct` and test
            figures are used.

    Returns:
        `(preprocessing, published)`: preprocessing a dict with
        `input_size`, `crop_pct`, `interpolation`, `mean`, `std`;
        published a dict with `key`, `top1`, `top5` (`None` if unknown).
    """
    registry.check_model_name(model)
    request = weights_lib.resolve_weights(model, weights, include_top=True)
    published = {"key": None, "top1": None, "top5": None}
    if request.kind == "table":
        entry = weights_lib.weights_config(request.key)
        pre = {k: entry["preprocessing"][k] for k in DEFAULT_PREPROCESSING}
        published = {"key": request.key, "top1": entry["top1"], "top5": entry["top5"]}
        test_size = entry["preprocessing"].get("test_input_size")
        if image_size is not None and image_size == test_size:
            pre["crop_pct"] = entry["preprocessing"]["test_crop_pct"]
            published = {
                "key": request.key,
                "top1": entry.get("test_top1"),
                "top5": entry.get("test_top5"),
            }
    else:
        pre = dict(DEFAULT_PREPROCESSING)
        recipe = _run_recipe(request.path)
        if recipe is not None:
            pre.update(
                input_size=recipe["image_size"],
                crop_pct=recipe["eval_crop_pct"],
                interpolation=recipe["eval_interpolation"],
            )
        else:
            default = weights_lib.default_weights(model)
            if default is not None:
                entry = weights_lib.weights_config(default)
                pre = {k: entry["preprocessing"][k] for k in DEFAULT_PREPROCESSING}
    if image_size is not None:
        pre["input_size"] = image_size
    pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
    return pre, published


def _run_file(path, name):
    """A JSON file of the run folder a `.keras` file sits in, if any."""
    if path is None:
        return None
    found = pathlib.Path(path).resolve().parent / name
    if not found.is_file():
        return None
    return json.loads(found.read_text())


def _run_recipe(path):
    return _run_file(path, "recipe.json")


def evaluate(
    model,
    weights,
    dataset,
    *,
    data_dir=None,
    manual_dir=None,
    split="validation",
    image_size=None,
    batch_size=64,
    stream=None,
    verbose=1,
):
    """Top-1 and top-5 of `weights` on `dataset` with the weights' own
    evaluation preprocessing; the Python form of `keras-eca evaluate`.

    Args:
        model: str. A registry key.
        weights: a table key or tag, `"imagenet"`, or a file (a run's
            `model.keras`, `.weights.h5`, a PyTorch checkpoint...).
        dataset: a TFDS name, a folder of class subfolders or arrays, as
            for `keras_eca.data.resolve_source`.
        split: the split to evaluate. Defaults to `"validation"`.
        image_size: evaluate at this size (see `evaluation_settings`).
        batch_size: int. Defaults to 64.

    Returns:
        A dict: `top1`, `top5` (percent), `images`, `preprocessing`,
        `published` (see `evaluation_settings`).
    """
    stream = stream or sys.stdout
    pre, published = evaluation_settings(model, weights, image_size)
    request = weights_lib.resolve_weights(model, weights, include_top=True)
    # A run's held-out part of a folder is found again with its settings.
    run = _run_file(request.path, "run.json") or {}
    extra = {}
    if run.get("validation_fraction") is not None and _takes_fraction(dataset):
        extra = {
            "validation_fraction": run["validation_fraction"],
            "seed": run["recipe"]["seed"],
        }
    source = data_lib.resolve_source(
        dataset, split=split, data_dir=data_dir, manual_dir=manual_dir, **extra
    )
    size = pre["input_size"]
    if request.kind == "keras" and str(request.path).endswith(".keras"):
        net = keras.saving.load_model(request.path, compile=False)
    else:
        net = build_model(model, weights=weights, input_shape=(size, size, 3))
    classes = net.output_shape[-1]
    if classes != source.num_classes:
        raise ValueError(
            f"The model has {classes} classes but {source.name} has "
            f"{source.num_classes}. Received: weights={weights!r}, "
            f"dataset={dataset!r}"
        )
    images = data_lib.evaluation_dataset(
        source,
        image_size=size,
        crop_pct=pre["crop_pct"],
        interpolation=pre["interpolation"],
        mean=pre["mean"],
        std=pre["std"],
        batch_size=batch_size,
    )
    # Keras' evaluate needs a loss; a run's model ends in logits, the
    # builders' default in a softmax.
    activation = getattr(net.layers[-1], "activation", None)
    net.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=activation is not keras.activations.softmax
        ),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy("top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, "top5"),
        ]
    )
    logs = net.evaluate(images, return_dict=True, verbose=verbose)
    result = {
        "top1": 100.0 * float(logs["top1"]),
        "top5": 100.0 * float(logs["top5"]),
        "images": source.num_examples,
        "preprocessing": pre,
        "published": published,
    }
    stream.write(format_result(model, weights, source, result) + "\n")
    stream.flush()
    return result


def _takes_fraction(dataset):
    """Arrays and folders can be split by a fraction; TFDS names cannot."""
    if isinstance(dataset, (tuple, list)):
        return True
    return os.path.isdir(os.path.expanduser(os.fspath(dataset)))


def format_result(model, weights, source, result):
    pre = result["preprocessing"]
    published = result["published"]
    lines = [
        f"{model} ({weights}) on {source.name} {source.split}: "
        f"{result['images']:,} images at {pre['input_size']} px, crop "
        f"{pre['crop_pct']}, {pre['interpolation']}",
    ]
    for name in ("top1", "top5"):
        figure = f"{name[:3]}-{name[3:]} {result[name]:6.2f} %"
        if published[name] is not None:
            figure += f"   (published: {published[name]:.2f} %, {published['key']})"
        lines.append("  " + figure)
    return "\n".join(lines)
