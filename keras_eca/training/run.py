"""`train()`: one run of a recipe in a run folder, resumable to the step.

A run folder holds:

- `run.json`: the settings (model, dataset, resolved recipe, ...), the
  package versions and, once done, `"finished": true` and the final logs;
- `recipe.json`: the resolved recipe, as printed at the start;
- `backup/state.npz`: the latest exact backup (see `backup`);
- `last.keras` (after every epoch), `best.keras` (best validation
  accuracy, or training accuracy without validation data);
- `log.csv` (one row per epoch) and `logs/` (TensorBoard);
- at the end, `model.keras` and a SavedModel in `saved_model/`.

Running the same command with the same folder resumes after the last
backup: the model, optimizer and metric states are restored and the input
pipeline, a pure function of (seed, epoch, step), starts at the step after
it, so the resumed run trains every step exactly once. Under
`multi_worker` every worker restores the chief's backup (the folder must be
shared, as for any multi-worker job) and only the chief writes files.
"""

import dataclasses
import os
import pathlib
import sys
import time

import keras

from keras_eca import data as data_lib
from keras_eca.applications import build_model
from keras_eca.applications import registry
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD
from keras_eca.training import callbacks as callbacks_lib
from keras_eca.training import distribution as distribution_lib
from keras_eca.training import recipes as recipes_lib
from keras_eca.training import run_folder
from keras_eca.training import schedules

BACKUP_FILE = "backup/state.npz"
# Settings that must equal the stored ones for a folder to be resumed; the
# strategy may change (the global batch and the data do not depend on it).
RESUME_KEYS = ("model", "dataset", "recipe", "validation_fraction", "weights")


@dataclasses.dataclass
class TrainingRun:
    """What `train()` returns."""

    run_dir: pathlib.Path
    model: keras.Model
    history: list
    resumed_from: dict | None
    seconds: float


def resolve_recipe(
    recipe,
    architecture,
    overrides=(),
    **arguments,
):
    """The recipe of a run: a named recipe (or the architecture's default),
    then `--set` overrides, then the explicit arguments that are not None
    (`image_size=`, `batch_size=`, `epochs=`, `steps_per_epoch=`,
    `seed=`, `backup_every=`)."""
    name = recipe or recipes_lib.default_recipe_for(architecture)
    resolved = recipes_lib.apply_overrides(
        recipes_lib.get_recipe(name), list(overrides)
    )
    explicit = {key: value for key, value in arguments.items() if value is not None}
    return dataclasses.replace(resolved, **explicit) if explicit else resolved


