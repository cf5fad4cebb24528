"""FoldedBatchNormalization + channel gate == BatchNormalization then gate:
outputs, moving statistics and a training step, on every backend."""

import re

import numpy as np
import pytest

import keras

from keras_eca import layers

CHANNEL_GATES = [
    name
    for name in layers.list_attention()
    if issubclass(layers.attention_defaults(name)[0], layers.ChannelGate)
]
RNG = np.random.default_rng(7)


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor).astype("float32")


def randomize(layer):
    for weight in layer.weights:
        values = RNG.normal(size=weight.shape)
        if "variance" in weight.name:
            values = np.abs(values) + 0.5
        weight.assign(values.astype("float32"))


def pair(name, shape, data_format="channels_last"):
    """Plain and folded models with the same weights."""
    axis = -1 if data_format == "channels_last" else 1
    models = []
    for norm_cls in (keras.layers.BatchNormalization, layers.FoldedBatchNormalization):
        inputs = keras.Input(shape[1:])
        norm = norm_cls(axis=axis, epsilon=1e-5, name="bn")
        gate_cls, defaults = layers.attention_defaults(name)
        gate = gate_cls(**{**defaults, "data_format": data_format}, name="gate")
        models.append(keras.Model(inputs, gate(norm(inputs))))
    plain, folded = models
    for layer in plain.layers[1:]:
        randomize(layer)
    folded.set_weights(plain.get_weights())
    return plain, folded


def test_gates_are_found():
    assert {"eca", "ceca", "eca_ns", "se", "se_var1", "se_var2", "se_var3", "se_gc"} <= set(
        CHANNEL_GATES
    )


@pytest.mark.parametrize("name", CHANNEL_GATES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_folded_gate_matches_plain_pair(name, data_format):
    shape = (3, 5, 6, 32) if data_format == "channels_last" else (3, 32, 5, 6)
    x = RNG.normal(1.5, 2.0, size=shape).astype("float32")
    plain, folded = pair(name, shape, data_format)
    np.testing.assert_allclose(to_numpy(folded(x)), to_numpy(plain(x)), rtol=1e-5, atol=1e-5)
    # Training mode: batch statistics, and the same moving-average updates.
    np.testing.assert_allclose(
        to_numpy(folded(x, training=True)),
        to_numpy(plain(x, training=True)),
        rtol=1e-5,
        atol=1e-5,
    )
    for a, b in zip(folded.get_layer("bn").weights, plain.get_layer("bn").weights):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6, atol=1e-6)


