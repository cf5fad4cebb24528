"""BatchNorm that hands its affine to the channel gate after it."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_eca")
class FoldedBatchNormalization(keras.layers.BatchNormalization):
    """A `BatchNormalization` that returns its affine instead of applying it.

    `FoldedBatchNormalization(...)(x)` returns `[x, scale, offset]`, float32
    vectors of the channel size with `BatchNormalization(...)(x) ==
    x * scale + offset` (batch statistics in training, moving statistics
    otherwise, and the same moving-average updates). A channel gate
    (`ChannelGate` subclasses: ECA, SE and its variants) called on that list
    normalises and rescales in one pass, `x * (scale * gate) + offset *
    gate`, and keeps only `x` for its gradient, which BatchNorm keeps
    anyway: the plain pair also stores the normalised map, a full feature
    map per block. The weights, their names and the arguments are those of
    `keras.layers.BatchNormalization`, so checkpoints load unchanged;
    `renorm` and masks are not supported.

    Example:

    >>> x = np.random.rand(2, 4, 4, 8).astype("float32")
    >>> norm = keras_eca.layers.FoldedBatchNormalization()
    >>> features, scale, offset = norm(x)
    >>> plain = keras.layers.BatchNormalization()
    >>> plain.build(x.shape)
    >>> folded = keras.ops.convert_to_numpy(features * scale + offset)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(plain(x)), folded, atol=1e-6))
    True
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
        if training and self.trainable:
            # Statistics in float32, as keras' BatchNormalization computes.
            mean, variance = ops.moments(
                ops.cast(inputs, "float32"),
                axes=self._reduction_axes,
                synchronized=self.synchronized,
            )
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
        return [inputs, scale, offset]

    def compute_output_spec(self, inputs, training=None, mask=None):
        channels = (inputs.shape[self.axis],)
        return [
            keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
            keras.KerasTensor(channels, dtype="float32"),
            keras.KerasTensor(channels, dtype="float32"),
        ]

    def compute_output_shape(self, input_shape):
        channels = (input_shape[self.axis],)
        return [tuple(input_shape), channels, channels]