def compile_for_recipe(net, rec, *, global_batch_size, steps_per_epoch, jit_compile):
    """Compiles a logits model with the recipe's optimizer and loss, and
    top-1 (`accuracy`) / top-5 (`top5`) metrics; call inside the
    distribution's scope."""
    net.compile(
        optimizer=schedules.build_optimizer(
            rec, global_batch_size=global_batch_size, steps_per_epoch=steps_per_epoch
        ),
        loss=schedules.build_loss(rec, from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy("accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, "top5"),
        ],
        jit_compile=jit_compile,
    )


def train(
    model,
    dataset,
    output,
    *,
    data_dir=None,
    manual_dir=None,
    recipe=None,
    image_size=None,
    batch_size=None,
    epochs=None,
    steps_per_epoch=None,
    seed=None,
    mixed_precision=None,
    strategy="auto",
    tpu=None,
    sync_batchnorm=False,
    backup_every=None,
    overrides=(),
    weights=None,
    validation_fraction=None,
    deterministic=False,
    export=True,
    callbacks=(),
    stream=None,
):
    """Trains `model` on `dataset` with a recipe, in the run folder `output`.

    The Python form of `keras-eca train`; see the module docstring for the
    run folder and resuming.

    Args:
        model: str. A registry key (`keras-eca list-models`).
        dataset: a TFDS name (`"imagenet2012"`, `"tf_flowers"`, ...), a
            folder of class subfolders, or `(images, labels)` arrays.
        output: the run folder. An existing run's folder is resumed.
        data_dir, manual_dir: TFDS's data and manual download folders.
        recipe: a name of `keras_eca.training.list_recipes()`. Defaults to
            the architecture's paper recipe.
        image_size, batch_size, epochs, steps_per_epoch, seed,
            mixed_precision, backup_every: override the recipe's field.
            The batch size is global (all replicas); steps_per_epoch
            defaults to one pass over the training data.
        strategy: `"auto"`, `"one_device"`, `"mirrored"`, `"multi_worker"`
            or `"tpu"` (with `tpu=` the resolver address).
        sync_batchnorm: synchronise BatchNorm statistics across replicas.
        overrides: `"key=value"` strings, as `--set`.
        weights: initial weights, as `build_model(weights=...)`.
        validation_fraction: hold out this stratified fraction of a folder
            or arrays source for validation (TFDS datasets use their
            `validation` split when they have one).
        deterministic: also make TensorFlow's ops deterministic
            (`tf.config.experimental.enable_op_determinism`), slower on GPU.
        export: write `model.keras` and `saved_model/` at the end.
        callbacks: extra Keras callbacks, called before the backup's.
            They see the run as one `fit` (`on_train_begin` once, before
            the first epoch this process trains; `on_train_end` once,
            before the export), so e.g. `EarlyStopping(restore_best_weights=
            True)` works as with a plain `fit` within one process.
        stream: where progress goes. Defaults to standard output.

    Returns:
        A `TrainingRun`.
    """
    started = time.perf_counter()
    stream = stream or sys.stdout
    registry.check_model_name(model)
    rec = resolve_recipe(
        recipe,
        model,
        overrides,
        image_size=image_size,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        seed=seed,
        mixed_precision=mixed_precision,
        backup_every=backup_every,
    )
    folder = pathlib.Path(output)
    settings = {
        "model": model,
        "dataset": _describe_dataset(dataset),
        "recipe": rec.to_dict(),
        "validation_fraction": validation_fraction,
        "weights": None if weights is None else str(weights),
        "strategy": strategy,
        "sync_batchnorm": bool(sync_batchnorm),
        "data_dir": None if data_dir is None else str(data_dir),
    }
    previous = run_folder.earlier_run(folder, settings, RESUME_KEYS, folder / BACKUP_FILE)
    started_before = previous is not None
    if started_before and previous.get("finished"):
        model, history = run_folder.finished_run(folder, stream)
        return TrainingRun(folder, model, history, None, 0.0)
    dist = distribution_lib.make_distribution(strategy, tpu=tpu)
    policy = distribution_lib.resolve_precision(rec.mixed_precision, dist)
    jit = distribution_lib.resolve_jit_compile(rec.jit_compile, dist)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    train_source = data_lib.resolve_source(
        dataset,
        split="train",
        data_dir=data_dir,
        manual_dir=manual_dir,
        validation_fraction=validation_fraction,
        seed=rec.seed,
    )
    val_source = _validation_source(
        dataset, data_dir, manual_dir, validation_fraction, rec.seed
    )
    global_batch = rec.batch_size
    steps = rec.steps_per_epoch or data_lib.steps_per_epoch(
        train_source, global_batch
    )
    settings.update(
        training_examples=train_source.num_examples, resolved_steps=steps
    )
    if started_before:
        run_folder.check_same_run(folder, previous, settings, ("training_examples",))
    if global_batch % dist.num_replicas:
        raise ValueError(
            f"The global batch size must be a multiple of the "
            f"{dist.num_replicas} replicas. Received: batch_size={global_batch}"
        )

    # Seeded here, after the data is resolved: preparing a TFDS dataset
    # draws random numbers, and the initial weights must not depend on
    # whether this process prepared it.
    keras.utils.set_random_seed(rec.seed)
    with run_folder.dtype_policy(policy), dist.scope():
        net = build_model(
            model,
            weights=weights,
            input_shape=(rec.image_size, rec.image_size, 3),
            classes=train_source.num_classes,
            classifier_activation=None,
        )
        if sync_batchnorm:
            net = distribution_lib.sync_batchnorm(net)
        compile_for_recipe(
            net, rec, global_batch_size=global_batch, steps_per_epoch=steps,
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
    run_folder.say(
        stream,
        f"{model}: {net.count_params():,} parameters, "
        f"{train_source.num_classes} classes, {train_source.num_examples:,} "
        f"training images ({steps} steps of {global_batch} per epoch), "
        f"{dist.describe()}, {policy}, jit_compile={jit}",
    )

    position = callbacks_lib.RunPosition(rec.epochs, steps, global_batch)
    saved, start_epoch, start_step, state = callbacks_lib.resume_from_backup(
        folder / BACKUP_FILE, net, dist, rec.epochs, steps, stream
    )
    if chief:
        # Rows of epochs after the backup were written before a kill.
        run_folder.truncate_history(folder / "log.csv", start_epoch)
    monitor = "val_accuracy" if val_source is not None else "accuracy"
    # Every worker takes the snapshots and saves (reading sync-on-read
    # metrics and saving are collective under multi_worker); only the
    # chief's files are kept.
    backup = callbacks_lib.ExactBackup(
        folder / BACKUP_FILE, position, rec.backup_every, state,
        write=chief, metrics_from=saved if start_step else None,
    )
    callbacks, whole_run = callbacks_lib.run_callbacks(
        folder, position, monitor, state, backup, epochs=rec.epochs,
        chief=chief, extra=callbacks, stream=stream,
    )

    validation = None
    if val_source is not None:
        validation = dist.distribute_dataset(
            lambda input_pipeline, num_replicas: data_lib.evaluation_dataset(
                val_source,
                image_size=rec.image_size,
                crop_pct=rec.eval_crop_pct,
                interpolation=rec.eval_interpolation,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                batch_size=global_batch // num_replicas,
                input_pipeline=input_pipeline,
            )
        )
    # Keras copies the weights' EMA into the model when `fit` ends; with
    # one `fit` per epoch that would train on the average from the second
    # epoch on, so the copy waits for the last epoch.
    finalize = None
    if rec.ema_decay is not None:
        finalize = net.optimizer.finalize_variable_values
        net.optimizer.finalize_variable_values = lambda variables: None
    try:
        # Inside the scope: Keras on JAX splits batches over the devices
        # only while the distribution is set.
        with dist.scope():
            _fit_epochs(
                net, dist, train_source, validation, rec, steps, position,
                start_epoch, start_step, callbacks,
            )
    finally:
        backup.close()
        if finalize is not None:
            del net.optimizer.finalize_variable_values
    with dist.scope():
        if finalize is not None:
            finalize(net.trainable_variables)
        # As `fit` orders them: the EMA copy, then `on_train_end` (which
        # may restore EarlyStopping's best weights).
        for callback in whole_run:
            callback.end()
    seconds = time.perf_counter() - started
    history = run_folder.read_history(folder / "log.csv") if chief else []
    if export:
        with callbacks_lib.worker_folder(folder, chief) as target:
            callbacks_lib.save_model_atomically(net, target / "model.keras")
            run_folder.export_saved_model(net, target / "saved_model")
    if chief:
        final = history[-1] if history else {}
        run_folder.write_json(
            folder / "run.json",
            dict(
                settings,
                finished=True,
                final=final,
                best=state.get("best"),
                best_epoch=state.get("best_epoch"),
                monitor=monitor,
            ),
        )
    run_folder.say(stream, f"Finished in {callbacks_lib.format_duration(seconds)}: {folder}")
    resumed = None if saved is None else {"epoch": start_epoch, "step": start_step}
    return TrainingRun(folder, net, history, resumed, seconds)


def _fit_epochs(
    net, dist, train_source, validation, rec, steps, position,
    start_epoch, start_step, callbacks,
):
    """One `fit` call per epoch, the first one from the resumed step."""
    global_batch = rec.batch_size
    for epoch in range(start_epoch, rec.epochs):
        first = start_step if epoch == start_epoch else 0
        position.epoch, position.first_step = epoch, first
        train_data = dist.distribute_dataset(
            lambda input_pipeline, num_replicas, epoch=epoch, first=first: (
                data_lib.training_dataset(
                    train_source,
                    image_size=rec.image_size,
                    global_batch_size=global_batch,
                    seed=rec.seed,
                    epoch=epoch,
                    start_step=first,
                    steps=steps,
                    num_replicas=num_replicas,
                    input_pipeline=input_pipeline,
                    mean=IMAGENET_MEAN,
                    std=IMAGENET_STD,
                    scale=rec.crop_scale,
                    ratio=rec.crop_ratio,
                    flip=rec.flip,
                )
            )
        )
        net.fit(
            train_data,
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=steps - first,
            validation_data=validation,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, keyed by (seed, epoch)
            verbose=0,
        )
        if net.stop_training:  # e.g. keras.callbacks.TerminateOnNaN
            break




def _validation_source(dataset, data_dir, manual_dir, validation_fraction, seed):
    """The validation split, or `None` when the dataset has none: arrays
    and one-level folders without `validation_fraction`, TFDS datasets
    without a `validation` split (e.g. tf_flowers). Any other problem
    with the split is an error."""
    if validation_fraction is None:
        if isinstance(dataset, (tuple, list)):
            return None
        path = pathlib.Path(os.path.expanduser(str(dataset)))
        if path.is_dir():
            if not any((path / name).is_dir() for name in ("val", "validation")):
                return None
        elif not _tfds_has_split(str(dataset), "validation", data_dir):
            return None
    return data_lib.resolve_source(
        dataset,
        split="validation",
        data_dir=data_dir,
        manual_dir=manual_dir,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def _tfds_has_split(name, split, data_dir):
    # Called after the training split was resolved, so it is prepared.
    import tensorflow_datasets as tfds

    return split in tfds.builder(name, data_dir=data_dir).info.splits




def _describe_dataset(dataset):
    if isinstance(dataset, (str, pathlib.Path)):
        # A folder as an absolute path, so the run resumes from anywhere.
        path = pathlib.Path(dataset).expanduser()
        return str(path.resolve()) if path.is_dir() else str(dataset)
    return "arrays"















