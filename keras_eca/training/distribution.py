"""Strategies: one device, mirrored GPUs, several workers, a TPU, JAX.

`make_distribution(strategy)` turns the `--strategy` flag into a
`Distribution`: on TensorFlow a `tf.distribute` strategy, on JAX a
`keras.distribution.DataParallel` over the local devices. Build, compile
and `fit` the model inside `distribution.scope()`, and feed `fit` with
`distribution.distribute_dataset(dataset_fn)`, where

    dataset_fn(input_pipeline=(i, n), num_replicas=R) -> tf.data.Dataset

yields *replica batches* (`global_batch // R` examples) in the order of
`keras_eca.data.training_dataset`: global step `j` is replica batches
`j * R .. j * R + R - 1` of one stream, and pipeline `i` of `n` yields,
step by step, the `R / n` batches of its own replicas. TensorFlow hands
pipeline `i`'s `k`-th batch of a step to its `k`-th local replica, so
replica `r` of step `j` trains on replica batch `j * R + r`, and the
workers' shards of a step are exactly the global batch one process
would draw. On JAX, Keras splits each global batch across the devices
itself, so `dataset_fn` gets `num_replicas=1`.

BatchNorm: per replica by default (each replica normalises its own
`global_batch / R` images); `sync_batchnorm(model)` makes every
BatchNormalization layer reduce its statistics over all replicas, which
gives the one-device result for any replica count. Under JAX's
`DataParallel` the statistics are already global (one SPMD program over
the global batch).
"""

import contextlib
import glob
import json
import os

import keras

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")

_TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


