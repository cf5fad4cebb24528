"""The generic MobileNetV2 builder, driven by a `(t, c, n, s)` table.

Layout of torchvision's MobileNetV2 and the official ECA-MobileNetV2:
ReLU6, symmetric padding, no width rounding (width multiplier 1.0). The
attention of a block comes after its projection BN, before the residual
add, in every inverted-residual block (also those without a skip).

Layer names: `stem_conv|bn|relu`; for block `i` (1..17, PyTorch's
`features.i`): `block{i}_expand_conv|bn|relu` (when `t != 1`),
`block{i}_dw_conv|bn|relu`, `block{i}_project_conv|bn`, `block{i}_attn`,
`block{i}_add` (stride 1 and equal widths); then `head_conv|bn|relu`.
"""

import keras

from keras_eca.applications import common

RELU6 = 6.0


def mobilenet_v2_features(x, config, make_attention, data_format):
    """Applies the stem, the inverted-residual blocks and the head conv.

    `make_attention(stage_index, name)` returns the attention layer of a
    block of table row `stage_index`, or `None`.
    """
    x = common.conv(
        x, config["stem_width"], 3, 2, prefix="stem", data_format=data_format
    )
    x = common.batch_norm(x, name="stem_bn", data_format=data_format)
    x = common.relu(x, name="stem_relu", max_value=RELU6)
    block = 1
    for stage_index, (expansion, width, repeats, stride) in enumerate(
        config["stages"]
    ):
        for repeat in range(repeats):
            x = _inverted_residual(
                x,
                width,
                stride if repeat == 0 else 1,
                expansion,
                make_attention(stage_index, f"block{block}_attn"),
                prefix=f"block{block}",
                data_format=data_format,
            )
            block += 1
    x = common.conv(
        x, config["head_width"], 1, prefix="head", data_format=data_format
    )
    x = common.batch_norm(x, name="head_bn", data_format=data_format)
    return common.relu(x, name="head_relu", max_value=RELU6)


def _inverted_residual(
    x, width, strides, expansion, attention, *, prefix, data_format
):
    in_channels = common.channels(x, data_format)
    inputs = x
    if expansion != 1:
        hidden = int(round(in_channels * expansion))
        x = common.conv(
            x, hidden, 1, prefix=f"{prefix}_expand", data_format=data_format
        )
        x = common.batch_norm(
            x, name=f"{prefix}_expand_bn", data_format=data_format
        )
        x = common.relu(x, name=f"{prefix}_expand_relu", max_value=RELU6)
    x = common.conv(
        x,
        None,
        3,
        strides,
        prefix=f"{prefix}_dw",
        data_format=data_format,
        depthwise=True,
    )
    x = common.batch_norm(x, name=f"{prefix}_dw_bn", data_format=data_format)
    x = common.relu(x, name=f"{prefix}_dw_relu", max_value=RELU6)
    x = common.conv(
        x, width, 1, prefix=f"{prefix}_project", data_format=data_format
    )
    x = common.batch_norm_and_attention(
        x, attention, name=f"{prefix}_project_bn", data_format=data_format
    )
    if strides == 1 and in_channels == width:
        x = keras.layers.Add(name=f"{prefix}_add")([inputs, x])
    return x
