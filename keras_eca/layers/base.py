"""Shared machinery of the attention layers: data format, shapes, the gate."""

import math

import keras
from keras import ops


def standardize_data_format(data_format):
    """Resolves `None` to the global Keras setting and validates the value."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def torch_default_uniform(fan_in):
    """PyTorch's default Conv/Linear weight init: U(-1/sqrt(fan_in), ...).

    The official ECA code keeps this default for its Conv1d, so new layers
    start from the same distribution as the reference implementation.
    """
    limit = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-limit, limit)


class AttentionLayer(keras.layers.Layer):
    """Base of the attention layers: rank/channel checks and shape handling.

    Subclasses implement `build_attention(channels)` and `call`. Inputs are
    feature maps of rank 3, 4 or 5 (1D, 2D, 3D) in either data format; the
    output has the input's shape.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)

    @property
    def channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def spatial_axes(self, rank):
        if self.data_format == "channels_last":
            return tuple(range(1, rank - 1))
        return tuple(range(2, rank))

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        rank = len(input_shape)
        if rank < 3:
            raise ValueError(
                f"{type(self).__name__} expects feature maps of rank >= 3 "
                "(batch, spatial..., channels), e.g. rank 4 for images. "
                f"Received: input_shape={input_shape}"
            )
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ValueError(
                f"{type(self).__name__} needs a known channel dimension "
                f"(axis {self.channel_axis} with data_format="
                f"{self.data_format!r}). Received: input_shape={input_shape}"
            )
        self.input_spec = keras.layers.InputSpec(
            ndim=rank, axes={self.channel_axis: channels}
        )
        self.build_attention(int(channels))
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class ChannelGate(AttentionLayer):
    """Base of the SE-style layers: squeeze, excite, sigmoid, rescale.

    `y = GAP(x)` is computed in float32 and handed to `excite(y)` (shape
    `(batch, channels)`, float32), whose result goes through a sigmoid and
    rescales `x` channel by channel. Subclasses implement `build_attention`
    and `excite`.

    Pooling and the gate stay in float32 under mixed precision: a float16
    sum over a large feature map overflows (65504 is the largest float16),
    and the gate's weights are small enough that float32 costs nothing.
    """

    def call(self, inputs):
        rank = len(inputs.shape)
        pooled = ops.mean(
            ops.cast(inputs, "float32"), axis=self.spatial_axes(rank)
        )
        gate = ops.cast(ops.sigmoid(self.excite(pooled)), inputs.dtype)
        channels = inputs.shape[self.channel_axis]
        if self.data_format == "channels_last":
            gate_shape = (-1,) + (1,) * (rank - 2) + (channels,)
        else:
            gate_shape = (-1, channels) + (1,) * (rank - 2)
        return inputs * ops.reshape(gate, gate_shape)