class Distribution:
    """Where a run trains: the strategy and its replicas and workers.

    Made by `make_distribution`; read its attributes.

    Attributes:
        name: `"one_device"`, `"mirrored"`, `"multi_worker"`, `"tpu"` or
            `"data_parallel"` (JAX).
        backend: the Keras backend it was made for.
        strategy: the `tf.distribute.Strategy`, or `None` off TensorFlow.
        keras_distribution: the `keras.distribution.DataParallel` (JAX),
            else `None`.
        device_kind: `"cpu"`, `"gpu"` or `"tpu"`.
        devices: this process's devices, as strings.
        num_replicas: replicas in sync (devices over all workers). The
            global batch must be a multiple of it.
        num_workers: processes training together (1 but for
            multi_worker).
        worker_index: this process's index among them (the chief, if the
            cluster names one, is 0).
        num_input_pipelines: input pipelines (one per worker).
        input_pipeline_index: this process's pipeline (= `worker_index`;
            on a TPU pod the one client builds every host's pipeline).
        is_chief: whether this process writes the run's files.
    """

    def __init__(
        self,
        *,
        name,
        backend,
        device_kind,
        devices,
        num_replicas,
        strategy=None,
        keras_distribution=None,
        num_workers=1,
        worker_index=0,
        is_chief=True,
    ):
        self.name = name
        self.backend = backend
        self.strategy = strategy
        self.keras_distribution = keras_distribution
        self.device_kind = device_kind
        self.devices = tuple(devices)
        self.num_replicas = int(num_replicas)
        self.num_workers = int(num_workers)
        self.worker_index = int(worker_index)
        self.num_input_pipelines = self.num_workers
        self.input_pipeline_index = self.worker_index
        self.is_chief = bool(is_chief)

    def __repr__(self):
        return f"<Distribution {self.describe()}>"

    def describe(self):
        """One line, e.g. `mirrored: 2 replicas on 2 gpu devices`."""
        text = (
            f"{self.name}: {self.num_replicas} replica"
            f"{'s' if self.num_replicas != 1 else ''} on "
            f"{len(self.devices)} {self.device_kind} device"
            f"{'s' if len(self.devices) != 1 else ''}"
        )
        if self.num_workers > 1:
            text += (
                f" per worker, worker {self.worker_index} of "
                f"{self.num_workers}{' (chief)' if self.is_chief else ''}"
            )
        return text

    @contextlib.contextmanager
    def scope(self):
        """Build, compile and fit the model inside this context.

        TensorFlow: the strategy's scope (variables are created mirrored).
        JAX: `keras.distribution.set_distribution(DataParallel)` for the
        duration (restored on exit); `fit` must run inside it too, since
        Keras shards each batch when it reads the global distribution.
        """
        if self.strategy is not None:
            with self.strategy.scope():
                yield self
        elif self.keras_distribution is not None:
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.keras_distribution)
            try:
                yield self
            finally:
                keras.distribution.set_distribution(previous)
        else:
            yield self

    def replica_batch_size(self, global_batch_size):
        """`global_batch_size // num_replicas`; an error if it does not
        divide."""
        if isinstance(global_batch_size, bool) or not isinstance(
            global_batch_size, int
        ) or global_batch_size <= 0:
            raise ValueError(
                "global_batch_size must be a positive integer. Received: "
                f"global_batch_size={global_batch_size!r}"
            )
        if global_batch_size % self.num_replicas:
            raise ValueError(
                f"The global batch size must be a multiple of the "
                f"{self.num_replicas} replicas ({self.describe()}). "
                f"Received: global_batch_size={global_batch_size}"
            )
        return global_batch_size // self.num_replicas

    def distribute_dataset(self, dataset_fn):
        """The input `fit` should get, from a per-pipeline dataset function.

        Args:
            dataset_fn: callable `dataset_fn(input_pipeline=(i, n),
                num_replicas=R)` returning a `tf.data.Dataset` of replica
                batches (see the module docstring).

        Returns:
            On TensorFlow, a `tf.distribute` distributed dataset built with
            `strategy.distribute_datasets_from_function` (`i`, `n` from its
            `InputContext`, `R = num_replicas`); elsewhere the dataset of
            `dataset_fn(input_pipeline=(0, 1), num_replicas=1)`, global
            batches that Keras splits across the devices.
        """
        if not callable(dataset_fn):
            raise TypeError(
                "dataset_fn must be callable as dataset_fn(input_pipeline=(i, "
                f"n), num_replicas=R). Received: dataset_fn={dataset_fn!r}"
            )
        if self.strategy is None:
            return _checked_dataset(
                dataset_fn(input_pipeline=(0, 1), num_replicas=1)
            )
        replicas = self.num_replicas

        def per_pipeline(context):
            pipelines = context.num_input_pipelines
            if replicas % pipelines:
                raise ValueError(
                    f"{replicas} replicas do not split over {pipelines} input "
                    "pipelines."
                )
            return _checked_dataset(
                dataset_fn(
                    input_pipeline=(context.input_pipeline_id, pipelines),
                    num_replicas=replicas,
                )
            )

        return self.strategy.distribute_datasets_from_function(per_pipeline)


def _checked_dataset(dataset):
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "dataset_fn must return a tf.data.Dataset. Received: "
            f"{type(dataset)!r}"
        )
    return dataset


