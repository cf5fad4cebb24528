import numpy as np
import pytest

from keras_eca import layers
from keras_eca import testing


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def built(layer, channels=64):
    layer.build((2, 3, 3, channels))
    return layer


@pytest.mark.parametrize("channels, ratio", [(64, 16), (256, 16), (96, 8)])
def test_se_parameter_count(channels, ratio):
    """The ECA paper's Table 2: 2 C^2 / r, plus C / r + C biases when on."""
    weights = 2 * channels * channels // ratio
    se = built(layers.SqueezeExcitation(reduction_ratio=ratio), channels)
    assert se.count_params() == weights + channels // ratio + channels
    se = built(layers.SqueezeExcitation(ratio, use_bias=False), channels)
    assert se.count_params() == weights
    assert len(se.trainable_weights) == 2


def test_variant_parameter_counts():
    c = 64
    assert built(layers.SqueezeExcitationVar1(), c).count_params() == 0
    assert built(layers.SqueezeExcitationVar2(), c).count_params() == c
    assert built(layers.SqueezeExcitationVar3(), c).count_params() == c * c
    # SE-GC1 (16 groups), SE-GC2 (C/16 groups), SE-GC3 (C/8 groups).
    gc = layers.SqueezeExcitationGroupConv
    assert built(gc(), c).count_params() == c * c // 16
    assert built(gc(groups=16), c).count_params() == c * c // 16
    assert built(gc(group_width=16), c).count_params() == 16 * c
    assert built(gc(group_width=8), c).count_params() == 8 * c


def test_outputs_against_numpy():
    c = 32
    x = testing.random_input((2, 4, 5, c))
    pooled = x.mean(axis=(1, 2))
    rng = np.random.default_rng(0)

    se = built(layers.SqueezeExcitation(reduction_ratio=4), c)
    w1, b1, w2, b2 = [rng.standard_normal(w.shape).astype("float32") for w in se.weights]
    se.set_weights([w1, b1, w2, b2])
    gate = sigmoid(np.maximum(pooled @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(
        testing.to_numpy(se(x)), x * gate[:, None, None], atol=1e-5
    )

    var1 = layers.SqueezeExcitationVar1()
    np.testing.assert_allclose(
        testing.to_numpy(var1(x)), x * sigmoid(pooled)[:, None, None], atol=1e-6
    )

    var2 = built(layers.SqueezeExcitationVar2(), c)
    w = rng.standard_normal(c).astype("float32")
    var2.set_weights([w])
    np.testing.assert_allclose(
        testing.to_numpy(var2(x)), x * sigmoid(pooled * w)[:, None, None], atol=1e-6
    )

    var3 = built(layers.SqueezeExcitationVar3(), c)
    w = rng.standard_normal((c, c)).astype("float32")
    var3.set_weights([w])
    np.testing.assert_allclose(
        testing.to_numpy(var3(x)), x * sigmoid(pooled @ w)[:, None, None], atol=1e-5
    )

    gc = built(layers.SqueezeExcitationGroupConv(groups=4), c)
    w = rng.standard_normal((4, 8, 8)).astype("float32")
    gc.set_weights([w])
    block_diagonal = np.zeros((c, c), "float32")
    for g in range(4):
        block_diagonal[8 * g : 8 * g + 8, 8 * g : 8 * g + 8] = w[g]
    expected = x * sigmoid(pooled @ block_diagonal)[:, None, None]
    np.testing.assert_allclose(testing.to_numpy(gc(x)), expected, atol=1e-5)


def test_activation_is_configurable_and_serialized():
    se = layers.SqueezeExcitation(activation="gelu")
    assert se.get_config()["activation"] == "gelu"
    revived = layers.SqueezeExcitation.from_config(se.get_config())
    assert revived.activation is se.activation


@pytest.mark.parametrize("ratio", [0, -4, 2.5, True])
def test_bad_reduction_ratio(ratio):
    with pytest.raises(ValueError, match=f"reduction_ratio={ratio!r}"):
        layers.SqueezeExcitation(reduction_ratio=ratio)


def test_numpy_integers_are_integers():
    se = layers.SqueezeExcitation(reduction_ratio=np.int64(4))
    assert se(np.ones((1, 2, 2, 8), "float32")).shape == (1, 2, 2, 8)
    assert type(se.get_config()["reduction_ratio"]) is int
    gc = layers.SqueezeExcitationGroupConv(group_width=np.int32(4))
    assert gc(np.ones((1, 2, 2, 8), "float32")).shape == (1, 2, 2, 8)
    assert type(gc.get_config()["group_width"]) is int


def test_reduction_larger_than_channels():
    with pytest.raises(ValueError, match=r"channels \(8\).*reduction_ratio=16"):
        layers.SqueezeExcitation(reduction_ratio=16).build((1, 2, 2, 8))


def test_group_conv_errors():
    with pytest.raises(ValueError, match="groups=4, group_width=8"):
        layers.SqueezeExcitationGroupConv(groups=4, group_width=8)
    with pytest.raises(ValueError, match="groups=0"):
        layers.SqueezeExcitationGroupConv(groups=0)
    with pytest.raises(ValueError, match=r"channels \(24\).*groups=16"):
        layers.SqueezeExcitationGroupConv().build((1, 2, 2, 24))
    with pytest.raises(ValueError, match=r"channels \(24\).*group_width=16"):
        layers.SqueezeExcitationGroupConv(group_width=16).build((1, 2, 2, 24))
