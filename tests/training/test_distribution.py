"""Strategies: flags, defaults, synchronized BatchNorm, and equivalence runs.

The equivalence runs need logical devices or collective ops configured
before TensorFlow runs an op, so each runs `distributed_worker.py` in a
fresh process. Relative differences are per variable,
max|w - w_ref| / max|w_ref|, maximised over every weight (moving
statistics included), after 4 steps of fit (global batch 8,
`keras_eca.data.training_dataset` on arrays) from the same initial weights.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import keras
from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import FoldedBatchNormalization
from keras_eca.training import Distribution
from keras_eca.training import default_jit_compile
from keras_eca.training import default_precision
from keras_eca.training import make_distribution
from keras_eca.training import resolve_jit_compile
from keras_eca.training import resolve_precision
from keras_eca.training import sync_batchnorm
from tests.training.ports import free_ports

tensorflow_only = pytest.mark.tensorflow_only
WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")
REPO = pathlib.Path(__file__).resolve().parents[2]
# float32 rounding in another reduction order; measured <= 9.5e-7.
TOLERANCE = 1e-5


def _fake(kind, backend="tensorflow"):
    return Distribution(
        name="one_device", backend=backend, device_kind=kind,
        devices=[f"{kind}:0"], num_replicas=1,
    )


# --- flags -----------------------------------------------------------------


@tensorflow_only
def test_auto_on_this_cpu_is_one_cpu_device():
    distribution = make_distribution("auto")
    assert distribution.name == "one_device"
    assert distribution.device_kind == "cpu"
    assert distribution.num_replicas == 1
    pipeline = (distribution.input_pipeline_index, distribution.num_input_pipelines)
    assert pipeline == (0, 1)
    assert distribution.is_chief and distribution.worker_index == 0
    import tensorflow as tf

    assert isinstance(distribution.strategy, tf.distribute.OneDeviceStrategy)
    assert distribution.describe() == "one_device: 1 replica on 1 cpu device"


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"strategy": "horovod"}, r"'horovod'.*auto, one_device, mirrored"),
        ({"strategy": "mirrored", "tpu": "grpc://1.2.3.4:8470"}, r"tpu=.*mirrored"),
        ({"strategy": "tpu", "tpu": ""}, r"tpu=''"),
        ({"strategy": "auto", "devices": ["/cpu:0"]}, r"devices=.*'auto'"),
        ({"strategy": "one_device", "devices": ["/cpu:0", "/cpu:1"]}, r"one device"),
        ({"strategy": "mirrored", "devices": "/cpu:0"}, r"devices='/cpu:0'"),
        ({"strategy": "mirrored", "devices": []}, r"devices=\[\]"),
    ],
)
def test_bad_flags(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_distribution(**kwargs)


@tensorflow_only
def test_multi_worker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG.*cluster.*unset"):
        make_distribution("multi_worker")


@tensorflow_only
@pytest.mark.parametrize(
    "config, pattern",
    [
        ("not json", r"JSON like"),
        (json.dumps({"cluster": {"worker": ["localhost:1"]}}), r"JSON like"),
        (
            json.dumps({"cluster": {"worker": ["localhost:1"]},
                        "task": {"type": "worker", "index": 3}}),
            r"listed in its cluster",
        ),
        (
            json.dumps({"cluster": {"worker": ["localhost:1"], "ps": ["h:2"]},
                        "task": {"type": "ps", "index": 0}}),
            r"'chief' or 'worker'",
        ),
    ],
)
def test_multi_worker_with_a_bad_tf_config(monkeypatch, config, pattern):
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(ValueError, match=pattern):
        make_distribution("multi_worker")


class _FakeResolver:
    made = []

    def __init__(self, tpu=None):
        self.tpu = tpu
        _FakeResolver.made.append(self)


class _FakeTPUStrategy:
    num_replicas_in_sync = 8

    def __init__(self, resolver):
        self.resolver = resolver
        devices = [f"/job:worker/replica:0/task:0/device:TPU:{i}" for i in range(8)]
        self.extended = type("Extended", (), {"worker_devices": tuple(devices)})()


@pytest.fixture
def fake_tpu(monkeypatch):
    """TensorFlow's TPU calls replaced (no TPU here); ours run as they are."""
    import tensorflow as tf

    calls = []
    _FakeResolver.made = []
    monkeypatch.setattr(
        tf.distribute.cluster_resolver, "TPUClusterResolver", _FakeResolver
    )
    monkeypatch.setattr(
        tf.config, "experimental_connect_to_cluster",
        lambda r: calls.append(("connect", r)),
    )
    monkeypatch.setattr(
        tf.tpu.experimental, "initialize_tpu_system",
        lambda r: calls.append(("init", r)),
    )
    monkeypatch.setattr(tf.distribute, "TPUStrategy", _FakeTPUStrategy)
    monkeypatch.delenv("TPU_NAME", raising=False)
    return calls