def make_distribution(strategy="auto", *, tpu=None, devices=None):
    """The `Distribution` for a `--strategy` flag.

    Args:
        strategy: one of `"auto"` (TensorFlow: all local GPUs, mirrored if
            more than one, else one device; JAX: `DataParallel` over the
            local devices when there are several), `"one_device"`,
            `"mirrored"` (TensorFlow: the local GPUs, else all logical
            CPUs; JAX: `DataParallel`), `"multi_worker"` (TensorFlow's
            `MultiWorkerMirroredStrategy`; needs `TF_CONFIG`, and must be
            made before TensorFlow runs any op) or `"tpu"` (TensorFlow's
            `TPUStrategy`).
        tpu: for `"tpu"`: the resolver address (`"grpc://10.0.0.2:8470"`,
            a Cloud TPU name, or `"local"` on a TPU VM). Defaults to
            `$TPU_NAME`, or `"local"` on a TPU VM; an error elsewhere.
        devices: for `"one_device"` (one) and `"mirrored"`: device names
            such as `["/gpu:0", "/gpu:1"]` (TensorFlow) or `["cpu:0"]`
            (JAX). Defaults as above.

    Returns:
        A `Distribution`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {strategy!r}. Valid strategies: "
            f"{', '.join(STRATEGIES)}"
        )
    if tpu is not None and strategy != "tpu":
        raise ValueError(
            "tpu= is the TPU resolver address of strategy='tpu'. Received: "
            f"tpu={tpu!r} with strategy={strategy!r}"
        )
    if tpu is not None and (not isinstance(tpu, str) or not tpu.strip()):
        raise ValueError(f"tpu must be a non-empty address. Received: tpu={tpu!r}")
    if devices is not None:
        if strategy not in ("one_device", "mirrored"):
            raise ValueError(
                "devices= applies to strategy='one_device' or 'mirrored'. "
                f"Received: devices={devices!r} with strategy={strategy!r}"
            )
        if isinstance(devices, str) or not devices or not all(
            isinstance(d, str) for d in devices
        ):
            raise ValueError(
                "devices must be a non-empty list of device names. Received: "
                f"devices={devices!r}"
            )
        devices = list(devices)
        if strategy == "one_device" and len(devices) != 1:
            raise ValueError(
                "strategy='one_device' takes one device. Received: "
                f"devices={devices!r}"
            )
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_distribution(strategy, tpu, devices)
    if backend == "jax":
        return _jax_distribution(strategy, devices)
    return _single_device_distribution(strategy, backend)


# --- TensorFlow ------------------------------------------------------------


def _device_kind(device):
    kind = device.upper().rsplit("/", 1)[-1].replace("DEVICE:", "")
    for name in ("TPU", "GPU", "CPU"):
        if kind.startswith(name):
            return name.lower()
    raise ValueError(f"Cannot tell the kind of device {device!r}")


def _from_tf_strategy(name, strategy, **workers):
    local = tuple(strategy.extended.worker_devices)
    return Distribution(
        name=name,
        backend="tensorflow",
        strategy=strategy,
        device_kind=_device_kind(local[0]),
        devices=local,
        num_replicas=strategy.num_replicas_in_sync,
        **workers,
    )


def _tensorflow_distribution(strategy, tpu, devices):
    import tensorflow as tf

    if strategy == "multi_worker":
        return _multi_worker()
    if strategy == "tpu":
        return _tpu(tpu)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if strategy == "auto":
        if len(gpus) > 1:
            return _from_tf_strategy(
                "mirrored", tf.distribute.MirroredStrategy(devices=gpus)
            )
        device = gpus[0] if gpus else "/cpu:0"
        return _from_tf_strategy(
            "one_device", tf.distribute.OneDeviceStrategy(device)
        )
    if strategy == "one_device":
        device = devices[0] if devices else (gpus[0] if gpus else "/cpu:0")
        return _from_tf_strategy(
            "one_device", tf.distribute.OneDeviceStrategy(device)
        )
    if devices is None:
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return _from_tf_strategy(
        "mirrored", tf.distribute.MirroredStrategy(devices=devices)
    )


def _read_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "strategy='multi_worker' needs the TF_CONFIG environment variable "
            "(the cluster and this process's task), one per worker, e.g. "
            f"{_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG unset"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, task_index = task["type"], int(task["index"])
        members = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"TF_CONFIG must be JSON like {_TF_CONFIG_EXAMPLE}. Received: "
            f"TF_CONFIG={text!r} ({error})"
        ) from None
    if task_type not in ("chief", "worker") or not 0 <= task_index < len(
        cluster.get(task_type, [])
    ):
        raise ValueError(
            "TF_CONFIG's task must be a 'chief' or 'worker' listed in its "
            f"cluster. Received: TF_CONFIG={text!r}"
        )
    # TensorFlow's task ids: the chief first, then the workers.
    has_chief = bool(cluster.get("chief"))
    index = task_index if task_type == "chief" else task_index + has_chief
    is_chief = task_type == "chief" or (not has_chief and task_index == 0)
    return len(members), index, is_chief


def _keras_reducing(strategy_class):
    """`strategy_class` with a `reduce` that Keras 3.15's `fit` can call.

    Two calls Keras makes under several workers fail in TensorFlow's
    `Strategy.reduce` (keras-team/keras#20585): the first batch, an
    `(x, y)` nest, is reduced before the model is built (`reduce` takes a
    single value; TensorFlow notes nests as future work), and every
    step's logs, scalars, are reduced with `axis=0`, which a scalar does
    not have. This `reduce` maps over nests and reduces a scalar across the
    replicas only, which is what both calls mean.
    """

    class KerasReducing(strategy_class):
        def reduce(self, reduce_op, value, axis):
            import tensorflow as tf

            parent = super()

            def one(v):
                local = self.experimental_local_results(v)[0]
                scalar = getattr(local, "shape", None) is not None and (
                    local.shape.rank == 0
                )
                return parent.reduce(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    KerasReducing.__name__ = strategy_class.__name__
    KerasReducing.__qualname__ = strategy_class.__qualname__
    return KerasReducing


def _multi_worker():
    import tensorflow as tf

    num_workers, index, is_chief = _read_tf_config()
    try:
        strategy = _keras_reducing(tf.distribute.MultiWorkerMirroredStrategy)()
    except RuntimeError as error:
        raise RuntimeError(
            "strategy='multi_worker' must be made before TensorFlow runs any "
            "op (it configures collective ops at start-up): call "
            f"make_distribution first. TensorFlow said: {error}"
        ) from error
    return _from_tf_strategy(
        "multi_worker",
        strategy,
        num_workers=num_workers,
        worker_index=index,
        is_chief=is_chief,
    )


# Device files of a TPU VM (v2-v4: /dev/accel*, v5 and later: vfio).
_TPU_VM_DEVICES = ("/dev/accel*", "/dev/vfio/[0-9]*")


def _on_tpu_vm():
    return any(glob.glob(pattern) for pattern in _TPU_VM_DEVICES)


def _tpu(address):
    import tensorflow as tf

    if address is None:
        address = os.environ.get("TPU_NAME") or ("local" if _on_tpu_vm() else None)
    if address is None:
        raise ValueError(
            "strategy='tpu' needs the TPU's address: pass tpu=ADDRESS "
            "(--strategy tpu --tpu grpc://10.0.0.2:8470, or a Cloud TPU "
            "name) or set TPU_NAME; only on a TPU VM does it default to "
            "'local'. Received: tpu=None, and this machine is no TPU VM"
        )
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    # One client drives every host; is_chief stays with it.
    return _from_tf_strategy("tpu", tf.distribute.TPUStrategy(resolver))


# --- JAX and the rest -------------------------------------------------------


def _jax_distribution(strategy, devices):
    import jax

    if strategy in ("multi_worker", "tpu"):
        raise ValueError(
            f"strategy={strategy!r} is a TensorFlow strategy; on the JAX "
            "backend use 'auto' or 'mirrored' (keras.distribution."
            "DataParallel over this process's devices) or 'one_device'"
        )
    local = jax.local_devices()
    kind = local[0].platform
    kind = "gpu" if kind in ("gpu", "cuda", "rocm") else kind
    if devices is None:
        devices = [f"{kind}:{d.id}" for d in local]
    if strategy == "one_device" or (strategy == "auto" and len(devices) == 1):
        return Distribution(
            name="one_device",
            backend="jax",
            device_kind=kind,
            devices=devices[:1],
            num_replicas=1,
        )
    return Distribution(
        name="data_parallel",
        backend="jax",
        keras_distribution=keras.distribution.DataParallel(devices=devices),
        device_kind=kind,
        devices=devices,
        num_replicas=len(devices),
    )


def _single_device_distribution(strategy, backend):
    if strategy not in ("auto", "one_device"):
        raise ValueError(
            f"strategy={strategy!r} needs the TensorFlow (or, for 'mirrored', "
            f"the JAX) backend; the {backend} backend trains on one device. "
            "Valid here: auto, one_device"
        )
    kind = "cpu"
    if backend == "torch":
        import torch

        kind = "gpu" if torch.cuda.is_available() else "cpu"
    return Distribution(
        name="one_device",
        backend=backend,
        device_kind=kind,
        devices=[f"{kind}:0"],
        num_replicas=1,
    )


# --- models and defaults -----------------------------------------------------


def sync_batchnorm(model, synchronized=True):
    """A copy of `model` whose BatchNormalization layers are synchronized.

    Every `keras.layers.BatchNormalization` (subclasses such as
    `keras_eca.layers.FoldedBatchNormalization` included, nested models
    too) gets `synchronized=True`: under a `tf.distribute` strategy its
    batch mean and variance are reduced over all replicas, so small
    per-replica batches train as the global batch would. Weights, names
    and dtype policies are those of `model`. Call it inside
    `distribution.scope()`. `synchronized=False` undoes it, e.g. before
    saving a `.keras` for a backend without synchronized BatchNorm.

    Off TensorFlow (where Keras refuses `synchronized=True`) it returns
    `model` itself: under JAX's `DataParallel` the statistics are already
    those of the global batch.

    Args:
        model: a functional or sequential `keras.Model`.
        synchronized: bool. Defaults to `True`.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"sync_batchnorm expects a keras.Model. Received: {model!r}")
    if not isinstance(synchronized, bool):
        raise TypeError(
            f"synchronized must be a bool. Received: synchronized={synchronized!r}"
        )
    if keras.backend.backend() != "tensorflow":
        return model

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = synchronized
        return layer.__class__.from_config(config)

    # Containers (nested models) take the global policy when rebuilt.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(model.dtype_policy)
    try:
        copy = keras.models.clone_model(
            model,
            input_tensors=_same_inputs(model),
            clone_function=clone,
            recursive=True,
        )
    except ValueError as error:
        raise TypeError(
            "sync_batchnorm needs a functional or sequential model (a "
            f"subclassed model cannot be cloned). Received: {model!r} ({error})"
        ) from None
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _same_inputs(model):
    """New inputs named as `model`'s (clone_model would rename them), so
    exported signatures keep their input names."""
    if not isinstance(model, keras.Sequential) and hasattr(model, "inputs"):
        layers = {
            id(layer.output): layer
            for layer in model.layers
            if isinstance(layer, keras.layers.InputLayer)
        }
        inputs = []
        for tensor in keras.tree.flatten(model.input):
            layer = layers.get(id(tensor))
            if layer is None:
                return None
            inputs.append(
                keras.Input(
                    batch_shape=layer.batch_shape, dtype=layer.dtype,
                    name=layer.name,
                )
            )
        return keras.tree.pack_sequence_as(model.input, inputs)
    return None


