"""`train_detector()`: a detector trained in a run folder, resumable to the
step, with COCO AP on the validation split after every epoch.

A detection run folder holds what a classification run's does (see
`keras_eca.training.run`): `run.json` (settings, class names, and once done
`"finished": true` with the final COCO metrics), `recipe.json`,
`backup/state.npz`, `last.keras`, `best.keras` (best validation AP, or
lowest training loss without validation data), `log.csv`, `logs/`, and at
the end `model.keras`, `saved_model/` (`serve` returns NMS-filtered boxes)
and `metrics.json` (the 12 COCO numbers).

The same command with the same folder resumes after the last backup: the
model, optimizer and metric states are restored, and the input pipeline, a
pure function of (seed, epoch, step), starts at the next step.
"""

import dataclasses
import pathlib
import sys
import time

import keras

from keras_eca.detection import data as data_lib
from keras_eca.detection import detectors
from keras_eca.detection import recipes as recipes_lib
from keras_eca.training import callbacks as callbacks_lib
from keras_eca.training import distribution as distribution_lib
from keras_eca.training import run_folder
from keras_eca.training import schedules
from keras_eca.training.optimizers import SGD
from keras_eca.training.recipes import apply_overrides

BACKUP_FILE = "backup/state.npz"
METRICS_FILE = "metrics.json"
# Settings that must equal the stored ones for a folder to be resumed; the
# strategy may change (the global batch and the data do not depend on it).
RESUME_KEYS = (
    "detector", "api", "backbone", "dataset", "recipe", "weights",
    "train_examples", "eval_split", "eval_examples",
)


@dataclasses.dataclass
class DetectionRun:
    """What `train_detector()` returns."""

    run_dir: pathlib.Path
    model: keras.Model
    history: list
    metrics: dict | None  # COCO metrics of the final model on validation
    resumed_from: dict | None
    seconds: float


def resolve_detection_recipe(recipe, dataset, overrides=(), **arguments):
    """A named recipe (default: `"synthetic"` for the embedded set, else
    `"coco_1x"`), then `--set` overrides, then the explicit arguments that
    are not None (`image_size=`, `batch_size=`, `epochs=`, ...)."""
    name = recipe or recipes_lib.default_detection_recipe(dataset)
    resolved = apply_overrides(recipes_lib.get_detection_recipe(name), list(overrides))
    explicit = {key: value for key, value in arguments.items() if value is not None}
    if not explicit:
        return resolved
    try:
        return dataclasses.replace(resolved, **explicit)
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None


def build_schedule(recipe, *, global_batch_size, steps_per_epoch):
    """The recipe's learning rate by optimizer step: the scaled peak rate,
    x `decay_factor` from the start of each of `decay_epochs`, after a
    linear warmup of `warmup_steps`."""
    peak = recipe.scaled_learning_rate(global_batch_size)
    if recipe.decay_epochs:
        # Keras' piecewise schedule switches after `boundary`: epoch e
        # starts at step e * steps_per_epoch.
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [epoch * steps_per_epoch - 1 for epoch in recipe.decay_epochs],
            [peak * recipe.decay_factor ** i for i in range(len(recipe.decay_epochs) + 1)],
        )
    else:
        schedule = schedules.ConstantLearningRate(peak)
    if recipe.warmup_steps:
        schedule = schedules.LinearWarmup(schedule, recipe.warmup_steps)
    return schedule


def build_optimizer(recipe, *, global_batch_size, steps_per_epoch):
    """The recipe's optimizer (SGD with coupled weight decay, or Adam) on
    `build_schedule`, with its gradient clipping."""
    schedule = build_schedule(
        recipe, global_batch_size=global_batch_size, steps_per_epoch=steps_per_epoch
    )
    clip = {}
    if recipe.global_clipnorm is not None:
        clip = {"global_clipnorm": recipe.global_clipnorm}
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(schedule, **clip)
    return SGD(
        schedule, momentum=recipe.momentum, weight_decay=recipe.weight_decay, **clip
    )


