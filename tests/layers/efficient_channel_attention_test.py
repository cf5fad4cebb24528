import re

import numpy as np
import pytest

from keras_eca import layers
from keras_eca import testing
from tests.reference_fixtures import load_fixture
from tests.reference_fixtures import nchw_to_nhwc


# The paper's Figure 3 rule (truncate, then the next odd number): ties at
# t = 4.0 and 6.0 round up, and there is no minimum of 3 unless asked.
@pytest.mark.parametrize(
    "channels, expected",
    [(1, 1), (4, 1), (8, 3), (16, 3), (64, 3), (96, 3), (128, 5), (160, 5),
     (256, 5), (512, 5), (1024, 5), (1280, 5), (2048, 7)],
)
def test_adaptive_kernel_size_follows_the_paper(channels, expected):
    assert layers.adaptive_kernel_size(channels) == expected


def test_adaptive_kernel_size_minimum_gamma_and_beta():
    assert layers.adaptive_kernel_size(4, min_kernel_size=3) == 3
    assert layers.adaptive_kernel_size(2048, min_kernel_size=3) == 7
    # gamma=1, b=1 at C=64: t = 7.
    assert layers.adaptive_kernel_size(64, gamma=1, beta=1) == 7
    assert layers.adaptive_kernel_size(64, gamma=2, beta=3) == 5


def test_resnet50_formula_differs_from_released_k3557():
    """The released ECA-ResNet-50 is k3557: the formula's [5,5,5,7] is not it,
    which is why models take explicit per-stage kernel sizes."""
    widths = (256, 512, 1024, 2048)
    assert [layers.adaptive_kernel_size(c) for c in widths] == [5, 5, 5, 7]


@pytest.mark.parametrize("kernel_size", [2, 4, 0, -3, True, 3.0, "3"])
def test_bad_kernel_size(kernel_size):
    with pytest.raises(ValueError, match=f"kernel_size={kernel_size!r}"):
        layers.EfficientChannelAttention(kernel_size=kernel_size)


@pytest.mark.parametrize(
    "gamma", [0, -1, "2", True, float("nan"), float("inf"), np.float32("nan")]
)
def test_bad_gamma(gamma):
    with pytest.raises(ValueError, match=re.escape(f"gamma={gamma!r}")):
        layers.EfficientChannelAttention(gamma=gamma)
    with pytest.raises(ValueError, match=re.escape(f"gamma={gamma!r}")):
        layers.adaptive_kernel_size(64, gamma=gamma)


@pytest.mark.parametrize("beta", [float("nan"), float("-inf"), None])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match=re.escape(f"beta={beta!r}")):
        layers.EfficientChannelAttention(beta=beta)


def test_numpy_scalars_are_numbers():
    layer = layers.EfficientChannelAttention(
        kernel_size=np.int64(3), gamma=np.float32(2), beta=np.int32(1)
    )
    assert layer(np.ones((1, 2, 2, 8), "float32")).shape == (1, 2, 2, 8)
    # Stored as Python numbers: the config stays JSON.
    config = layer.get_config()
    assert [type(config[k]) for k in ("kernel_size", "gamma", "beta")] == [
        int, float, int,
    ]
    assert layers.adaptive_kernel_size(np.int64(256)) == 5
    assert layers.EfficientChannelAttention(min_kernel_size=np.int64(3)).resolve_kernel_size(8) == 3


def test_bad_padding_and_min_kernel_size():
    with pytest.raises(ValueError, match="padding='same'"):
        layers.EfficientChannelAttention(padding="same")
    with pytest.raises(ValueError, match="min_kernel_size=0"):
        layers.EfficientChannelAttention(min_kernel_size=0)
    with pytest.raises(ValueError, match="data_format='NHWC'"):
        layers.EfficientChannelAttention(data_format="NHWC")


@pytest.mark.parametrize("shape", [(2, 64), (64,)])
def test_rank_below_three(shape):
    with pytest.raises(ValueError, match=r"rank >= 3.*input_shape="):
        layers.EfficientChannelAttention()(np.zeros(shape, "float32"))


def test_unknown_channel_dimension():
    layer = layers.EfficientChannelAttention()
    with pytest.raises(ValueError, match=r"known channel dimension.*None"):
        layer.build((None, 4, 4, None))