def _check_distribution(distribution):
    if not isinstance(distribution, Distribution):
        raise TypeError(
            "Expected a keras_eca.training.Distribution. Received: "
            f"{distribution!r}"
        )


def default_precision(distribution):
    """`"mixed_float16"` on GPUs, `"mixed_bfloat16"` on TPUs, `"float32"`
    on CPUs."""
    _check_distribution(distribution)
    return {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(
        distribution.device_kind, "float32"
    )


def default_jit_compile(distribution):
    """XLA on accelerators, off on CPU; on JAX always on (JAX without jit
    runs op by op); on PyTorch off (`torch.compile` is another matter)."""
    _check_distribution(distribution)
    if distribution.backend == "jax":
        return True
    if distribution.backend == "torch":
        return False
    return distribution.device_kind in ("gpu", "tpu")


_PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_precision(setting, distribution):
    """A recipe's `mixed_precision` with `"auto"` resolved."""
    if setting not in _PRECISIONS:
        raise ValueError(
            f"mixed_precision must be one of {', '.join(_PRECISIONS)}. "
            f"Received: mixed_precision={setting!r}"
        )
    return default_precision(distribution) if setting == "auto" else setting


def resolve_jit_compile(setting, distribution):
    """A recipe's `jit_compile` with `"auto"` resolved to a bool."""
    if setting == "auto":
        return default_jit_compile(distribution)
    if not isinstance(setting, bool):
        raise ValueError(
            "jit_compile must be 'auto', True or False. Received: "
            f"jit_compile={setting!r}"
        )
    return setting
