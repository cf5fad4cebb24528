"""What `keras-eca train` costs over a bare `model.fit`.

Both train the same model (same recipe, optimizer, loss and metrics) on the
same `keras_eca.data.training_dataset` batches; the harness adds its
per-epoch `fit` calls, exact backups every `backup_every` steps and after
each epoch, `last.keras` / `best.keras`, CSV and TensorBoard logs and the
progress line. Steps/s are timed by the same callback in both, from the
end of the run's first step (tracing excluded) to the end of its last, so
all that happens between epochs counts; the two alternate `repeats` times
and the median ratio is reported.

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
from keras_eca.training import run as run_lib
from keras_eca.training import schedules

TARGET = 0.97


class StepTimer(keras.callbacks.Callback):
    """Seconds from the end of the run's first step to the end of its last,
    and the steps in between: tracing is excluded, everything between
    epochs (saves, backups, new `fit` calls) included."""

    def __init__(self):
        super().__init__()
        self.first = None
        self.last = None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        else:
            self.last = now
            self.steps += 1

    @property
    def steps_per_second(self):
        return self.steps / (self.last - self.first)


def _arrays(examples, size, classes, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(examples, size, size, 3), dtype=np.uint8)
    labels = np.arange(examples) % classes
    return images, labels


def _bare_fit(model_name, arrays, recipe, epochs, steps, timer):
    source = data_lib.resolve_source(arrays)
    model = build_model(
        model_name,
        input_shape=(recipe.image_size, recipe.image_size, 3),
        classes=source.num_classes,
        classifier_activation=None,
    )
    model.compile(
        optimizer=schedules.build_optimizer(
            recipe, global_batch_size=recipe.batch_size, steps_per_epoch=steps
        ),
        loss=schedules.build_loss(recipe, from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy("accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, "top5"),
        ],
        jit_compile=False,
    )
    # One pipeline for all epochs (as a plain script would write it).
    dataset = data_lib.training_dataset(
        source,
        image_size=recipe.image_size,
        global_batch_size=recipe.batch_size,
        seed=recipe.seed,
        epoch=0,
        steps=steps * epochs,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
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
    """Returns `{"harness_steps_per_s", "bare_steps_per_s", "ratio",
    "ratios", "target"}` (medians over `repeats` alternations)."""
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
    harness, bare, ratios = [], [], []
    for repeat in range(repeats):
        timer = StepTimer()
        _bare_fit(model, arrays, recipe, epochs, steps_per_epoch, timer)
        bare.append(timer.steps_per_second)
        timer = StepTimer()
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
                callbacks=[timer],
                stream=io.StringIO(),
            )
        harness.append(timer.steps_per_second)
        ratios.append(harness[-1] / bare[-1])
        if report:
            report(
                f"repeat {repeat + 1}/{repeats}: bare fit {bare[-1]:.2f} "
                f"steps/s, keras-eca train {harness[-1]:.2f} steps/s, "
                f"ratio {ratios[-1]:.3f}"
            )
    return {
        "model": model,
        "image_size": image_size,
        "batch_size": batch_size,
        "backup_every": backup_every,
        "harness_steps_per_s": statistics.median(harness),
        "bare_steps_per_s": statistics.median(bare),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "target": TARGET,
    }


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
        f"training harness / bare fit: {result['ratio']:.3f} "
        f"(target >= {TARGET}: {verdict}); {result['harness_steps_per_s']:.2f} "
        f"vs {result['bare_steps_per_s']:.2f} steps/s"
    )
    return result


if __name__ == "__main__":
    main()
