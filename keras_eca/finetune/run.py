"""`finetune()`: transfer learning of a registry model into a run folder.

With pretrained weights, phase 1 trains the new classifier on the frozen
backbone; phase 2 unfreezes the backbone (all of it, or its top stages) at
a lower learning rate with every BatchNorm layer kept in inference mode
(its statistics unchanged). From random initialisation (no weights, or
none at hand offline) both phases would be meaningless: one phase trains
everything, BatchNorm included. Each phase is one `fit` with early
stopping on the validation data (the best epoch's weights restored).

The run folder is assembled in a hidden sibling folder and moved into
place at the end, so an interrupted run leaves the folder as it was; it
holds `model.keras`, `saved_model/` (see `serving`), `labels.txt`,
`report.json`, `log.csv`, `curves.png`, `confusion_matrix.png` and
`attention.png`.
"""

import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import platform
import shutil
import sys
import time

import numpy as np

import keras

from keras_eca import applications
from keras_eca import data as data_lib
from keras_eca import files
from keras_eca.applications import registry
from keras_eca.applications import weights as weights_lib
from keras_eca.finetune import data as finetune_data
from keras_eca.finetune import model as model_lib
from keras_eca.finetune import report as report_lib
from keras_eca.finetune import serving
from keras_eca.training import callbacks as callbacks_lib
from keras_eca.training import distribution as distribution_lib
from keras_eca.version import __version__

DEFAULT_MODEL = "eca_resnet18"
DEFAULT_BATCH_SIZE = 32
# The embedded digits: 32 px (the models' minimum), 2 epochs from random
# initialisation: 95.5 % validation accuracy in 2:33 on 2 idle CPU cores
# (3 epochs: 96.7 % in 4:12, past the first command's 3-minute budget).
DIGITS_IMAGE_SIZE = 32
DIGITS_EPOCHS = 2
DEFAULT_EPOCHS = 10
DEFAULT_IMAGE_SIZE = 224
LEARNING_RATES = {"scratch": 2e-3, "head": 1e-3, "backbone": 1e-4}
PHASE_TITLES = {
    "head": "the new classifier on the frozen backbone",
    "backbone": "the backbone and the classifier, BatchNorm frozen",
    "scratch": "every layer from random initialisation, BatchNorm training",
}
# RGB on 0..255 in, as the model takes it: keras_eca.data's pipelines
# compute (x - 255 * mean) / (255 * std), the identity with these.
IDENTITY_MEAN = (0.0, 0.0, 0.0)
IDENTITY_STD = (1 / 255, 1 / 255, 1 / 255)
REPORT = "report.json"
ATTENTION_FIGURE = "attention.png"
COMMAND = "finetune"
MONITORS = ("val_loss", "val_accuracy")


@dataclasses.dataclass
class FinetuneResult:
    """What `finetune()` returns.

    Attributes:
        run_dir: the run folder (`pathlib.Path`).
        report: the dict written to `report.json`.
        model: the fine-tuned `keras.Model` (RGB images on 0..255 in,
            class probabilities out).
        history: a dict per epoch (both phases): `epoch`, `phase`, `loss`,
            `accuracy`, `val_loss`, `val_accuracy`.
        files: the paths written, relative to `run_dir`.
    """

    run_dir: pathlib.Path
    report: dict
    model: keras.Model
    history: list
    files: list

    @property
    def accuracy(self):
        """The validation accuracy of the final model."""
        return self.report["accuracy"]


