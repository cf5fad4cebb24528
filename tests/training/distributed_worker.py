"""Worker for the strategy-equivalence tests; run as a script.

    python distributed_worker.py MODE OUT.npz

MODE `mirrored` (TensorFlow, 2 logical CPUs): the one-device reference,
MirroredStrategy with synchronized BatchNorm and with per-replica
BatchNorm. MODE `multi_worker`: one MultiWorkerMirroredStrategy worker
(TF_CONFIG from the environment), synchronized BatchNorm. MODE `jax`
(KERAS_BACKEND=jax, 2 host devices): DataParallel and one device. Each run
trains the same tiny ECA-ResNet from the same initial weights on the same
batches (`keras_eca.data.training_dataset` on arrays), and OUT.npz gets every run's final weights as `RUN/INDEX`.

Logical devices and collective ops must be configured before TensorFlow
runs an op, hence a fresh process per mode.
"""

import os
import sys
import time

MODE, OUT = sys.argv[1], sys.argv[2]

import tensorflow as tf  # noqa: E402

if MODE == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

from keras_eca.training import make_distribution  # noqa: E402

# The multi-worker strategy first: it sets up collective ops at start-up.
DISTRIBUTED = make_distribution("multi_worker") if MODE == "multi_worker" else None

import keras  # noqa: E402
keras.config.disable_traceback_filtering()
import numpy as np  # noqa: E402

from keras_eca.data import resolve_source  # noqa: E402
from keras_eca.data import training_dataset  # noqa: E402
from keras_eca.layers import EfficientChannelAttention  # noqa: E402
from keras_eca.layers import FoldedBatchNormalization  # noqa: E402
from keras_eca.training import apply_overrides  # noqa: E402
from keras_eca.training import build_loss  # noqa: E402
from keras_eca.training import build_optimizer  # noqa: E402
from keras_eca.training import default_jit_compile  # noqa: E402
from keras_eca.training import get_recipe  # noqa: E402
from keras_eca.training import sync_batchnorm  # noqa: E402

SEED = 1
GLOBAL_BATCH = 8
STEPS = 4
IMAGE = 16
CLASSES = 4
RECIPE = apply_overrides(
    get_recipe("smoke"), ["learning_rate=0.05", f"batch_size={GLOBAL_BATCH}"]
)

keras.utils.set_random_seed(SEED)
tf.config.experimental.enable_op_determinism()

DEVICES = {}
_rng = np.random.default_rng(SEED)
# Arrays through the project's own training pipeline: shuffle, stateless
# RandomResizedCrop + flip keyed by (seed, epoch, index), replica batches.
SOURCE = resolve_source(
    (
        _rng.integers(0, 256, size=(GLOBAL_BATCH * STEPS, 24, 24, 3), dtype="uint8"),
        _rng.integers(0, CLASSES, size=GLOBAL_BATCH * STEPS).astype("int32"),
    )
)


def dataset_fn(input_pipeline, num_replicas):
    return training_dataset(
        SOURCE,
        image_size=IMAGE,
        global_batch_size=GLOBAL_BATCH,
        seed=SEED,
        epoch=0,
        steps=STEPS,
        num_replicas=num_replicas,
        input_pipeline=input_pipeline,
        scale=RECIPE.crop_scale,
        ratio=RECIPE.crop_ratio,
        flip=RECIPE.flip,
    )


def replica_order(distribution, steps=3):
    """The replica batch index each local replica gets, step by step."""

    def markers(input_pipeline, num_replicas):
        def batch_index(k):
            return tf.fill([GLOBAL_BATCH // num_replicas], k)

        stream = tf.data.Dataset.range(steps * num_replicas).map(batch_index)
        index, pipelines = input_pipeline
        per_pipeline = num_replicas // pipelines
        return stream.filter(
            lambda b: (b[0] % num_replicas) // per_pipeline == index
        )

    order = []
    for step, batch in zip(range(steps), distribution.distribute_dataset(markers)):
        local = distribution.strategy.experimental_local_results(batch)
        order.append([int(replica.numpy()[0]) for replica in local])
    return [np.array(order)]


def initial_weights():
    # Built outside every strategy, once: each run starts from these.
    keras.utils.set_random_seed(SEED)
    return tiny_model().get_weights()


def tiny_model():
    # The building blocks of the ECA-ResNets (a plain BatchNorm, and the
    # FoldedBatchNormalization + ECA pair of every residual branch), small
    # enough that three runs take seconds.
    inputs = keras.Input((IMAGE, IMAGE, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = FoldedBatchNormalization(name="bn2")(x)
    x = EfficientChannelAttention(kernel_size=3)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train(distribution, weights, synchronized):
    keras.utils.set_random_seed(SEED)
    with distribution.scope():
        model = tiny_model()
        model.set_weights(weights)
        if synchronized:
            model = sync_batchnorm(model)
        model.compile(
            optimizer=build_optimizer(
                RECIPE, global_batch_size=GLOBAL_BATCH, steps_per_epoch=STEPS
            ),
            loss=build_loss(RECIPE),
            # JAX compiles (op-by-op would take minutes); TF on CPU does not.
            jit_compile=default_jit_compile(distribution),
        )
        model.fit(
            distribution.distribute_dataset(dataset_fn),
            epochs=1,
            steps_per_epoch=STEPS,
            verbose=0,
        )
        if distribution.backend == "jax":
            # Devices holding the (replicated) weights: 2 under DataParallel.
            DEVICES[distribution.name] = len(
                model.trainable_variables[0].value.sharding.device_set
            )
        return model.get_weights()


def main():
    started = time.perf_counter()
    weights = initial_weights()
    runs = {"initial": weights}
    if MODE == "mirrored":
        runs["one_device"] = train(make_distribution("one_device"), weights, False)
        mirrored = make_distribution("mirrored")
        assert mirrored.num_replicas == 2, mirrored
        runs["mirrored_sync"] = train(mirrored, weights, True)
        runs["mirrored_plain"] = train(mirrored, weights, False)
        runs["order"] = replica_order(mirrored)
    elif MODE == "multi_worker":
        assert DISTRIBUTED.num_replicas == 2, DISTRIBUTED
        runs["multi_worker"] = train(DISTRIBUTED, weights, True)
        runs["order"] = replica_order(DISTRIBUTED)
        runs["worker"] = [
            np.array([DISTRIBUTED.worker_index, DISTRIBUTED.is_chief,
                      DISTRIBUTED.num_input_pipelines])
        ]
    elif MODE == "jax":
        parallel = make_distribution("auto")
        assert parallel.name == "data_parallel" and parallel.num_replicas == 2
        runs["data_parallel"] = train(parallel, weights, True)
        runs["one_device"] = train(make_distribution("one_device"), weights, False)
        runs["devices"] = [np.array([DEVICES["data_parallel"], DEVICES["one_device"]])]
    else:
        raise SystemExit(f"unknown mode {MODE!r}")
    np.savez(
        OUT,
        seconds=time.perf_counter() - started,
        **{f"{run}/{i}": w for run, ws in runs.items() for i, w in enumerate(ws)},
    )


if __name__ == "__main__":
    main()
