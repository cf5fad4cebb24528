"""BatchNorm that hands its affine to the channel gate after it."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_eca")
class FoldedBatchNormalization(keras.layers.BatchNormalization):
    """A `BatchNormalization` that returns its affine instead of applying it.

    `FoldedBatchNormalization(...)(x)` returns `[x, scale, offset, means]`:
    float32 `scale` and `offset` of the channel size with
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

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            raise ValueError(
                "FoldedBatchNormalization does not support masks. "
                f"Received: mask={mask!r}"
            )
        # Statistics in float32, as keras' BatchNormalization computes.
        values = ops.cast(inputs, "float32")
        spatial_axes = [axis for axis in self._reduction_axes if axis != 0]
        means = ops.mean(values, axis=spatial_axes)
        if training and self.trainable:
            # The variance as keras computes it; the mean from `means`, so
            # its gradient joins the gate's pooling gradient.
            batch_mean, variance = ops.moments(
                values, axes=self._reduction_axes, synchronized=self.synchronized
            )
            mean = batch_mean if self.synchronized else ops.mean(means, axis=0)
            self.moving_mean.assign(
                self.moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                self.moving_variance * self.momentum
                + variance * (1.0 - self.momentum)
            )
        else:
            mean = ops.cast(self.moving_mean, "float32")
            variance = ops.cast(self.moving_variance, "float32")
        scale = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            scale = scale * ops.cast(self.gamma, "float32")
        offset = -mean * scale
        if self.center:
            offset = offset + ops.cast(self.beta, "float32")
        return [inputs, scale, offset, means]

    def compute_output_spec(self, inputs, training=None, mask=None):
        channels = inputs.shape[self.axis]
        return [
            keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
            keras.KerasTensor((channels,), dtype="float32"),
            keras.KerasTensor((channels,), dtype="float32"),
            keras.KerasTensor((inputs.shape[0], channels), dtype="float32"),
        ]

    def compute_output_shape(self, input_shape):
        channels = input_shape[self.axis]
        return [
            tuple(input_shape),
            (channels,),
            (channels,),
            (input_shape[0], channels),
        ]