@tensorflow_only
def test_tpu_resolver_gets_the_address(fake_tpu):
    distribution = make_distribution("tpu", tpu="grpc://10.0.0.2:8470")
    (resolver,) = _FakeResolver.made
    assert resolver.tpu == "grpc://10.0.0.2:8470"
    assert fake_tpu == [("connect", resolver), ("init", resolver)]
    assert distribution.strategy.resolver is resolver
    assert distribution.name == "tpu" and distribution.device_kind == "tpu"
    assert distribution.num_replicas == 8 and distribution.is_chief
    assert default_precision(distribution) == "mixed_bfloat16"
    assert default_jit_compile(distribution) is True


@tensorflow_only
def test_tpu_address_from_tpu_name(fake_tpu, monkeypatch):
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    make_distribution("tpu")
    assert [r.tpu for r in _FakeResolver.made] == ["my-tpu"]


@tensorflow_only
def test_tpu_without_an_address_off_a_tpu_vm(fake_tpu):
    # No /dev/accel* or /dev/vfio here: this machine is no TPU VM.
    with pytest.raises(ValueError, match=r"tpu=ADDRESS.*TPU_NAME.*no TPU VM"):
        make_distribution("tpu")
    assert _FakeResolver.made == [] and fake_tpu == []


# --- defaults --------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, precision, jit",
    [("cpu", "float32", False), ("gpu", "mixed_float16", True),
     ("tpu", "mixed_bfloat16", True)],
)
def test_precision_and_xla_defaults(kind, precision, jit):
    distribution = _fake(kind)
    assert default_precision(distribution) == precision
    assert default_jit_compile(distribution) is jit
    assert resolve_precision("auto", distribution) == precision
    assert resolve_precision("mixed_bfloat16", distribution) == "mixed_bfloat16"
    assert resolve_jit_compile("auto", distribution) is jit
    assert resolve_jit_compile(False, distribution) is False


def test_jit_defaults_off_tensorflow():
    # JAX without jit runs op by op; torch.compile stays opt-in.
    assert default_jit_compile(_fake("cpu", backend="jax")) is True
    assert default_jit_compile(_fake("gpu", backend="torch")) is False


def test_bad_defaults_arguments():
    with pytest.raises(ValueError, match="mixed_precision='float16'"):
        resolve_precision("float16", _fake("cpu"))
    with pytest.raises(ValueError, match="jit_compile='yes'"):
        resolve_jit_compile("yes", _fake("cpu"))
    with pytest.raises(TypeError, match="Distribution"):
        default_precision("gpu")


def test_replica_batch_size():
    distribution = Distribution(
        name="mirrored", backend="tensorflow", device_kind="gpu",
        devices=["gpu:0", "gpu:1", "gpu:2", "gpu:3"], num_replicas=4,
    )
    assert distribution.replica_batch_size(256) == 64
    with pytest.raises(ValueError, match="multiple of the 4 replicas.*=258"):
        distribution.replica_batch_size(258)
    with pytest.raises(ValueError, match="global_batch_size=0"):
        distribution.replica_batch_size(0)


@tensorflow_only
def test_distribute_dataset_checks_the_function():
    distribution = make_distribution("one_device")
    with pytest.raises(TypeError, match="callable"):
        distribution.distribute_dataset([1, 2])
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        iter(distribution.distribute_dataset(lambda input_pipeline, num_replicas: [1]))


@tensorflow_only
def test_one_device_input_is_the_pipelines_dataset():
    import tensorflow as tf

    seen = []

    def dataset_fn(input_pipeline, num_replicas):
        seen.append((input_pipeline, num_replicas))
        return tf.data.Dataset.range(6).batch(2)

    distribution = make_distribution("one_device")
    batches = [b.numpy().tolist() for b in distribution.distribute_dataset(dataset_fn)]
    assert batches == [[0, 1], [2, 3], [4, 5]]
    assert seen == [((0, 1), 1)]


# --- synchronized BatchNorm ------------------------------------------------


def _model_with_batchnorms():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.8, name="plain_bn")(x)
    x = FoldedBatchNormalization(name="folded_bn")(x)
    x = EfficientChannelAttention(kernel_size=3)(x)
    inner = keras.Sequential(
        [keras.Input((8, 8, 4)), keras.layers.BatchNormalization(name="inner_bn")],
        name="inner",
    )
    x = inner(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)
    return keras.Model(inputs, outputs, name="net")


def _batchnorms(model):
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_batchnorms(layer))
        elif isinstance(layer, keras.layers.BatchNormalization):
            found[layer.name] = layer
    return found


