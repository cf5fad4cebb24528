"""Conv / BN / activation helpers shared by the ResNet and MobileNetV2 builders.

They reproduce PyTorch's layers exactly: symmetric zero padding before a
strided conv (TensorFlow's "same" pads asymmetrically there), BatchNorm
with PyTorch's epsilon and momentum, and no conv biases.
"""

import keras

from keras_eca.layers import ChannelGate
from keras_eca.layers import FoldedBatchNormalization
from keras_eca.layers import ShuffleAttention
from keras_eca.layers.folded_batch_norm import SpatialMean

# PyTorch BatchNorm2d: eps=1e-5, momentum=0.1 (Keras counts the other way).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def conv_initializer(depthwise_channels=None):
    """He init on fan-out, the variance of `kaiming_normal_(mode="fan_out")`
    in the official ECA, SA and timm code: `2 / fan_out`.

    Drawn uniformly (same variance): normal draws cost about three times
    as much, which made building a ResNet-50 ~25 % slower than
    `keras.applications.ResNet50`. PyTorch counts a depthwise conv's
    fan-out as `channels * k * k`; Keras sees a `(k, k, C, 1)` kernel and
    counts `k * k`, hence the scale divided by `depthwise_channels`.
    """
    scale = 2.0 / (depthwise_channels or 1)
    return keras.initializers.VarianceScaling(
        scale=scale, mode="fan_out", distribution="uniform"
    )


def conv(
    x,
    filters,
    kernel_size,
    strides=1,
    *,
    prefix,
    data_format,
    depthwise=False,
):
    """A bias-free conv named `{prefix}_conv`, padded as PyTorch pads.

    PyTorch pads `(k - 1) // 2` on every side. For stride 1 and an odd
    kernel that is what "same" does, so only strided convs get an explicit
    `{prefix}_pad` layer.
    """
    pad = (kernel_size - 1) // 2
    padding = "same" if pad else "valid"
    if strides > 1 and pad:
        x = keras.layers.ZeroPadding2D(
            pad, data_format=data_format, name=f"{prefix}_pad"
        )(x)
        padding = "valid"
    return _conv_layer(
        filters, kernel_size, strides, padding, depthwise, channels(x, data_format),
        prefix=prefix, data_format=data_format,
    )(x)


def _conv_layer(
    filters, kernel_size, strides, padding, depthwise, in_channels, *,
    prefix, data_format,
):
    if depthwise:
        return keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            depthwise_initializer=conv_initializer(in_channels),
            data_format=data_format,
            name=f"{prefix}_conv",
        )
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=conv_initializer(),
        data_format=data_format,
        name=f"{prefix}_conv",
    )


def batch_norm(x, *, name, data_format, zero_init=False, folded=False):
    axis = -1 if data_format == "channels_last" else 1
    layer = FoldedBatchNormalization if folded else keras.layers.BatchNormalization
    return layer(
        axis=axis,
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
    )(x)


def pointwise_conv_and_attention(
    x, filters, attention, *, prefix, bn_name, data_format, zero_init=False
):
    """The last 1x1 conv and BatchNorm of a residual branch, then its
    attention (see `batch_norm_and_attention`).

    A channel gate pools the conv output `conv(h)`. A bias-free 1x1 conv
    commutes with the spatial mean, so when `h` has fewer channels (a
    bottleneck's quarter) the means come from `conv(mean(h))`: the same
    conv layer on the pooled `h`, a quarter of the reading. In float32
    only: the conv would round the float32 means of a float16 model.
    """
    conv_layer = _conv_layer(
        filters, 1, 1, "valid", False, channels(x, data_format),
        prefix=prefix, data_format=data_format,
    )
    out = conv_layer(x)
    if (
        isinstance(attention, ChannelGate)
        and channels(x, data_format) < filters
        and conv_layer.compute_dtype in ("float32", "float64")
    ):
        pooled = SpatialMean(data_format=data_format, name=f"{prefix}_pool")(x)
        out = [out, conv_layer(pooled)]
    return batch_norm_and_attention(
        out, attention, name=bn_name, data_format=data_format, zero_init=zero_init
    )


def batch_norm_and_attention(
    x, attention, *, name, data_format, zero_init=False
):
    """The last BatchNorm of a residual branch, then its attention.

    A channel gate (ECA, SE, ...) takes the BatchNorm folded: one pass
    instead of normalise-then-rescale, and no stored copy of the normalised
    map for training. Other attention (SA) gets the normalised map. `x` may
    be `[features, means]` for the folded BatchNorm.

    `x` comes straight out of a conv, so SA takes its channel shuffle
    folded into that conv's output order (`fold_shuffle=True`): the conv
    and BatchNorm weights are stored in the shuffled order, and the
    converters permute checkpoints to it.
    """
    folded = isinstance(attention, ChannelGate)
    x = batch_norm(
        x, name=name, data_format=data_format, zero_init=zero_init, folded=folded
    )
    if isinstance(attention, ShuffleAttention) and not attention.fold_shuffle:
        attention = type(attention).from_config(
            {**attention.get_config(), "fold_shuffle": True}
        )
    return x if attention is None else attention(x)


def relu(x, *, name, max_value=None):
    return keras.layers.ReLU(max_value=max_value, name=name)(x)


def channels(x, data_format):
    return x.shape[-1] if data_format == "channels_last" else x.shape[1]
