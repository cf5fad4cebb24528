"""BatchNorm that hands its affine to the channel gate after it."""

import math

import keras
from keras import ops

from keras_eca.layers.base import spatial_axes
from keras_eca.layers.base import statistics_dtype
from keras_eca.layers.base import standardize_data_format


@keras.saving.register_keras_serializable(package="keras_eca")
class FoldedBatchNormalization(keras.layers.BatchNormalization):
    """A `BatchNormalization` that returns its affine instead of applying it.

    `FoldedBatchNormalization(...)(x)` returns `[x, scale, offset, means]`:
    float32 (float64 in a float64 layer) `scale` and `offset` of the
    channel size with
    `BatchNormalization(...)(x) == x * scale + offset` (batch statistics in
    training, moving statistics otherwise, and the same moving-average
    updates), and `means`, the float32 `(batch, channels)` spatial means of
    `x`. A channel gate (`ChannelGate` subclasses: ECA, SE and its
    variants) called on that list pools `means * scale + offset` and
    normalises and rescales in one pass, `x * (scale * gate) + offset *
    gate`. For training it keeps only `x`, which BatchNorm keeps anyway
    (the plain pair also stores the normalised map, a full feature map per
    block), and the batch mean is the mean of `means`, so the pooling and
    the statistics share one reduction and one gradient. The weights,
    their names and the arguments are those of
    `keras.layers.BatchNormalization`, so checkpoints load unchanged;
    `renorm` and masks are not supported.

    Called on `[x, means]`, it takes the spatial means of `x` from the
    caller instead of reducing `x`: `means` is `(batch, channels)` or the
    same with the spatial axes kept as 1. The applications pass
    `conv(mean(h))` for the 1x1 conv `x = conv(h)` of a bottleneck: a
    bias-free 1x1 conv commutes with the spatial mean, and `h` has a
    quarter of the channels, so the pooling reads a quarter of the data.

    Example:

    >>> x = np.random.rand(2, 4, 4, 8).astype("float32")
    >>> norm = keras_eca.layers.FoldedBatchNormalization()
    >>> features, scale, offset, means = norm(x)
    >>> plain = keras.layers.BatchNormalization()
    >>> plain.build(x.shape)
    >>> folded = keras.ops.convert_to_numpy(features * scale + offset)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(plain(x)), folded, atol=1e-6))
    True
    >>> tuple(means.shape)
    (2, 8)
    """

    def __init__(self, **kwargs):
        if kwargs.get("renorm"):
            raise ValueError(
                "FoldedBatchNormalization does not support batch "
                f"renormalization. Received: renorm={kwargs['renorm']!r}"
            )
        super().__init__(**kwargs)

    def build(self, input_shape):
        if _is_shape_list(input_shape) and len(input_shape) != 2:
            _split(input_shape)  # raises: x or [x, means] only
        features = input_shape[0] if _is_pair(input_shape) else input_shape
        if len(features) < 3:
            # No spatial axes: there would be nothing for `means` to pool.
            raise ValueError(
                "FoldedBatchNormalization expects feature maps of rank >= 3 "
                "(batch, spatial..., channels), e.g. rank 4 for images; use "
                "keras.layers.BatchNormalization on vectors. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        if _is_pair(input_shape):
            super().build(input_shape[0])
            self.input_spec = None  # [x, means]: checked in `call`
            return
        super().build(input_shape)

    def call(self, inputs, training=None, mask=None):
        if mask is not None and any(
            m is not None for m in keras.tree.flatten(mask)
        ):
            raise ValueError(
                "FoldedBatchNormalization does not support masks. "
                f"Received: mask={mask!r}"
            )
        inputs, means = _split(inputs)
        channels = inputs.shape[self.axis]
        # Statistics in float32 (float64 in a float64 layer), as keras'
        # BatchNormalization computes.
        dtype = statistics_dtype(self.compute_dtype)
        values = ops.cast(inputs, dtype)
        if means is None:
            spatial_axes = [a for a in self._reduction_axes if a != 0]
            means = ops.mean(values, axis=spatial_axes)
        else:
            if math.prod(d for d in means.shape[1:] if d is not None) != channels:
                raise ValueError(
                    "FoldedBatchNormalization([x, means]) needs one mean per "
                    f"channel of x ({channels}). Received: means of shape "
                    f"{tuple(means.shape)} for x of shape {tuple(inputs.shape)}"
                )
            means = ops.reshape(ops.cast(means, dtype), (-1, channels))
        if training and self.trainable:
            # The variance as keras computes it; the mean from `means`, so
            # its gradient joins the gate's pooling gradient.
            batch_mean, variance = ops.moments(
                values, axes=self._reduction_axes, synchronized=self.synchronized
            )
            mean = batch_mean if self.synchronized else ops.mean(means, axis=0)
            # Moving averages in `dtype`, stored in the variables' own (half
            # under a pure float16 policy).
            for variable, value in (
                (self.moving_mean, mean),
                (self.moving_variance, variance),
            ):
                average = ops.cast(variable, dtype) * self.momentum
                average = average + value * (1.0 - self.momentum)
                variable.assign(ops.cast(average, variable.dtype))
        else:
            mean = ops.cast(self.moving_mean, dtype)
            variance = ops.cast(self.moving_variance, dtype)
        scale = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            scale = scale * ops.cast(self.gamma, dtype)
        offset = -mean * scale
        if self.center:
            offset = offset + ops.cast(self.beta, dtype)
        return [inputs, scale, offset, means]

    def compute_output_spec(self, inputs, training=None, mask=None):
        inputs, _ = _split(inputs)
        channels = inputs.shape[self.axis]
        dtype = statistics_dtype(self.compute_dtype)
        return [
            keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
            keras.KerasTensor((channels,), dtype=dtype),
            keras.KerasTensor((channels,), dtype=dtype),
            keras.KerasTensor((inputs.shape[0], channels), dtype=dtype),
        ]

    def compute_output_shape(self, input_shape):
        if _is_pair(input_shape):
            input_shape = input_shape[0]
        channels = input_shape[self.axis]
        return [
            tuple(input_shape),
            (channels,),
            (channels,),
            (input_shape[0], channels),
        ]


@keras.saving.register_keras_serializable(package="keras_eca")
class SpatialMean(keras.layers.Layer):
    """The float32 (float64 in a float64 layer) spatial mean, size-1 axes kept.

    `(batch, H, W, C)` -> `(batch, 1, 1, C)` (channels_last) or
    `(batch, C, 1, 1)` (channels_first), for any rank >= 3. The
    applications pool a bottleneck's 1x1-conv input with it to hand a
    `FoldedBatchNormalization` its means.
    """

    def __init__(self, data_format=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs):
        axes = spatial_axes(self.data_format, len(inputs.shape))
        dtype = statistics_dtype(self.compute_dtype)
        return ops.mean(ops.cast(inputs, dtype), axis=axes, keepdims=True)

    def compute_output_spec(self, inputs):
        shape = list(inputs.shape)
        for axis in spatial_axes(self.data_format, len(shape)):
            shape[axis] = 1
        return keras.KerasTensor(
            tuple(shape), dtype=statistics_dtype(self.compute_dtype)
        )

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


def _is_shape_list(input_shape):
    return isinstance(input_shape, (list, tuple)) and all(
        isinstance(s, (list, tuple)) for s in input_shape
    )


def _is_pair(input_shape):
    return _is_shape_list(input_shape) and len(input_shape) == 2


def _split(inputs):
    """`x` or `[x, means]` -> `(x, means or None)`."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != 2:
            raise ValueError(
                "FoldedBatchNormalization takes a feature map or "
                f"[features, means]. Received: {len(inputs)} inputs"
            )
        return inputs[0], inputs[1]
    return inputs, None