@pytest.mark.parametrize(
    "fixture, kwargs",
    [
        ("layer_official_eca_k3_c64", dict(kernel_size=3)),
        ("layer_official_eca_k5_c64", dict(kernel_size=5)),
        # timm EcaModule(channels=256): adaptive with a minimum of 3.
        ("layer_timm_eca_c256", dict(min_kernel_size=3)),
        # timm CecaModule(channels=256): circular padding.
        ("layer_timm_ceca_c256", dict(min_kernel_size=3, padding="circular")),
    ],
)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matches_reference_modules(fixture, kwargs, data_format):
    meta, arrays, state_dict = load_fixture(fixture)
    (torch_weight,) = state_dict.values()  # conv.weight, [1, 1, k]
    layer = layers.EfficientChannelAttention(**kwargs, data_format=data_format)
    x = arrays["input_nchw"]
    if data_format == "channels_last":
        x = nchw_to_nhwc(x)
    layer.build(x.shape)
    assert layer.kernel.shape == (torch_weight.shape[-1],)
    assert layer.count_params() == meta["num_params"]
    layer.set_weights([torch_weight.reshape(-1)])
    y = testing.to_numpy(layer(x))
    if data_format == "channels_last":
        y = np.transpose(y, (0, 3, 1, 2))
    assert np.max(np.abs(y - arrays["output"])) <= 1e-5


def numpy_channel_conv(pooled, band, padding):
    """Reference: out[c] = sum_j band[c, j] * pooled[c + j - pad], with
    zero or wrap-around indexing, written as explicit loops."""
    channels, k = band.shape
    pad = (k - 1) // 2
    out = np.zeros_like(pooled)
    for c in range(channels):
        for j in range(k):
            source = c + j - pad
            if padding == "circular":
                out[:, c] += band[c, j] * pooled[:, source % channels]
            elif 0 <= source < channels:
                out[:, c] += band[c, j] * pooled[:, source]
    return out


def numpy_gate(x, band, padding):
    pooled = x.mean(axis=(1, 2))
    gate = 1 / (1 + np.exp(-numpy_channel_conv(pooled, band, padding)))
    return x * gate[:, None, None, :]


@pytest.mark.parametrize("padding", ["zeros", "circular"])
@pytest.mark.parametrize("channels, kernel_size", [(16, 3), (6, 5), (3, 9)])
def test_eca_and_eca_ns_against_loops(padding, channels, kernel_size):
    """Also kernels wider than the channel axis (wrapped more than once)."""
    x = testing.random_input((2, 3, 3, channels))
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(kernel_size).astype("float32")
    band = rng.standard_normal((kernel_size, channels)).astype("float32")

    eca = layers.EfficientChannelAttention(kernel_size, padding=padding)
    eca.build(x.shape)
    eca.set_weights([shared])
    expected = numpy_gate(x, np.tile(shared, (channels, 1)), padding)
    np.testing.assert_allclose(testing.to_numpy(eca(x)), expected, atol=1e-5)

    eca_ns = layers.EfficientChannelAttentionNS(kernel_size, padding=padding)
    eca_ns.build(x.shape)
    assert eca_ns.count_params() == kernel_size * channels
    eca_ns.set_weights([band])
    expected = numpy_gate(x, band.T, padding)
    np.testing.assert_allclose(testing.to_numpy(eca_ns(x)), expected, atol=1e-5)


def test_kernel_initializer_matches_pytorch_default_and_is_configurable():
    layer = layers.EfficientChannelAttention(kernel_size=7)
    layer.build((1, 2, 2, 64))
    assert np.all(np.abs(testing.to_numpy(layer.kernel)) <= 1 / np.sqrt(7))
    layer = layers.EfficientChannelAttention(kernel_size=7, kernel_initializer="ones")
    layer.build((1, 2, 2, 64))
    np.testing.assert_array_equal(testing.to_numpy(layer.kernel), np.ones(7))
    revived = layers.EfficientChannelAttention.from_config(layer.get_config())
    revived.build((1, 2, 2, 64))
    np.testing.assert_array_equal(testing.to_numpy(revived.kernel), np.ones(7))
