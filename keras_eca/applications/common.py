"""Conv / BN / activation helpers shared by the ResNet and MobileNetV2 builders.

They reproduce PyTorch's layers exactly: symmetric zero padding before a
strided conv (TensorFlow's "same" pads asymmetrically there), BatchNorm
with PyTorch's epsilon and momentum, and no conv biases.
"""

import keras

# PyTorch BatchNorm2d: eps=1e-5, momentum=0.1 (Keras counts the other way).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def conv_initializer():
    """He-normal on fan-out: `kaiming_normal_(mode="fan_out")` of the
    official ECA, SA and timm code."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
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
    if depthwise:
        return keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            depthwise_initializer=conv_initializer(),
            data_format=data_format,
            name=f"{prefix}_conv",
        )(x)
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=conv_initializer(),
        data_format=data_format,
        name=f"{prefix}_conv",
    )(x)


def batch_norm(x, *, name, data_format, zero_init=False):
    axis = -1 if data_format == "channels_last" else 1
    return keras.layers.BatchNormalization(
        axis=axis,
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
    )(x)


def relu(x, *, name, max_value=None):
    return keras.layers.ReLU(max_value=max_value, name=name)(x)


def channels(x, data_format):
    return x.shape[-1] if data_format == "channels_last" else x.shape[1]
