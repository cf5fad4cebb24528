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


def test_bad_epsilon():
    with pytest.raises(ValueError, match="epsilon=0"):
        layers.ShuffleAttention(epsilon=0)


def test_batch_dimension_is_dynamic_in_a_compiled_function():
    """The layer never bakes the batch size into a reshape."""
    inputs = keras.Input(shape=(None, None, 128), batch_size=None)
    model = keras.Model(inputs, layers.ShuffleAttention()(inputs))
    model.compile(jit_compile=False)
    for batch in (1, 5):
        y = model.predict(testing.random_input((batch, 4, 6, 128)), verbose=0)
        assert y.shape == (batch, 4, 6, 128)