class CocoValidation(keras.callbacks.Callback):
    """COCO AP / AR of the model on a validation source after each epoch,
    added to the epoch's logs as `val_AP`, `val_AP50`, ... (so the progress
    line, `log.csv`, TensorBoard and `best.keras` see them). Put it before
    the callbacks that read the logs."""

    def __init__(self, source, image_size, batch_size, stream=None):
        super().__init__()
        self.source = source
        self.image_size = image_size
        self.batch_size = batch_size
        self.stream = stream
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        began = time.perf_counter()
        self.last = detectors.evaluate_detector(
            self.model, self.source, image_size=self.image_size,
            batch_size=self.batch_size,
        )
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in self.last.items()})
        if self.stream is not None:
            run_folder.say(
                self.stream,
                f"COCO on {self.source.num_examples} validation images: "
                f"AP {self.last['AP']:.3f}  AP50 {self.last['AP50']:.3f}  "
                f"AP75 {self.last['AP75']:.3f} "
                f"({callbacks_lib.format_duration(time.perf_counter() - began)})",
            )


def train_detector(
    detector,
    backbone,
    dataset,
    output,
    *,
    api="keras_cv",
    weights=None,
    recipe=None,
    image_size=None,
    batch_size=None,
    epochs=None,
    steps_per_epoch=None,
    seed=None,
    mixed_precision=None,
    backup_every=None,
    overrides=(),
    strategy="auto",
    tpu=None,
    data_dir=None,
    train_examples=None,
    eval_split="validation",
    eval_examples=None,
    eval_batch_size=8,
    export=True,
    callbacks=(),
    stream=None,
):
    """Trains a detector on `dataset` with a detection recipe, in the run
    folder `output`; the Python form of `keras-eca detect-train`.

    Args:
        detector: `"retinanet"` or `"yolov8"` (see `build_detector`).
        backbone: a registry key, e.g. `"eca_resnet50"`.
        dataset: `"synthetic"` or a TFDS detection dataset (`"coco/2017"`).
        output: the run folder. An existing run's folder is resumed.
        api: `"keras_cv"` or `"keras_hub"`.
        weights: the backbone's initial weights (`"imagenet"`, a table key,
            a file; default: random).
        recipe: a name of `list_detection_recipes()`; default `"synthetic"`
            for the embedded set, else `"coco_1x"`.
        image_size, batch_size, epochs, steps_per_epoch, seed,
            mixed_precision, backup_every: override the recipe's field.
            The batch size is global (all replicas).
        overrides: `"key=value"` strings, as `--set`.
        strategy, tpu: as `keras_eca.training.make_distribution`.
        data_dir: TFDS's data folder.
        train_examples: the first N training images (synthetic: N drawn).
        eval_split: the split evaluated after each epoch; `None`: none.
        eval_examples: the first N images of it.
        eval_batch_size: batch size of the COCO evaluation.
        export: write `model.keras`, `saved_model/` and `metrics.json`.
        callbacks: extra Keras callbacks (see `keras_eca.training.train`).
        stream: where progress goes. Defaults to standard output.

    Returns:
        A `DetectionRun`.
    """
    started = time.perf_counter()
    stream = stream or sys.stdout
    rec = resolve_detection_recipe(
        recipe, dataset, overrides, image_size=image_size, batch_size=batch_size,
        epochs=epochs, steps_per_epoch=steps_per_epoch, seed=seed,
        mixed_precision=mixed_precision, backup_every=backup_every,
    )
    if api not in detectors.DETECTORS_BY_API:
        raise ValueError(
            f"`api` must be one of {list(detectors.DETECTORS_BY_API)}. "
            f"Received: api={api!r}"
        )
    if detector not in detectors.DETECTORS_BY_API[api]:
        raise ValueError(
            f"`detector` must be one of {list(detectors.DETECTORS_BY_API[api])} "
            f"with api={api!r}. Received: detector={detector!r}"
        )
    from keras_eca.applications import registry

    registry.check_model_name(backbone)
    folder = pathlib.Path(output)
    settings = {
        "detector": detector,
        "api": api,
        "backbone": backbone,
        "dataset": dataset,
        "recipe": rec.to_dict(),
        "weights": None if weights is None else str(weights),
        "train_examples": train_examples,
        "eval_split": eval_split,
        "eval_examples": eval_examples,
        "strategy": strategy,
        "data_dir": None if data_dir is None else str(data_dir),
    }
    previous = run_folder.earlier_run(folder, settings, RESUME_KEYS, folder / BACKUP_FILE)
    started_before = previous is not None
    if started_before and previous.get("finished"):
        model, history = run_folder.finished_run(folder, stream)
        return DetectionRun(folder, model, history, previous.get("metrics"), None, 0.0)
    dist = distribution_lib.make_distribution(strategy, tpu=tpu)
    policy = distribution_lib.resolve_precision(rec.mixed_precision, dist)
    jit = distribution_lib.resolve_jit_compile(rec.jit_compile, dist)

    train_source = data_lib.resolve_detection_source(
        dataset, "train", data_dir=data_dir, num_examples=train_examples,
        seed=rec.seed,
    )
    val_source = None
    if eval_split is not None:
        val_source = data_lib.resolve_detection_source(
            dataset, eval_split, data_dir=data_dir, num_examples=eval_examples,
            seed=rec.seed,
        )
    global_batch = rec.batch_size
    if global_batch % dist.num_replicas:
        raise ValueError(
            f"The global batch size must be a multiple of the "
            f"{dist.num_replicas} replicas. Received: batch_size={global_batch}"
        )
    steps = rec.steps_per_epoch or data_lib.steps_per_epoch(train_source, global_batch)
    settings.update(
        class_names=list(train_source.class_names),
        training_examples=train_source.num_examples,
        resolved_steps=steps,
    )
    if started_before:
        run_folder.check_same_run(folder, previous, settings, ("training_examples",))

    # Seeded after the data is resolved (preparing TFDS draws numbers).
    keras.utils.set_random_seed(rec.seed)
    with run_folder.dtype_policy(policy), dist.scope():
        net = detectors.build_detector(
            detector, backbone, train_source.num_classes, api=api,
            weights=weights, image_size=rec.image_size,
        )
        detectors.compile_detector(
            net,
            build_optimizer(rec, global_batch_size=global_batch, steps_per_epoch=steps),
            jit_compile=jit,
        )

    chief = dist.is_chief
    if chief:
        folder.mkdir(parents=True, exist_ok=True)
        run_folder.remove_partial_files(folder)
        run_folder.write_json(folder / "recipe.json", rec.to_dict())
        run_folder.write_json(folder / "run.json", dict(settings, finished=False))
    run_folder.say(stream, f"Run folder: {folder}")
    run_folder.say(stream, rec.describe())
    evaluated = (
        f"COCO AP on {val_source.num_examples} {eval_split} images after each epoch"
        if val_source is not None else "no validation"
    )
    run_folder.say(
        stream,
        f"{api} {detector} on {backbone}: {net.count_params():,} parameters, "
        f"{train_source.num_classes} classes, {train_source.num_examples:,} "
        f"training images ({steps} steps of {global_batch} per epoch), "
        f"{evaluated}; {dist.describe()}, {policy}, jit_compile={jit}",
    )

    position = callbacks_lib.RunPosition(rec.epochs, steps, global_batch)
    saved, start_epoch, start_step, state = callbacks_lib.resume_from_backup(
        folder / BACKUP_FILE, net, dist, rec.epochs, steps, stream
    )
    if chief:
        run_folder.truncate_history(folder / "log.csv", start_epoch)

    validation = None
    if val_source is not None:
        validation = CocoValidation(
            val_source, rec.image_size, eval_batch_size, stream=stream
        )
    monitor = "val_AP" if validation is not None else "loss"
    backup = callbacks_lib.ExactBackup(
        folder / BACKUP_FILE, position, rec.backup_every, state,
        write=chief, metrics_from=saved if start_step else None,
    )
    run_callbacks, whole_run = callbacks_lib.run_callbacks(
        folder, position, monitor, state, backup, epochs=rec.epochs,
        chief=chief, first=[validation] if validation is not None else [],
        extra=callbacks, stream=stream,
    )

    adapt = detectors.adapt_targets(api)
    try:
        with dist.scope():
            for epoch in range(start_epoch, rec.epochs):
                first = start_step if epoch == start_epoch else 0
                position.epoch, position.first_step = epoch, first
                def make(input_pipeline, num_replicas, epoch=epoch, first=first):
                    return data_lib.training_dataset(
                        train_source, image_size=rec.image_size,
                        batch_size=global_batch, seed=rec.seed, epoch=epoch,
                        start_step=first, steps=steps,
                        scale_range=rec.scale_range, flip=rec.flip,
                        max_boxes=rec.max_boxes, num_replicas=num_replicas,
                        input_pipeline=input_pipeline,
                    ).map(adapt)

                if api == "keras_hub":
                    # keras-hub's Task.fit takes a tf.data.Dataset, not
                    # tf.distribute's distributed one: it gets the global
                    # batches, which Keras splits over the replicas.
                    train_data = make(input_pipeline=(0, 1), num_replicas=1)
                else:
                    train_data = dist.distribute_dataset(make)
                net.fit(
                    train_data, epochs=epoch + 1, initial_epoch=epoch,
                    steps_per_epoch=steps - first, callbacks=run_callbacks,
                    shuffle=False, verbose=0,
                )
                if net.stop_training:
                    break
    finally:
        backup.close()
    with dist.scope():
        for callback in whole_run:
            callback.end()

    metrics = None
    if val_source is not None:
        metrics = validation.last
        if metrics is None:  # every epoch was trained before a restart
            metrics = detectors.evaluate_detector(
                net, val_source, image_size=rec.image_size,
                batch_size=eval_batch_size,
            )
    history = run_folder.read_history(folder / "log.csv") if chief else []
    if export:
        with callbacks_lib.worker_folder(folder, chief) as target:
            callbacks_lib.save_model_atomically(net, target / "model.keras")
            run_folder.export_saved_model(net, target / "saved_model")
        if chief and metrics is not None:
            run_folder.write_json(folder / METRICS_FILE, metrics)
    seconds = time.perf_counter() - started
    if chief:
        run_folder.write_json(
            folder / "run.json",
            dict(
                settings, finished=True, metrics=metrics,
                final=history[-1] if history else {}, best=state.get("best"),
                best_epoch=state.get("best_epoch"), monitor=monitor,
            ),
        )
    run_folder.say(
        stream, f"Finished in {callbacks_lib.format_duration(seconds)}: {folder}"
    )
    resumed = None if saved is None else {"epoch": start_epoch, "step": start_step}
    return DetectionRun(folder, net, history, metrics, resumed, seconds)


def load_run(path):
    """The detector of a run folder (its `model.keras`, else `best.keras` /
    `last.keras`) or of a `.keras` file, and the run's settings (`{}` for a
    bare file)."""
    path = pathlib.Path(path)
    settings = {}
    if path.is_dir():
        settings = run_folder.read_json(path / "run.json") or {}
        for name in ("model.keras", "best.keras", "last.keras"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ValueError(
                f"{str(path)!r} holds no model.keras, best.keras or last.keras "
                "(not a detect-train run folder, or no epoch finished yet)."
            )
    elif not path.is_file():
        raise ValueError(f"`model` {str(path)!r} is neither a run folder nor a file.")
    model = keras.saving.load_model(path, compile=False)
    detectors.detector_api(model)
    return model, settings
