"""What `keras-eca train` costs over a bare `model.fit`.

Both train the same model (same recipe, optimizer, loss and metrics) on the
same `keras_eca.data.training_dataset` batches; the harness adds its
per-epoch `fit` calls, exact backups every `backup_every` steps and after
each epoch, `last.keras` / `best.keras`, CSV and TensorBoard logs and the
progress line. Steps/s are timed by the same callback in both (see
`StepTimer`): within epochs (the target's ratio: backups every N steps,
logs and progress included) and over the whole run (the once-an-epoch
saves included, whose share shrinks with the epoch's length: an ImageNet
epoch is 5,004 steps at batch 256). The two alternate `repeats` times and
the medians are reported.

    python -m keras_eca.benchmark.training_harness [--model resnet18] ...
"""

import argparse
import io
import statistics
import tempfile
import time

import numpy as np

import keras

from keras_eca import data as data_lib
from keras_eca.applications import build_model
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD
from keras_eca.training import distribution as distribution_lib
from keras_eca.training import run as run_lib

TARGET = 0.97


class StepTimer(keras.callbacks.Callback):
    """Step times two ways, from the end of a first step (tracing and the
    iterator's start excluded) to the end of a last one:

    - within epochs: each epoch from its first step to its last, summed,
      so the mid-epoch backups, logs and progress count, the once-an-epoch
      work (`last.keras`, the epoch-end backup, validation) does not;
    - the whole run: from the run's first step to its last, everything
      between epochs included.
    """

    def __init__(self):
        super().__init__()
        self.run_first = None
        self.run_last = None
        self.run_steps = 0
        self.epoch_seconds = 0.0
        self.epoch_steps = 0
        self._epoch_first = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_first = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.run_first is None:
            self.run_first = now
        else:
            self.run_last = now
            self.run_steps += 1
        if self._epoch_first is None:
            self._epoch_first = now
        else:
            self.epoch_seconds += now - self._epoch_last
            self.epoch_steps += 1
        self._epoch_last = now

    @property
    def within_epochs(self):
        return self.epoch_steps / self.epoch_seconds

    @property
    def whole_run(self):
        return self.run_steps / (self.run_last - self.run_first)


def _arrays(examples, size, classes, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(examples, size, size, 3), dtype=np.uint8)
    labels = np.arange(examples) % classes
    return images, labels


def _bare_fit(model_name, arrays, recipe, epochs, steps, timer):
    """A plain script: the same model, recipe, precision, XLA setting and
    devices as `train` resolves, one pipeline for all epochs, one `fit`."""
    source = data_lib.resolve_source(arrays)
    dist = distribution_lib.make_distribution("auto")
    policy = distribution_lib.resolve_precision(recipe.mixed_precision, dist)
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        with dist.scope():
            model = build_model(
                model_name,
                input_shape=(recipe.image_size, recipe.image_size, 3),
                classes=source.num_classes,
                classifier_activation=None,
            )
    finally:
        keras.config.set_dtype_policy(previous)
    with dist.scope():
        run_lib.compile_for_recipe(
            model,
            recipe,
            global_batch_size=recipe.batch_size,
            steps_per_epoch=steps,
            jit_compile=distribution_lib.resolve_jit_compile(
                recipe.jit_compile, dist
            ),
        )
        dataset = dist.distribute_dataset(
            lambda input_pipeline, num_replicas: data_lib.training_dataset(
                source,
                image_size=recipe.image_size,
                global_batch_size=recipe.batch_size,
                seed=recipe.seed,
                epoch=0,
                steps=steps * epochs,
                num_replicas=num_replicas,
                input_pipeline=input_pipeline,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            )
        )
        model.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=steps,
            callbacks=[timer],
            shuffle=False,
            verbose=0,
        )


def measure(
    model="resnet18",
    image_size=64,
    batch_size=16,
    epochs=3,
    steps_per_epoch=24,
    backup_every=12,
    repeats=3,
    report=print,
):
    """Returns the medians over `repeats` alternations of
    `bare_steps_per_s`, `harness_steps_per_s`, `ratio` (within epochs,
    the target's) and `ratio_with_epoch_ends` (the whole run), with the
    settings, every repeat's `ratios` and the `target`."""
    arrays = _arrays(batch_size * steps_per_epoch, image_size, classes=10)
    recipe = run_lib.resolve_recipe(
        "smoke",
        model,
        image_size=image_size,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        backup_every=backup_every,
    )
    rows = []
    for repeat in range(repeats):
        bare = StepTimer()
        _bare_fit(model, arrays, recipe, epochs, steps_per_epoch, bare)
        harness = StepTimer()
        with tempfile.TemporaryDirectory() as folder:
            run_lib.train(
                model,
                arrays,
                folder,
                recipe="smoke",
                image_size=image_size,
                batch_size=batch_size,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                backup_every=backup_every,
                export=False,
                callbacks=[harness],
                stream=io.StringIO(),
            )
        rows.append(
            {
                "bare_steps_per_s": bare.within_epochs,
                "harness_steps_per_s": harness.within_epochs,
                "ratio": harness.within_epochs / bare.within_epochs,
                "ratio_with_epoch_ends": harness.whole_run / bare.whole_run,
            }
        )
        if report:
            row = rows[-1]
            report(
                f"repeat {repeat + 1}/{repeats}: bare fit "
                f"{row['bare_steps_per_s']:.2f} steps/s, keras-eca train "
                f"{row['harness_steps_per_s']:.2f} steps/s, ratio "
                f"{row['ratio']:.3f} (whole run, epoch ends included: "
                f"{row['ratio_with_epoch_ends']:.3f})"
            )
    result = {
        key: statistics.median(row[key] for row in rows) for key in rows[0]
    }
    result.update(
        model=model,
        image_size=image_size,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        backup_every=backup_every,
        ratios=[row["ratio"] for row in rows],
        target=TARGET,
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=24)
    parser.add_argument("--backup-every", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure(
        args.model,
        args.image_size,
        args.batch_size,
        args.epochs,
        args.steps_per_epoch,
        args.backup_every,
        args.repeats,
    )
    verdict = "met" if result["ratio"] >= TARGET else "MISSED"
    print(
        f"training harness / bare fit: {result['ratio']:.3f} within epochs "
        f"(target >= {TARGET}: {verdict}; {result['harness_steps_per_s']:.2f} "
        f"vs {result['bare_steps_per_s']:.2f} steps/s), "
        f"{result['ratio_with_epoch_ends']:.3f} over the whole run with "
        f"{result['steps_per_epoch']} steps per epoch"
    )
    return result


if __name__ == "__main__":
    main()
