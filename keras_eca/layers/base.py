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


def spatial_axes(data_format, rank):
    """The spatial axes of a rank-`rank` feature map in `data_format`."""
    if data_format == "channels_last":
        return tuple(range(1, rank - 1))
    return tuple(range(2, rank))


def matmul_mean(x, data_format):
    """The spatial mean of `x` (size-1 axes kept) as a matmul by a `1/L`
    vector over its `L` positions: `(1, 1, L) @ (B, L, C)`, or `(B, C, L)
    @ (1, L, 1)`. SA's statistics in the TensorFlow form use it (oneDNN's
    matmul read an 8x56x56x256 map in 1.29 ms against 2.33 ms for the
    reduction, 2-core CPU); for channel gates' means it measured slower in
    a whole SavedModel, and TFLite's MEAN is faster. Needs static spatial
    dims."""
    rank = len(x.shape)
    last = data_format == "channels_last"
    spatial = [x.shape[axis] for axis in spatial_axes(data_format, rank)]
    if None in spatial:
        raise ValueError(
            "matmul_mean needs static spatial dimensions. Received: shape "
            f"{tuple(x.shape)}"
        )
    length = math.prod(spatial)
    channels = x.shape[-1 if last else 1]
    flat = ops.reshape(x, (-1, length, channels) if last else (-1, channels, length))
    weights = ops.full(
        (1, 1, length) if last else (1, length, 1), 1.0 / length, dtype=x.dtype
    )
    means = ops.matmul(weights, flat) if last else ops.matmul(flat, weights)
    kept = [-1] + [1] * (rank - 1)
    kept[-1 if last else 1] = channels
    return ops.reshape(means, kept)


