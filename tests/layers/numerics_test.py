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