def finetune(
    dataset=None,
    *,
    model=DEFAULT_MODEL,
    weights="imagenet",
    image_size=None,
    batch_size=None,
    epochs=None,
    seed=0,
    output,
    data_dir=None,
    manual_dir=None,
    validation_fraction=None,
    unfreeze="all",
    head_epochs=None,
    learning_rate=None,
    backbone_learning_rate=None,
    dropout=0.2,
    flip=None,
    crop_scale=None,
    class_weights=True,
    patience=3,
    monitor="val_loss",
    mixed_precision="auto",
    jit_compile="auto",
    overwrite=False,
    export=True,
    figures=True,
    stream=None,
    callbacks=(),
):
    """Fine-tunes a registry model on `dataset`, writing a run folder.

    The Python form of `keras-eca finetune`; see the module docstring for
    the phases and the run folder, and `keras_eca.finetune.serving` for
    the SavedModel's signatures.

    Args:
        dataset: `None` (the embedded handwritten digits: no download), a
            folder of class subfolders (`ROOT/<class>/<image>`, or
            `ROOT/train/...` beside `ROOT/val/...`), a TFDS name, or
            `(images, labels)` arrays.
        model: a registry key (`keras_eca.applications.list_models()`).
            Defaults to `"eca_resnet18"`.
        weights: `"imagenet"`, a weights tag or key, a local weights file,
            or `None` (random initialisation). When the weights cannot be
            downloaded (offline), or `"imagenet"` names none for `model`,
            the run says so and trains from random initialisation.
        image_size: the input side. Defaults to 32 for the digits, else
            the weights' own `input_size` (224 without a table entry).
        batch_size: defaults to 32.
        epochs: epochs of both phases together. Defaults to 2 for the
            digits, else 10.
        seed: same seed, same run (on CPU, bit for bit).
        output: the run folder. A missing or empty folder, or the folder
            of an earlier finetune run (replaced as a whole at the end),
            is written; any other non-empty folder only with
            `overwrite=True` (the run's files are moved into it, other
            files are kept).
        data_dir, manual_dir: TFDS's data and manual download folders.
        validation_fraction: the stratified fraction of a folder or arrays
            held out for validation when the data has no validation part
            of its own. Defaults to 0.2.
        unfreeze: phase 2 trains the top `unfreeze` of the backbone's 4
            stages, or `"all"` of it; `0` skips phase 2.
        head_epochs: phase 1's epochs. Defaults to a third of `epochs`
            (at least 1).
        learning_rate: the peak learning rate (Adam, half an epoch of
            warm-up, then cosine decay) of the classifier phase, or of the
            single phase from random initialisation. Defaults to 1e-3
            (2e-3 from random initialisation).
        backbone_learning_rate: phase 2's peak rate. Defaults to 1e-4.
        dropout: dropout rate before the classifier.
        flip: random horizontal flips. Defaults to `True`, but `False`
            for the digits (a flipped digit is another shape).
        crop_scale: RandomResizedCrop's area range. Defaults to
            `(0.08, 1.0)`, `(0.5, 1.0)` for the digits.
        class_weights: weigh each class by `N / (K * n_class)` of the
            training images (`class_weights()`), so that imbalanced
            folders do not favour their large classes.
        patience: epochs without improvement of `monitor` before a phase
            stops early; its best epoch's weights are restored.
        monitor: `"val_loss"` or `"val_accuracy"`.
        mixed_precision: `"auto"` (mixed_float16 on a GPU, float32 on a
            CPU), `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`.
        jit_compile: `"auto"` (XLA on accelerators), `True` or `False`.
        overwrite: see `output`.
        export: write `model.keras` and `saved_model/`.
        figures: write `curves.png`, `confusion_matrix.png` and
            `attention.png`.
        stream: where progress goes. Defaults to standard output.
        callbacks: extra Keras callbacks for every phase's `fit`.

    Returns:
        A `FinetuneResult`.

    Raises:
        ValueError: for a bad argument, an unusable dataset (an empty
            class folder, an unreadable image, a single class, images under
            32 pixels), weights that do not fit, or an `output` folder that
            holds something else.

    Example (a quick run on 100 digits; the defaults train on all 1,797):

    >>> import io, tempfile
    >>> images, labels = keras_eca.finetune.load_digits(32)
    >>> result = keras_eca.finetune.finetune(
    ...     (images[:100], labels[:100]), model="resnet18", weights=None,
    ...     epochs=1, output=tempfile.mkdtemp() + "/run", export=False,
    ...     figures=False, stream=io.StringIO())
    >>> sorted(result.files)
    ['labels.txt', 'log.csv', 'report.json']
    >>> 0.0 <= result.accuracy <= 1.0
    True
    """
    started = time.perf_counter()
    stream = stream or sys.stdout

    def say(text=""):
        stream.write(text + "\n")
        stream.flush()

    registry.check_model_name(model)
    _check_int("seed", seed, 0)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
    if epochs is not None:
        _check_int("epochs", epochs, 1)
    if image_size is not None:
        _check_int("image_size", image_size, 1)
        if image_size < applications.factory.MIN_SIZE:
            raise ValueError(
                f"`image_size` must be at least {applications.factory.MIN_SIZE}"
                f" (the models' smallest input). Received: image_size={image_size}"
            )
    if head_epochs is not None:
        _check_int("head_epochs", head_epochs, 1)
    unfreeze = model_lib.check_unfreeze(unfreeze)
    if monitor not in MONITORS:
        raise ValueError(
            f"`monitor` must be one of {MONITORS}. Received: monitor={monitor!r}"
        )
    _check_int("patience", patience, 1)
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(
            f"`dropout` must be a number in [0, 1). Received: dropout={dropout!r}"
        )
    for name, value in (
        ("learning_rate", learning_rate),
        ("backbone_learning_rate", backbone_learning_rate),
    ):
        if value is not None and not (
            isinstance(value, (int, float)) and math.isfinite(value) and value > 0
        ):
            raise ValueError(
                f"`{name}` must be a positive number. Received: {name}={value!r}"
            )
    folder = RunFolder(output, overwrite)

    is_digits = dataset is None or (
        isinstance(dataset, str) and dataset == finetune_data.DIGITS
    )
    preprocessing = _preprocessing(model, weights, is_digits)
    if image_size is None:
        image_size = DIGITS_IMAGE_SIZE if is_digits else preprocessing["input_size"]
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    epochs = epochs or (DIGITS_EPOCHS if is_digits else DEFAULT_EPOCHS)
    flip = (not is_digits) if flip is None else bool(flip)
    if crop_scale is None:
        crop_scale = (0.5, 1.0) if is_digits else (0.08, 1.0)
    if head_epochs is not None and head_epochs > epochs:
        raise ValueError(
            "`head_epochs` must be at most `epochs`. Received: "
            f"head_epochs={head_epochs}, epochs={epochs}"
        )
    dist = distribution_lib.make_distribution("one_device")
    policy = distribution_lib.resolve_precision(mixed_precision, dist)
    jit = distribution_lib.resolve_jit_compile(jit_compile, dist)

    data = finetune_data.resolve_data(
        dataset,
        image_size=image_size,
        data_dir=data_dir,
        manual_dir=manual_dir,
        validation_fraction=validation_fraction,
        seed=seed,
    )
    train_labels = finetune_data.training_labels(data.train)
    weights_by_class = None
    if class_weights:
        weights_by_class = finetune_data.class_weights(
            train_labels, data.num_classes
        )
    if batch_size > data.train.num_examples:
        raise ValueError(
            f"`batch_size`={batch_size} is more than the "
            f"{data.train.num_examples} training images of "
            f"{data.description}: not one full step per epoch. Pass a "
            f"batch size of at most {data.train.num_examples}. "
            f"Received: batch_size={batch_size}"
        )
    steps = data_lib.steps_per_epoch(data.train, batch_size)

    say(
        f"keras-eca finetune: {model} on {data.description}: "
        f"{data.train.num_examples:,} training and "
        f"{data.validation.num_examples:,} validation images "
        f"({data.validation_from}), {data.num_classes} classes"
    )
    # Seeded after the data is resolved (preparing a TFDS dataset draws
    # random numbers), so the weights depend on the seed alone.
    with _dtype_policy(policy):
        net, weights_info = model_lib.build_finetune_model(
            model,
            weights=weights,
            image_size=image_size,
            num_classes=data.num_classes,
            dropout=dropout,
            seed=seed,
            say=say,
        )
    plan = _plan(
        weights_info["pretrained"], epochs, head_epochs, unfreeze,
        learning_rate, backbone_learning_rate,
    )
    say(
        f"{net.count_params():,} parameters, {image_size}x{image_size} "
        f"images, batch {batch_size} ({steps} steps per epoch), {policy}, "
        f"jit_compile={jit}, seed {seed}; weights: "
        + (weights_info["loaded"] if weights_info["pretrained"] else "random")
    )
    if not weights_info["pretrained"]:
        say(
            "From random initialisation: one phase trains every layer, "
            "BatchNorm included (the frozen-backbone phase needs pretrained "
            "weights)."
        )

    validation = data_lib.evaluation_dataset(
        data.validation,
        image_size=image_size,
        crop_pct=preprocessing["crop_pct"],
        interpolation=preprocessing["interpolation"],
        mean=IDENTITY_MEAN,
        std=IDENTITY_STD,
        batch_size=batch_size,
    )
    position = callbacks_lib.RunPosition(epochs, steps, batch_size)
    history, phases = [], []
    epoch = 0
    best = None  # (value, weights) of the best phase end so far
    for index, phase in enumerate(plan):
        trainable = model_lib.set_phase(net, phase["phase"], unfreeze)
        first, last = epoch, epoch + phase["epochs"]
        say(
            f"Phase {index + 1}/{len(plan)}: {PHASE_TITLES[phase['phase']]} "
            f"(epochs {first + 1}-{last}, learning rate "
            f"{phase['learning_rate']:g}, {trainable:,} trainable parameters)"
        )
        _compile(net, phase["learning_rate"], phase["epochs"] * steps, steps, jit)
        stopper = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=patience, restore_best_weights=True
        )
        train = _training_data(
            data.train, first, last, steps, image_size, batch_size, seed,
            crop_scale, flip,
        )
        fitted = net.fit(
            train,
            epochs=last,
            initial_epoch=first,
            steps_per_epoch=steps,
            validation_data=validation,
            class_weight=weights_by_class,
            callbacks=[
                _Position(position),
                callbacks_lib.ProgressLine(position, stream=stream),
                stopper,
                *callbacks,
            ],
            shuffle=False,
            verbose=0,
        )
        ran = len(fitted.epoch)
        rows = [
            dict(
                {"epoch": e + 1, "phase": phase["phase"]},
                **{k: float(v[i]) for k, v in fitted.history.items()},
            )
            for i, e in enumerate(fitted.epoch)
        ]
        history.extend(rows)
        summary = {
            "name": phase["phase"],
            "title": PHASE_TITLES[phase["phase"]],
            "learning_rate": phase["learning_rate"],
            "planned_epochs": phase["epochs"],
            "epochs": ran,
            "first_epoch": first + 1,
            "last_epoch": first + ran,
            "trainable_parameters": trainable,
            "stopped_early": ran < phase["epochs"],
            "best_epoch": stopper.best_epoch + 1,
            f"best_{monitor}": _number(stopper.best),
        }
        if phase["phase"] == "backbone":
            summary["unfrozen_stages"] = unfreeze
        phases.append(summary)
        if stopper.stopped_epoch:
            say(f"Stopped early: no better {monitor} for {patience} epochs.")
        if rows:
            say(
                f"Kept the weights of epoch {stopper.best_epoch + 1} (best "
                f"{monitor} {stopper.best:.4f})."
            )
        current = stopper.best
        if best is not None and not _better(current, best[0], monitor):
            say(
                f"Phase {index + 1} did not beat phase {index}'s {monitor} "
                f"({best[0]:.4f}): keeping phase {index}'s weights."
            )
            net.set_weights(best[1])
            summary["kept_previous_phase"] = True
        elif index + 1 < len(plan):
            best = (current, net.get_weights())
        epoch = first + ran
    training_seconds = time.perf_counter() - started

    say("Evaluating on the validation images ...")
    probabilities = net.predict(
        validation.map(lambda images, labels: images), verbose=0
    )
    val_labels = finetune_data.training_labels(data.validation)
    predicted = np.argmax(probabilities, axis=1)
    matrix = report_lib.confusion_matrix(val_labels, predicted, data.num_classes)
    metrics = report_lib.classification_metrics(matrix, data.class_names)

    settings = {
        "dataset": _describe(dataset),
        "model": model,
        "weights": None if weights is None else str(weights),
        "image_size": image_size,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "unfreeze": unfreeze,
        "head_epochs": head_epochs,
        "learning_rate": learning_rate,
        "backbone_learning_rate": backbone_learning_rate,
        "dropout": dropout,
        "flip": flip,
        "crop_scale": list(crop_scale),
        "class_weights": bool(class_weights),
        "patience": patience,
        "monitor": monitor,
        "mixed_precision": policy,
        "jit_compile": jit,
        "data_dir": None if data_dir is None else str(data_dir),
    }
    report = {
        "command": COMMAND,
        "accuracy": metrics["accuracy"],
        "correct": metrics["correct"],
        "validation_images": metrics["total"],
        "per_class": metrics["per_class"],
        "macro_avg": metrics["macro_avg"],
        "weighted_avg": metrics["weighted_avg"],
        "confusion_matrix": matrix.tolist(),
        "class_names": list(data.class_names),
        "class_weights": (
            None
            if weights_by_class is None
            else {data.class_names[c]: w for c, w in weights_by_class.items()}
        ),
        "data": {
            "description": data.description,
            "validation_from": data.validation_from,
            "training_images": data.train.num_examples,
            "validation_images": data.validation.num_examples,
            "training_images_per_class": np.bincount(
                train_labels, minlength=data.num_classes
            ).tolist(),
            "smallest_image": list(data.smallest_image),
        },
        "preprocessing": {
            "input": "RGB on 0..255",
            "image_size": image_size,
            "crop_pct": preprocessing["crop_pct"],
            "interpolation": preprocessing["interpolation"],
            "mean": list(preprocessing["mean"]),
            "std": list(preprocessing["std"]),
        },
        "weights": weights_info,
        "parameters": {
            "total": int(net.count_params()),
            "backbone": int(model_lib.backbone_of(net).count_params()),
        },
        "phases": phases,
        "history": history,
        "settings": settings,
        "versions": _versions(),
    }

    written = []
    staging = folder.stage()
    try:
        written += _write_text(staging / "labels.txt", "".join(
            f"{name}\n" for name in data.class_names
        ))
        written += _write_log(staging / "log.csv", history)
        if export:
            say("Saving model.keras and the SavedModel ...")
            # Compiled with a plain SGD (no slot variables, built so that
            # loading finds what it builds): without Adam's two moments per
            # weight the file is a third of the size. Recompile to train on.
            net.compile(
                optimizer=keras.optimizers.SGD(),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
            )
            net.optimizer.build(net.trainable_variables)
            with files.staged_path(staging / "model.keras") as path:
                net.save(path)
            written.append("model.keras")
            serving.export_serving_model(
                net,
                staging / serving.SAVED_MODEL,
                class_names=data.class_names,
                image_size=image_size,
                crop_pct=preprocessing["crop_pct"],
                interpolation=preprocessing["interpolation"],
            )
            written.append(f"{serving.SAVED_MODEL}/")
        if figures:
            report_lib.write_curves(history, phases, staging / "curves.png")
            report_lib.write_confusion_matrix(
                matrix, data.class_names, staging / "confusion_matrix.png"
            )
            written += ["curves.png", "confusion_matrix.png"]
            try:
                report["attention_figure"] = _attention_figure(
                    net, validation, data.class_names, staging / ATTENTION_FIGURE
                )
                written.append(ATTENTION_FIGURE)
            except Exception as error:  # a figure must not lose the run
                report["attention_figure"] = {"error": f"{type(error).__name__}: {error}"}
                say(f"No attention figure: {type(error).__name__}: {error}")
        written.append(REPORT)
        report["files"] = sorted(written)
        report["seconds"] = {
            "training": training_seconds,
            "total": time.perf_counter() - started,
        }
        _write_text(
            staging / REPORT, json.dumps(report, indent=2, sort_keys=True) + "\n"
        )
        run_dir = folder.commit()
    except BaseException:
        folder.discard()
        raise
    say(
        f"Validation accuracy: {metrics['accuracy']:.2%} "
        f"({metrics['correct']}/{metrics['total']} images)"
    )
    say(
        f"Finished in {callbacks_lib.format_duration(report['seconds']['total'])}"
        f"; wrote {run_dir}/: {', '.join(sorted(written))}"
    )
    return FinetuneResult(run_dir, report, net, history, sorted(written))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
        value < minimum
    ):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
        )


