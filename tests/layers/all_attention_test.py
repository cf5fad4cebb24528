"""The layer contract, run over every registered attention name."""

import numpy as np
import pytest

import keras
from keras_eca import layers
from keras_eca import testing

CHANNELS = 128  # every registered default works here (SA: C % 128 == 0)

# name -> (trainable variables, trainable parameters) at CHANNELS channels,
# from the paper's formulas: a newly registered name must be added here.
EXPECTED_WEIGHTS = {
    "eca": (1, 5),  # k = psi(128) = 5
    "ceca": (1, 5),
    "eca_ns": (1, 5 * CHANNELS),  # k * C
    "se": (4, 2 * CHANNELS**2 // 16 + CHANNELS // 16 + CHANNELS),
    "se_var1": (0, 0),
    "se_var2": (1, CHANNELS),
    "se_var3": (1, CHANNELS**2),
    "se_gc": (1, CHANNELS**2 // 16),  # GC1: 16 groups
    "sa": (6, 6 * CHANNELS // (2 * 64)),
}

NAMES = layers.list_attention()


def config_without_name(layer):
    config = layer.get_config()
    config.pop("name")
    return config


def test_every_registered_name_has_expectations():
    assert sorted(EXPECTED_WEIGHTS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_layer_contract(name):
    cls, defaults = layers.attention_defaults(name)
    num_weights, num_params = EXPECTED_WEIGHTS[name]
    testing.run_layer_test(
        cls,
        defaults,
        input_shape=(2, 4, 4, CHANNELS),
        expected_num_trainable_weights=num_weights,
        expected_num_params=num_params,
    )


@pytest.mark.parametrize("name", NAMES)
def test_get_attention_by_name_class_and_config(name):
    cls, defaults = layers.attention_defaults(name)
    by_name = layers.get_attention(name)
    assert type(by_name) is cls
    assert config_without_name(by_name) == config_without_name(cls(**defaults))
    serialized = keras.saving.serialize_keras_object(by_name)
    by_config = layers.get_attention(serialized)
    assert by_config.get_config() == by_name.get_config()
    assert by_config is not by_name
    by_class = layers.get_attention(cls, **defaults)
    assert config_without_name(by_class) == config_without_name(by_name)


@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("name", NAMES)
def test_ranks_and_data_formats_agree(name, rank):
    """1D/2D/3D maps in both layouts give the same result, weights shared."""
    spatial = {3: (6,), 4: (3, 5), 5: (2, 3, 4)}[rank]
    last_shape = (2,) + spatial + (CHANNELS,)
    x = testing.random_input(last_shape)
    last = layers.get_attention(name, data_format="channels_last")
    first = layers.get_attention(name, data_format="channels_first")
    y_last = testing.to_numpy(last(x))
    first.build((2, CHANNELS) + spatial)
    # Non-trivial weights, so that a wrong axis cannot hide behind an init.
    weights = [
        np.random.default_rng(i).uniform(0.5, 1.5, w.shape).astype("float32")
        for i, w in enumerate(last.get_weights())
    ]
    last.set_weights(weights)
    first.set_weights(weights)
    y_last = testing.to_numpy(last(x))
    x_first = np.moveaxis(x, -1, 1)
    y_first = testing.to_numpy(first(x_first))
    assert y_last.shape == last_shape
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_dynamic_batch_and_spatial_sizes(name):
    inputs = keras.Input(shape=(None, None, CHANNELS))
    model = keras.Model(inputs, layers.get_attention(name)(inputs))
    for shape in [(1, 3, 5, CHANNELS), (3, 7, 2, CHANNELS)]:
        y = model(testing.random_input(shape))
        assert tuple(y.shape) == shape


@pytest.mark.parametrize("name", NAMES)
def test_keras_file_round_trip(name, tmp_path):
    testing.check_keras_round_trip(
        layers.get_attention(name), (2, 4, 4, CHANNELS), tmp_path / f"{name}.keras"
    )