def statistics_dtype(compute_dtype):
    """The dtype of the pooling, statistics and gates of a layer computing
    in `compute_dtype`: float32, never less (a float16 sum over a large map
    overflows), and float64 in a float64 layer, so float64 models stay
    float64 end to end."""
    return "float64" if compute_dtype == "float64" else "float32"


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
        return spatial_axes(self.data_format, rank)

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
    and `excite`. A float64 layer does all of it in float64.

    Pooling and the gate stay in float32 under mixed precision: a float16
    sum over a large feature map overflows (65504 is the largest float16),
    and the gate's weights are small enough that float32 costs nothing.

    Called on the `[features, scale, offset, means]` of a
    `FoldedBatchNormalization`, the layer gates `features * scale + offset`
    without materialising it: it pools `means * scale + offset` and returns
    `features * (scale * gate) + offset * gate`, one pass, with no stored
    normalised map for training. The applications build every channel gate
    that way.

    Called on `[features, means]`, with `means` the spatial means of
    `features` (`(batch, channels)`, or with the spatial axes kept as 1),
    the layer gates `features` without pooling it. The inference form of a
    model (`keras_eca.inference.inference_model`) calls its gates this way
    where the means come cheaper from a narrower tensor.
    """

    # Whether `excite` is linear and bias-free (`excite(m) == m @ E` for a
    # C x C matrix E): the inference form then folds it into the conv the
    # pooled input goes through. SE's ReLU makes it False.
    linear_excitation = True

    def __init__(self, *args, **kwargs):
        # Inputs are cast in `call`, not by Keras: the scale and offset of
        # a folded BatchNorm must stay float32 under mixed precision.
        kwargs.setdefault("autocast", False)
        super().__init__(*args, **kwargs)

    def build(self, input_shape):
        if _is_folded(input_shape) or _is_pair(input_shape):
            # [features, scale, offset, means] of a FoldedBatchNormalization,
            # or [features, means].
            super().build(input_shape[0])
            self.input_spec = None
            return
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        if _is_folded(input_shape) or _is_pair(input_shape):
            return tuple(input_shape[0])
        return tuple(input_shape)

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            return self._means_call(*inputs)
        if isinstance(inputs, (list, tuple)):
            return self._folded_call(*inputs)
        inputs = ops.cast(inputs, self.compute_dtype)
        pooled = ops.mean(
            ops.cast(inputs, statistics_dtype(self.compute_dtype)),
            axis=self.spatial_axes(len(inputs.shape)),
        )
        return self._rescale(inputs, pooled)

    def _means_call(self, features, means):
        features = ops.cast(features, self.compute_dtype)
        channels = features.shape[self.channel_axis]
        if math.prod(d for d in means.shape[1:] if d is not None) != channels:
            raise ValueError(
                f"{type(self).__name__}([features, means]) needs one mean per "
                f"channel of features ({channels}). Received: means of shape "
                f"{tuple(means.shape)} for features of shape "
                f"{tuple(features.shape)}"
            )
        dtype = statistics_dtype(self.compute_dtype)
        pooled = ops.reshape(ops.cast(means, dtype), (-1, channels))
        return self._rescale(features, pooled)

    def _rescale(self, inputs, pooled):
        """`inputs * sigmoid(excite(pooled))`, channel by channel. The
        excitation is reshaped to broadcast before the sigmoid: it meets
        the reshape inside `excite` (ECA's conv layout), and graph
        optimisers (Grappler, the TFLite converter) merge the two."""
        gate = ops.sigmoid(self._per_channel(self.excite(pooled), inputs))
        return inputs * ops.cast(gate, inputs.dtype)

    def gate(self, inputs):
        """The channel gate `sigmoid(excite(GAP(x)))` this layer applies.

        `call(inputs)` is `x * gate(inputs)` channel by channel, with `x`
        the input feature map, or `features * scale + offset` for the
        `[features, scale, offset, means]` of a `FoldedBatchNormalization`.
        The layer is built on `inputs` first if it is not built yet.

        Args:
            inputs: what `call` takes: a feature map, or the four outputs
                of a `FoldedBatchNormalization`.

        Returns:
            The gate, shape `(batch, channels)`, in float32 (float64 in a
            float64 layer) whatever the input dtype.

        Example:

        >>> x = np.random.rand(2, 4, 4, 8).astype("float32")
        >>> layer = keras_eca.layers.SqueezeExcitationVar1()
        >>> gate = keras.ops.convert_to_numpy(layer.gate(x))
        >>> gate.shape
        (2, 8)
        >>> bool(np.allclose(gate, 1 / (1 + np.exp(-x.mean(axis=(1, 2))))))
        True
        """
        if not self.built:
            self.build(keras.tree.map_structure(lambda t: tuple(t.shape), inputs))
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            dtype = statistics_dtype(self.compute_dtype)
            channels = inputs[0].shape[self.channel_axis]
            pooled = ops.reshape(ops.cast(inputs[1], dtype), (-1, channels))
            return ops.sigmoid(self.excite(pooled))
        if isinstance(inputs, (list, tuple)):
            _, scale, offset, means = self._check_folded(*inputs)
            dtype = statistics_dtype(self.compute_dtype)
            return self._folded_gate(
                ops.cast(scale, dtype), ops.cast(offset, dtype), means
            )
        return self._plain_gate(ops.cast(inputs, self.compute_dtype))

    def _plain_gate(self, inputs):
        pooled = ops.mean(
            ops.cast(inputs, statistics_dtype(self.compute_dtype)),
            axis=self.spatial_axes(len(inputs.shape)),
        )
        return ops.sigmoid(self.excite(pooled))

    def _folded_gate(self, scale, offset, means):
        """The gate of `features * scale + offset` from the features'
        spatial `means`; `scale` and `offset` already in the statistics
        dtype."""
        pooled = ops.cast(means, scale.dtype) * scale + offset
        return ops.sigmoid(self.excite(pooled))

    def _per_channel(self, vectors, like):
        """`(batch, C)` reshaped to broadcast over the feature map `like`."""
        rank, channels = len(like.shape), like.shape[self.channel_axis]
        if self.data_format == "channels_last":
            shape = (-1,) + (1,) * (rank - 2) + (channels,)
        else:
            shape = (-1, channels) + (1,) * (rank - 2)
        return ops.reshape(vectors, shape)

    def _check_folded(self, features, scale, offset, means):
        if len(features.shape) < 3 or len(scale.shape) != 1:
            raise ValueError(
                f"{type(self).__name__} takes a feature map or the "
                "`[features, scale, offset, means]` of a "
                "FoldedBatchNormalization. Received shapes: "
                f"{[tuple(t.shape) for t in (features, scale, offset, means)]}"
            )
        return features, scale, offset, means

    def _folded_call(self, features, scale, offset, means):
        """The gate of `features * scale + offset` (a folded BatchNorm) in
        one pass: `features * (scale * gate) + offset * gate`."""
        self._check_folded(features, scale, offset, means)
        dtype = statistics_dtype(self.compute_dtype)
        values = ops.cast(features, dtype)
        scale = ops.cast(scale, dtype)
        offset = ops.cast(offset, dtype)
        gate = self._folded_gate(scale, offset, means)
        out = values * self._per_channel(scale * gate, values)
        out = out + self._per_channel(offset * gate, values)
        return ops.cast(out, self.compute_dtype)


def _is_folded(input_shape):
    """Whether `input_shape` is the four shapes of a folded BatchNorm."""
    return _is_shape_list(input_shape, 4)


def _is_pair(input_shape):
    """Whether `input_shape` is the shapes of `[features, means]`."""
    return _is_shape_list(input_shape, 2)


def _is_shape_list(input_shape, length):
    return (
        isinstance(input_shape, (list, tuple))
        and len(input_shape) == length
        and all(isinstance(s, (list, tuple)) for s in input_shape)
    )


@keras.saving.register_keras_serializable(package="keras_eca")
class LogitGate(keras.layers.Layer):
    """`features * sigmoid(logits)`, for logits that broadcast over the
    features, e.g. `(batch, 1, 1, channels)`.

    The inference form of a linear channel gate on a bottleneck
    (`keras_eca.inference`): the excitation is folded into the 1x1 conv
    of the pooled input, which returns the logits. The sigmoid runs in
    float32 (float64 in a float64 layer).

    Example:

    >>> x = np.ones((1, 2, 2, 3), "float32")
    >>> logits = np.zeros((1, 1, 1, 3), "float32")
    >>> keras.ops.convert_to_numpy(keras_eca.layers.LogitGate()([x, logits]))[0, 0, 0]
    array([0.5, 0.5, 0.5], dtype=float32)
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def call(self, inputs):
        features, logits = inputs
        features = ops.cast(features, self.compute_dtype)
        gate = ops.sigmoid(ops.cast(logits, statistics_dtype(self.compute_dtype)))
        return features * ops.cast(gate, features.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