@tensorflow_only
def test_sync_batchnorm_converts_every_batchnorm(tmp_path):
    model = _model_with_batchnorms()
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    model(x, training=True)  # moving statistics away from their initial values
    synced = sync_batchnorm(model)

    assert synced is not model and synced.name == "net"
    assert [layer.name for layer in synced.layers] == [
        layer.name for layer in model.layers
    ]  # the input layer's too (exported signatures use it)
    before, after = _batchnorms(model), _batchnorms(synced)
    assert sorted(after) == ["folded_bn", "inner_bn", "plain_bn"]
    assert all(layer.synchronized for layer in after.values())
    assert not any(layer.synchronized for layer in before.values())
    assert type(after["folded_bn"]) is FoldedBatchNormalization
    assert after["plain_bn"].momentum == 0.8
    assert [w.path for w in synced.weights] == [w.path for w in model.weights]
    for a, b in zip(synced.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # One replica: the same function in training and inference.
    for training in (False, True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(synced(x, training=training)),
            keras.ops.convert_to_numpy(model(x, training=training)),
            rtol=1e-5, atol=1e-6,
        )
    # It saves, reloads, and converts back.
    synced.save(tmp_path / "synced.keras")
    reloaded = keras.saving.load_model(tmp_path / "synced.keras")
    assert all(layer.synchronized for layer in _batchnorms(reloaded).values())
    plain = sync_batchnorm(synced, synchronized=False)
    assert not any(layer.synchronized for layer in _batchnorms(plain).values())


@tensorflow_only
def test_sync_batchnorm_keeps_the_dtype_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = _model_with_batchnorms()
    keras.config.set_dtype_policy("float32")
    synced = sync_batchnorm(model)
    policies = {layer.dtype_policy.name for layer in synced.layers[1:]}
    assert policies == {"mixed_bfloat16"}


def test_sync_batchnorm_arguments():
    with pytest.raises(TypeError, match="keras.Model"):
        sync_batchnorm(keras.layers.BatchNormalization())
    with pytest.raises(TypeError, match="synchronized"):
        sync_batchnorm(_model_with_batchnorms(), synchronized="yes")


@tensorflow_only
def test_sync_batchnorm_refuses_a_subclassed_model():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(TypeError, match="functional or sequential"):
        sync_batchnorm(model)


# --- equivalence runs (subprocesses) ---------------------------------------


def _env(backend, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "XLA_FLAGS")}
    env.update(
        KERAS_BACKEND=backend,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    return env


def _start(mode, out, env):
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(process, out, timeout=300):
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        log, _ = process.communicate()
    assert process.returncode == 0, log[-4000:]
    data = np.load(out)
    runs = {}
    for key in data.files:
        if "/" in key:
            run, index = key.split("/")
            runs.setdefault(run, {})[int(index)] = data[key]
    return {run: [values[i] for i in sorted(values)] for run, values in runs.items()}


def _relative_difference(weights, reference):
    return max(
        float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))
        for a, b in zip(weights, reference, strict=True)
    )


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "runs.npz"
    return _finish(_start("mirrored", out, _env("tensorflow")), out)


@tensorflow_only
def test_mirrored_replica_r_of_step_j_gets_replica_batch_j_times_r(mirrored_runs):
    (order,) = mirrored_runs["order"]
    assert order.tolist() == [[0, 1], [2, 3], [4, 5]]


@tensorflow_only
def test_mirrored_with_sync_batchnorm_equals_one_device(mirrored_runs):
    reference = mirrored_runs["one_device"]
    assert _relative_difference(mirrored_runs["initial"], reference) > 0.1  # it trained
    # Measured: 7.0e-7.
    assert _relative_difference(mirrored_runs["mirrored_sync"], reference) < TOLERANCE


@tensorflow_only
def test_mirrored_with_per_replica_batchnorm_drifts(mirrored_runs):
    # Each replica normalises 4 images instead of 8. Measured: 0.27.
    drift = _relative_difference(
        mirrored_runs["mirrored_plain"], mirrored_runs["one_device"]
    )
    assert drift > 100 * TOLERANCE


@tensorflow_only
def test_two_workers_equal_each_other_and_one_process(tmp_path, mirrored_runs):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = _env("tensorflow", TF_CONFIG=json.dumps(config))
        processes.append(_start("multi_worker", tmp_path / f"{index}.npz", env))
    first, second = (
        _finish(p, tmp_path / f"{i}.npz") for i, p in enumerate(processes)
    )
    # Worker index, is_chief, input pipelines.
    assert first["worker"][0].tolist() == [0, 1, 2]
    assert second["worker"][0].tolist() == [1, 0, 2]
    # Worker i's replica (global replica i) gets replica batch 2 * j + i.
    assert first["order"][0].tolist() == [[0], [2], [4]]
    assert second["order"][0].tolist() == [[1], [3], [5]]
    # The all-reduce hands both workers the same sums: bitwise equal.
    for a, b in zip(first["multi_worker"], second["multi_worker"], strict=True):
        np.testing.assert_array_equal(a, b)
    # Measured: 7.0e-7 (bitwise equal to the two-replica mirrored run).
    reference = mirrored_runs["one_device"]
    assert _relative_difference(first["multi_worker"], reference) < TOLERANCE


@pytest.mark.slow
def test_jax_data_parallel_equals_one_device(tmp_path):
    out = tmp_path / "jax.npz"
    env = _env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    runs = _finish(_start("jax", out, env), out)
    # Weights live on both host devices under DataParallel, on one without.
    assert runs["devices"][0].tolist() == [2, 1]
    # BatchNorm needs no synchronising here: one SPMD program over the
    # global batch. Measured: 9.5e-7.
    assert _relative_difference(runs["data_parallel"], runs["one_device"]) < TOLERANCE
    assert _relative_difference(runs["initial"], runs["one_device"]) > 0.1