def _preprocessing(model, weights, is_digits):
    """The evaluation preprocessing: the weights' table entry, ImageNet's
    defaults without one; the digits keep the whole image (crop 1.0)."""
    try:
        chosen = weights_lib.preprocessing_for(model, weights)
    except ValueError:
        # "imagenet" for an architecture without weights: random init.
        chosen = weights_lib.preprocessing_for(model, None)
    if is_digits:
        chosen = dict(chosen, crop_pct=1.0, interpolation="bilinear")
    if chosen.get("input_size") is None:
        chosen["input_size"] = DEFAULT_IMAGE_SIZE
    return chosen


def _plan(pretrained, epochs, head_epochs, unfreeze, learning_rate, backbone_rate):
    if not pretrained:
        return [{
            "phase": "scratch",
            "epochs": epochs,
            "learning_rate": learning_rate or LEARNING_RATES["scratch"],
        }]
    if unfreeze == 0:
        head = epochs
    elif head_epochs is None:
        head = max(1, epochs // 3)
    else:
        if head_epochs > epochs:
            raise ValueError(
                "`head_epochs` must be at most `epochs`. Received: "
                f"head_epochs={head_epochs}, epochs={epochs}"
            )
        head = head_epochs
    plan = [{
        "phase": "head",
        "epochs": head,
        "learning_rate": learning_rate or LEARNING_RATES["head"],
    }]
    if epochs > head:
        plan.append({
            "phase": "backbone",
            "epochs": epochs - head,
            "learning_rate": backbone_rate or LEARNING_RATES["backbone"],
        })
    return plan


def _compile(net, peak, total_steps, steps, jit):
    warmup = min(max(steps // 2, 1), total_steps - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )
    net.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
        jit_compile=jit,
    )


def _training_data(
    source, first, last, steps, image_size, batch_size, seed, crop_scale, flip
):
    """Epochs `first .. last - 1` of `keras_eca.data.training_dataset`,
    one after the other, for one `fit` (the iterator carries across
    epochs when `steps_per_epoch` is given)."""
    stream = None
    for epoch in range(first, last):
        part = data_lib.training_dataset(
            source,
            image_size=image_size,
            global_batch_size=batch_size,
            seed=seed,
            epoch=epoch,
            steps=steps,
            mean=IDENTITY_MEAN,
            std=IDENTITY_STD,
            scale=tuple(crop_scale),
            flip=flip,
        )
        stream = part if stream is None else stream.concatenate(part)
    return stream


class _Position(keras.callbacks.Callback):
    """Tells `ProgressLine` which epoch runs (one `fit` spans several)."""

    def __init__(self, position):
        super().__init__()
        self.position = position

    def on_epoch_begin(self, epoch, logs=None):
        self.position.epoch = epoch
        self.position.first_step = 0


def _better(value, other, monitor):
    if value is None or not math.isfinite(value):
        return False
    if other is None or not math.isfinite(other):
        return True
    return value > other if monitor == "val_accuracy" else value < other


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _attention_figure(net, validation, class_names, path):
    """`keras_eca.visualization.write_attention_figure` on up to 8
    validation images per class (1 with more than 16 classes, at most 128
    in all)."""
    from keras_eca import visualization

    per_class = 8 if len(class_names) <= 16 else 1
    wanted = min(128, per_class * len(class_names))
    chosen, chosen_labels, counts = [], [], {}
    for images, labels in validation.as_numpy_iterator():
        for image, label in zip(images, labels):
            label = int(label)
            if counts.get(label, 0) < per_class and len(chosen) < wanted:
                counts[label] = counts.get(label, 0) + 1
                chosen.append(image)
                chosen_labels.append(label)
        if len(chosen) >= wanted:
            break
    description = visualization.write_attention_figure(
        net, np.stack(chosen), chosen_labels, list(class_names), path
    )
    return {"file": ATTENTION_FIGURE, "description": description}


def _write_text(path, text):
    files.write_text_atomically(path, text)
    return [path.name]


def _write_log(path, history):
    keys = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy"]
    text = io.StringIO()
    writer = csv.DictWriter(
        text, fieldnames=keys, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(history)
    return _write_text(path, text.getvalue())


def _describe(dataset):
    if dataset is None:
        return finetune_data.DIGITS
    if isinstance(dataset, (tuple, list)):
        return "arrays"
    path = pathlib.Path(os.path.expanduser(os.fspath(dataset)))
    return str(path.resolve()) if path.is_dir() else str(dataset)


def _versions():
    import tensorflow as tf

    return {
        "keras_eca": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class _dtype_policy:
    def __init__(self, policy):
        self.policy = policy

    def __enter__(self):
        self.previous = keras.config.dtype_policy().name
        keras.config.set_dtype_policy(self.policy)

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.previous)


def is_finetune_run(path):
    """Whether the folder `path` holds a finetune run (its report)."""
    report = pathlib.Path(path) / REPORT
    try:
        return json.loads(report.read_text()).get("command") == COMMAND
    except (OSError, ValueError, AttributeError):
        return False


class RunFolder:
    """The output folder: checked before training, filled at the end.

    The run is written into a hidden sibling folder (`.NAME.finetune-PID
    .partial`), which then becomes the output folder in one rename when
    the output is missing or empty; an earlier finetune run is moved aside
    and deleted after the rename; with `overwrite=True` into a folder that
    holds other files, each of the run's entries is renamed into it. A
    killed run leaves at most the hidden folder, removed by the next run
    to the same output.
    """

    def __init__(self, output, overwrite=False):
        if output is None or not isinstance(output, (str, os.PathLike)):
            raise ValueError(
                "`output` must be the run folder's path. "
                f"Received: output={output!r}"
            )
        self.path = pathlib.Path(os.path.expanduser(os.fspath(output))).absolute()
        self.overwrite = bool(overwrite)
        self.staging = None
        self._check()

    def _state(self):
        if not self.path.exists():
            return "new"
        if not self.path.is_dir():
            raise ValueError(
                f"--output {str(self.path)!r} is a file, not a folder. "
                f"Received: output={str(self.path)!r}"
            )
        if not any(self.path.iterdir()):
            return "empty"
        if is_finetune_run(self.path):
            return "previous"
        return "merge"

    def _check(self):
        if self._state() == "merge" and not self.overwrite:
            raise ValueError(
                f"--output {str(self.path)!r} is a folder that holds files "
                "but no finetune run. Choose another folder, or pass "
                "--overwrite (overwrite=True) to write the run's files into "
                "it (files of the same names are replaced, the others kept)."
            )

    def _prefix(self):
        return f".{self.path.name}.finetune-"

    def stage(self):
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.staging = parent / f"{self._prefix()}{os.getpid()}.partial"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir()
        return self.staging

    def _remove_stale(self):
        for path in self.path.parent.glob(f"{self._prefix()}*.partial"):
            pid = path.name[len(self._prefix()) : -len(".partial")]
            pid = pid.split("-")[-1]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            shutil.rmtree(path, ignore_errors=True)

    def commit(self):
        """Moves the staged run into place; returns the run folder."""
        state = self._state()
        self._check()
        if state in ("new", "empty"):
            os.replace(self.staging, self.path)
        elif state == "previous":
            old = self.path.parent / f"{self._prefix()}old-{os.getpid()}.partial"
            os.replace(self.path, old)
            os.replace(self.staging, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            for entry in sorted(self.staging.iterdir()):
                target = self.path / entry.name
                if target.is_dir() and not target.is_symlink():
                    old = self.path / f".{entry.name}.old-{os.getpid()}.partial"
                    os.replace(target, old)
                    os.replace(entry, target)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(entry, target)
            shutil.rmtree(self.staging, ignore_errors=True)
        files.sync_folder(self.path.parent)
        self.staging = None
        return self.path

    def discard(self):
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
