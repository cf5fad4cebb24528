"""Mixed precision stays safe where float16 alone would overflow."""

import numpy as np
import pytest

import keras
from keras_eca import layers
from keras_eca import testing

NAMES = layers.list_attention()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_large_feature_maps_do_not_overflow(name, policy):
    """A 64x64 map of values near 200 sums to ~8e5, beyond float16's 65504:
    pooling and normalisation run in float32, so the gate stays finite."""
    x = (200 + testing.random_input((1, 64, 64, 128))).astype("float32")
    reference = layers.get_attention(name)
    expected = testing.to_numpy(reference(x))
    layer = layers.get_attention(name, dtype=policy)
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    y = testing.to_numpy(keras.ops.cast(layer(x), "float32"))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, expected, rtol=2e-2 if policy == "mixed_float16" else 6e-2, atol=0.5)


@pytest.mark.parametrize("name", NAMES)
def test_global_mixed_policy_builds_float32_variables(name):
    keras.config.set_dtype_policy("mixed_float16")
    layer = layers.get_attention(name)
    y = layer(testing.random_input((2, 3, 3, 128)))
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert all(w.dtype == "float32" for w in layer.weights)


def _float64_available():
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


@pytest.mark.skipif(not _float64_available(), reason="JAX without jax_enable_x64")
@pytest.mark.parametrize("name", NAMES)
def test_float64_policy_computes_in_float64(name):
    """No float32 step inside: outputs and weights are float64, and the
    values agree with the float32 layer to float32 round-off."""
    x = testing.random_input((2, 5, 5, 128)).astype("float64")
    reference = layers.get_attention(name)
    reference.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape) for w in reference.get_weights()]
    reference.set_weights(weights)
    expected = testing.to_numpy(reference(x.astype("float32")))
    keras.config.set_dtype_policy("float64")
    layer = layers.get_attention(name)
    layer.build(x.shape)
    layer.set_weights(weights)
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    assert all(w.dtype == "float64" for w in layer.weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not _float64_available(), reason="JAX without jax_enable_x64")
@pytest.mark.parametrize("name", [n for n in NAMES if n != "sa"])
def test_float64_folded_batch_norm_and_gate(name):
    keras.config.set_dtype_policy("float64")
    x = testing.random_input((2, 4, 4, 16)).astype("float64")
    outputs = layers.FoldedBatchNormalization()(x, training=True)
    assert [keras.backend.standardize_dtype(t.dtype) for t in outputs] == ["float64"] * 4
    y = layers.get_attention(name)(outputs)
    assert keras.backend.standardize_dtype(y.dtype) == "float64"


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_weights_are_read_in_float32(name, policy):
    # A pure half policy keeps half weights; the float32 gate casts them up.
    keras.config.set_dtype_policy(policy)
    layer = layers.get_attention(name)
    y = layer(testing.random_input((2, 3, 3, 128)))
    assert keras.backend.standardize_dtype(y.dtype) == policy
    assert all(w.dtype == policy for w in layer.weights)
    assert np.all(np.isfinite(testing.to_numpy(keras.ops.cast(y, "float32"))))
