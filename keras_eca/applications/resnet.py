"""The generic ResNet builder: one function for every ResNet registry row.

Layout (torchvision v1.5 / timm `ResNet`): the stride sits on the 3x3 conv,
convs have no bias, and the attention of a block comes after the last BN of
its residual branch, before the residual add and the final ReLU.

Layer names follow `keras.applications`: `conv1_*`, `pool1_pool`, then for
stage `s` (2..5) and block `b` (from 1): `conv{s}_block{b}_{j}_conv|bn|relu`
for the residual branch (`j` = 1, 2, 3), `conv{s}_block{b}_attn`,
`conv{s}_block{b}_0_pool|conv|bn` for the projection shortcut,
`conv{s}_block{b}_add` and `conv{s}_block{b}_out`.

Initialization follows the source: He (fan-out variance) convs, and for timm
rows (`zero_init_last`) a zero scale on the last BN of every residual
branch, so each block starts as an identity (timm's `zero_init_last`).
"""

import keras

from keras_eca.applications import common

STEM_WIDTHS = {
    "default": (64,),
    "deep": (32, 32, 64),
    "tiered": (24, 32, 64),
}


def resnet_features(x, config, make_attention, data_format):
    """Applies the stem and the four stages of `config` to `x`.

    `make_attention(stage_index, name)` returns the attention layer of a
    block of stage `stage_index` (0..3), or `None`.
    """
    x = _stem(x, config["stem"], data_format)
    expansion = 4 if config["block"] == "bottleneck" else 1
    block_fn = _bottleneck if config["block"] == "bottleneck" else _basic
    for index, (depth, width) in enumerate(
        zip(config["depths"], config["widths"])
    ):
        stage = index + 2
        for block in range(1, depth + 1):
            strides = 2 if index > 0 and block == 1 else 1
            prefix = f"conv{stage}_block{block}"
            in_channels = common.channels(x, data_format)
            shortcut = x
            if strides != 1 or in_channels != width * expansion:
                shortcut = _projection(
                    x,
                    width * expansion,
                    strides,
                    avg_down=config["avg_down"],
                    prefix=prefix,
                    data_format=data_format,
                )
            x = block_fn(
                x,
                width,
                strides,
                prefix,
                data_format,
                zero_init_last=config["zero_init_last"],
                attention=make_attention(index, f"{prefix}_attn"),
            )
            x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
            x = common.relu(x, name=f"{prefix}_out")
    return x


def _stem(x, stem, data_format):
    widths = STEM_WIDTHS[stem]
    if stem == "default":
        x = common.conv(
            x, widths[0], 7, 2, prefix="conv1", data_format=data_format
        )
    else:
        # timm's deep stem: 3x3 convs, stride 2 on the first; the last conv
        # shares the top-level `conv1_bn` / `conv1_relu` (timm `bn1`, `act1`).
        for i, width in enumerate(widths, start=1):
            prefix = f"conv1_{i}"
            x = common.conv(
                x,
                width,
                3,
                2 if i == 1 else 1,
                prefix=prefix,
                data_format=data_format,
            )
            if i < len(widths):
                x = common.batch_norm(
                    x, name=f"{prefix}_bn", data_format=data_format
                )
                x = common.relu(x, name=f"{prefix}_relu")
    x = common.batch_norm(x, name="conv1_bn", data_format=data_format)
    x = common.relu(x, name="conv1_relu")
    # PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf. Its input comes
    # out of a ReLU (>= 0) and every window holds a real value, so zero
    # padding gives the same maxima.
    x = keras.layers.ZeroPadding2D(
        1, data_format=data_format, name="pool1_pad"
    )(x)
    return keras.layers.MaxPooling2D(
        3, strides=2, data_format=data_format, name="pool1_pool"
    )(x)


def _projection(x, filters, strides, *, avg_down, prefix, data_format):
    if avg_down:
        # timm's AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
        # (an identity at stride 1): TF's "same" average pooling pads only
        # at the end and leaves the padding out of the count, as it does.
        if strides != 1:
            x = keras.layers.AveragePooling2D(
                2,
                strides=strides,
                padding="same",
                data_format=data_format,
                name=f"{prefix}_0_pool",
            )(x)
        strides = 1
    x = common.conv(
        x, filters, 1, strides, prefix=f"{prefix}_0", data_format=data_format
    )
    return common.batch_norm(x, name=f"{prefix}_0_bn", data_format=data_format)


def _basic(x, width, strides, prefix, data_format, zero_init_last, attention):
    x = common.conv(
        x, width, 3, strides, prefix=f"{prefix}_1", data_format=data_format
    )
    x = common.batch_norm(x, name=f"{prefix}_1_bn", data_format=data_format)
    x = common.relu(x, name=f"{prefix}_1_relu")
    x = common.conv(x, width, 3, prefix=f"{prefix}_2", data_format=data_format)
    return common.batch_norm_and_attention(
        x,
        attention,
        name=f"{prefix}_2_bn",
        data_format=data_format,
        zero_init=zero_init_last,
    )


def _bottleneck(
    x, width, strides, prefix, data_format, zero_init_last, attention
):
    x = common.conv(x, width, 1, prefix=f"{prefix}_1", data_format=data_format)
    x = common.batch_norm(x, name=f"{prefix}_1_bn", data_format=data_format)
    x = common.relu(x, name=f"{prefix}_1_relu")
    x = common.conv(
        x, width, 3, strides, prefix=f"{prefix}_2", data_format=data_format
    )
    x = common.batch_norm(x, name=f"{prefix}_2_bn", data_format=data_format)
    x = common.relu(x, name=f"{prefix}_2_relu")
    return common.pointwise_conv_and_attention(
        x,
        width * 4,
        attention,
        prefix=f"{prefix}_3",
        bn_name=f"{prefix}_3_bn",
        data_format=data_format,
        zero_init=zero_init_last,
    )
