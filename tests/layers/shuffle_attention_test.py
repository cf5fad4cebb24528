import re

import numpy as np
import pytest

import keras
from keras_eca import layers
from keras_eca import testing
from tests.reference_fixtures import load_fixture
from tests.reference_fixtures import nchw_to_nhwc

# Official state_dict names -> this layer's weight names.
OFFICIAL_NAMES = {
    "cweight": "cweight",
    "cbias": "cbias",
    "sweight": "sweight",
    "sbias": "sbias",
    "gn.weight": "gn_gamma",
    "gn.bias": "gn_beta",
}


@pytest.mark.parametrize("fixture", ["layer_official_sa_c256_g64", "layer_official_sa_c512_g64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matches_official_sa_layer(fixture, data_format):
    meta, arrays, state_dict = load_fixture(fixture)
    x = arrays["input_nchw"]
    if data_format == "channels_last":
        x = nchw_to_nhwc(x)
    layer = layers.ShuffleAttention(groups=64, data_format=data_format)
    layer.build(x.shape)
    assert layer.count_params() == meta["num_params"]
    for torch_name, value in state_dict.items():
        getattr(layer, OFFICIAL_NAMES[torch_name]).assign(value.reshape(-1))
    y = testing.to_numpy(layer(x))
    if data_format == "channels_last":
        y = np.transpose(y, (0, 3, 1, 2))
    assert np.max(np.abs(y - arrays["output"])) <= 1e-5


@pytest.mark.parametrize("channels, groups", [(256, 64), (512, 64), (64, 8), (96, 3)])
def test_parameter_count_is_six_times_half_group_width(channels, groups):
    layer = layers.ShuffleAttention(groups=groups)
    layer.build((1, 2, 2, channels))
    assert layer.count_params() == 6 * channels // (2 * groups)


def test_initial_gates_are_sigmoid_one():
    """Official init: both gates are sigmoid(1), a constant rescale."""
    x = testing.random_input((2, 3, 3, 128))
    y = testing.to_numpy(layers.ShuffleAttention()(x))
    shuffled = x.reshape(2, 3, 3, 2, 64).transpose(0, 1, 2, 4, 3).reshape(x.shape)
    np.testing.assert_allclose(y, shuffled / (1 + np.exp(-1)), rtol=1e-5)


def test_bad_channel_count_lists_working_groups():
    with pytest.raises(ValueError, match=r"\(96\).*\[1, 2, 3, 4, 6, 8, 12, 16, 24, 48\].*groups=64"):
        layers.ShuffleAttention(groups=64).build((1, 4, 4, 96))


@pytest.mark.parametrize("groups", [0, -1, 2.0, None])
def test_bad_groups(groups):
    with pytest.raises(ValueError, match=f"groups={groups!r}"):
        layers.ShuffleAttention(groups=groups)


@pytest.mark.parametrize("epsilon", [0, -1e-5, float("nan"), float("inf"), "1e-5", True])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match=re.escape(f"epsilon={epsilon!r}")):
        layers.ShuffleAttention(epsilon=epsilon)


def test_numpy_groups_and_epsilon():
    layer = layers.ShuffleAttention(groups=np.int64(2), epsilon=np.float32(1e-5))
    assert layer(np.ones((1, 2, 2, 8), "float32")).shape == (1, 2, 2, 8)
    config = layer.get_config()
    assert (type(config["groups"]), type(config["epsilon"])) == (int, float)


def test_batch_dimension_is_dynamic_in_a_compiled_function():
    """The layer never bakes the batch size into a reshape."""
    inputs = keras.Input(shape=(None, None, 128), batch_size=None)
    model = keras.Model(inputs, layers.ShuffleAttention()(inputs))
    model.compile(jit_compile=False)
    for batch in (1, 5):
        y = model.predict(testing.random_input((batch, 4, 6, 128)), verbose=0)
        assert y.shape == (batch, 4, 6, 128)


def test_shuffle_order_interleaves_the_halves():
    order = layers.shuffle_order(8)
    np.testing.assert_array_equal(order, [0, 4, 1, 5, 2, 6, 3, 7])
    x = testing.random_input((2, 3, 3, 128))
    y = testing.to_numpy(layers.ShuffleAttention()(x))
    # With the initial (constant) gates, the output is the shuffled input.
    np.testing.assert_allclose(y, x[..., layers.shuffle_order(128)] / (1 + np.exp(-1)), rtol=1e-5)
    with pytest.raises(ValueError, match="channels=7"):
        layers.shuffle_order(7)


def _random_sa_weights(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape, groups", [((2, 5, 7, 256), 64), ((3, 9, 24), 3), ((2, 3, 4, 2, 64), 4)])
def test_folded_shuffle_gives_the_output_from_the_permuted_input(data_format, shape, groups):
    """fold_shuffle=True on the shuffled input == the plain layer, and its
    gradients are the permuted gradients (training is unchanged)."""
    if data_format == "channels_first":
        shape = (shape[0], shape[-1]) + shape[1:-1]
    axis = -1 if data_format == "channels_last" else 1
    plain = layers.ShuffleAttention(groups=groups, data_format=data_format)
    folded = layers.ShuffleAttention(groups=groups, fold_shuffle=True, data_format=data_format)
    plain.build(shape)
    folded.build(shape)
    _random_sa_weights(plain, 0)
    folded.set_weights(plain.get_weights())
    x = testing.random_input(shape, seed=1) + 0.5
    order = layers.shuffle_order(shape[axis])
    expected = testing.to_numpy(plain(x))
    got = testing.to_numpy(folded(np.take(x, order, axis=axis)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_folded_shuffle_trains_like_the_plain_layer():
    shape = (4, 6, 6, 64)
    x = testing.random_input(shape, seed=2)
    target = testing.random_input(shape, seed=3)
    order = layers.shuffle_order(64)
    trained = []
    for fold, inputs, labels in ((False, x, target), (True, x[..., order], target)):
        inp = keras.Input(shape[1:])
        model = keras.Model(inp, layers.ShuffleAttention(groups=4, fold_shuffle=fold)(inp))
        _random_sa_weights(model.layers[-1], 4)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.fit(inputs, labels, batch_size=4, epochs=3, verbose=0)
        trained.append(model.get_weights())
    for plain_weight, folded_weight in zip(*trained):
        np.testing.assert_allclose(folded_weight, plain_weight, rtol=1e-4, atol=1e-6)


def test_fold_shuffle_is_in_the_config_and_checked():
    layer = layers.ShuffleAttention(groups=4, fold_shuffle=True)
    assert layers.ShuffleAttention.from_config(layer.get_config()).fold_shuffle is True
    with pytest.raises(ValueError, match="fold_shuffle='yes'"):
        layers.ShuffleAttention(fold_shuffle="yes")