def test_folded_training_step_matches_plain():
    shape = (4, 6, 6, 16)
    x = RNG.normal(size=shape).astype("float32")
    y = RNG.normal(size=shape).astype("float32")
    plain, folded = pair("eca", shape)
    for model in (plain, folded):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(x, y)
    for a, b in zip(folded.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_folded_gate_keeps_float32_statistics_under_mixed_precision():
    # A mean of 1000, std 1: a float16 offset (~ -1000 * scale) would be
    # off by ~0.5 after normalisation; the plain pair computes BN in float32.
    shape = (2, 4, 4, 8)
    x = RNG.normal(1000.0, 1.0, size=shape).astype("float32")
    try:
        keras.config.set_dtype_policy("mixed_float16")
        plain, folded = pair("eca", shape)
        expected = to_numpy(plain(x, training=True))
        out = folded(x, training=True)
    finally:
        keras.config.set_dtype_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(to_numpy(out), expected, atol=2e-2)


def test_outputs_and_errors():
    norm = layers.FoldedBatchNormalization()
    x = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
    features, scale, offset, means = norm(x)
    assert tuple(features.shape) == (2, 3, 3, 4)
    assert tuple(scale.shape) == tuple(offset.shape) == (4,)
    np.testing.assert_allclose(to_numpy(means), x.mean(axis=(1, 2)), atol=1e-6)
    for vector in (scale, offset, means):
        assert keras.backend.standardize_dtype(vector.dtype) == "float32"
    with pytest.raises(ValueError, match="renorm=True"):
        layers.FoldedBatchNormalization(renorm=True)
    gate = layers.EfficientChannelAttention(kernel_size=3)
    with pytest.raises(ValueError, match=r"rank >= 3.*input_shape=\(2, 4\)"):
        gate([np.ones((2, 4), "float32")] * 4)


@pytest.mark.parametrize("shape", [(2, 4), (4,)])
def test_vectors_are_refused(shape):
    # No spatial axes to pool: a ValueError naming the shape, not a
    # silent identity "mean" or an AttributeError deep inside.
    with pytest.raises(ValueError, match="rank >= 3.*" + re.escape(f"input_shape={shape}")):
        layers.FoldedBatchNormalization()(np.ones(shape, "float32"))
    with pytest.raises(ValueError, match=r"rank >= 3.*input_shape=\(None, 4\)"):
        layers.FoldedBatchNormalization()(keras.Input((4,)))
    with pytest.raises(ValueError, match=r"rank >= 3.*\(2, 4\)"):
        layers.FoldedBatchNormalization()([np.ones((2, 4), "float32")] * 2)


def _conv_supports(data_format):
    """TensorFlow's CPU Conv2D has an NCHW kernel only with oneDNN (CPUs
    with AVX-512); JAX and torch always have one."""
    try:
        keras.layers.Conv2D(1, 1, data_format=data_format)(
            np.ones((1, 1, 2, 2), "float32")
        )
    except Exception as error:  # tf.errors.UnimplementedError
        if "NHWC tensor format" in str(error):
            return False
        raise
    return True


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_means_from_the_caller_match_the_reduction(data_format):
    if not _conv_supports(data_format):
        pytest.skip("this TensorFlow CPU build has no channels_first Conv2D")
    # [x, means] with means = conv(mean(h)) for x = conv(h), a bias-free 1x1
    # conv: the applications' bottleneck shortcut. Same outputs, same
    # moving statistics and the same training step as reducing x itself.
    last = data_format == "channels_last"
    h_shape = (3, 5, 6, 8) if last else (3, 8, 5, 6)
    axis = -1 if last else 1
    h = RNG.normal(0.5, 1.5, size=h_shape).astype("float32")
    target = RNG.normal(size=(3, 5, 6, 32) if last else (3, 32, 5, 6)).astype("float32")
    models = []
    for shortcut in (False, True):
        inputs = keras.Input(h_shape[1:])
        conv = keras.layers.Conv2D(32, 1, use_bias=False, data_format=data_format, name="conv")
        x = conv(inputs)
        if shortcut:
            pooled = layers.folded_batch_norm.SpatialMean(data_format=data_format)(inputs)
            x = [x, conv(pooled)]
        norm = layers.FoldedBatchNormalization(axis=axis, epsilon=1e-5, name="bn")(x)
        gate = layers.EfficientChannelAttention(3, data_format=data_format, name="gate")
        models.append(keras.Model(inputs, gate(norm)))
    reduced, shortcut = models
    for layer in reduced.layers[1:]:
        randomize(layer)
    shortcut.set_weights(reduced.get_weights())
    np.testing.assert_allclose(to_numpy(shortcut(h)), to_numpy(reduced(h)), rtol=1e-5, atol=1e-5)
    for model in models:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.train_on_batch(h, target)
    for a, b in zip(shortcut.get_weights(), reduced.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_spatial_mean_and_means_errors():
    x = RNG.normal(size=(2, 3, 4, 5)).astype("float32")
    mean = layers.folded_batch_norm.SpatialMean()(x)
    assert tuple(mean.shape) == (2, 1, 1, 5)
    assert keras.backend.standardize_dtype(mean.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(mean)[:, 0, 0], x.mean(axis=(1, 2)), atol=1e-6)
    first = layers.folded_batch_norm.SpatialMean(data_format="channels_first")(x)
    assert tuple(first.shape) == (2, 3, 1, 1)
    norm = layers.FoldedBatchNormalization()
    with pytest.raises(ValueError, match=r"one mean per channel of x \(5\).*\(2, 4\)"):
        norm([x, np.ones((2, 4), "float32")])
    with pytest.raises(ValueError, match="Received: 3 inputs"):
        layers.FoldedBatchNormalization()([x, x, x])
