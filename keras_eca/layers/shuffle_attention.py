"""SA: shuffle attention (Yang et al., ICASSP 2021)."""

import keras
import numpy as np
from keras import ops

from keras_eca._checks import as_python_number
from keras_eca._checks import is_finite_number
from keras_eca._checks import is_integer
from keras_eca.layers import fusion
from keras_eca.layers.base import AttentionLayer
from keras_eca.layers.base import matmul_mean
from keras_eca.layers.base import statistics_dtype
from keras_eca.layers.registry import register_attention


def shuffle_order(channels):
    """The channel shuffle (2 groups) of SA as a permutation.

    Output channel `q` of the shuffle reads input channel `order[q]`
    (`(q % 2) * C/2 + q // 2`): the halves interleaved.

    Args:
        channels: int. An even channel count `C`.

    Returns:
        An int NumPy array of length `C`.

    Example:

    >>> keras_eca.layers.shuffle_order(6).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    if channels % 2:
        raise ValueError(
            f"The channel shuffle needs an even channel count. "
            f"Received: channels={channels}"
        )
    return np.arange(channels).reshape(2, channels // 2).T.reshape(-1)


@register_attention("sa")
class ShuffleAttention(AttentionLayer):
    """Shuffle Attention (SA-Net).

    The channels are split into `groups` groups of `C / G` channels, each
    split into two halves of `C / (2G)` channels:

    - channel branch: `x0 * sigmoid(cweight * GAP(x0) + cbias)`;
    - spatial branch: `x1 * sigmoid(sweight * GN(x1) + sbias)`, where `GN`
      normalises every channel of every sample over its spatial positions
      (a GroupNorm with one channel per group, epsilon `1e-5`, with its own
      affine `gamma`, `beta`).

    The six vectors of length `C / (2G)` are shared by all groups, so the
    layer has `6 * C / (2G)` parameters. The halves are concatenated back
    and the channels are shuffled with 2 groups, as in the official code.
    Initial values follow the official code: `cweight = sweight = 0`,
    `cbias = sbias = 1`, `gamma = 1`, `beta = 0`.

    The layer works on either layout directly, with a dynamic batch size.
    Its statistics and gates are computed in float32 (float64 in a
    float64 layer). Both branches are
    evaluated as one channel-wise `x * sigmoid(a * x + b)` over the whole
    feature map, which is ~30 % cheaper than gating the halves apart.

    Moving the channels for the shuffle costs as much as the rest of the
    layer on CPU. When the layer follows a conv (and its BatchNorm), the
    shuffle can be folded into that conv instead: permute its output
    channels by `shuffle_order(C)` and pass `fold_shuffle=True`. The
    layer then takes its input in the shuffled channel order, applies
    every channel's parameters where the shuffle put that channel, and
    moves no data; the output is the same tensor. The
    `keras_eca.applications` builders do this, and their weight converters
    permute the official checkpoints accordingly.

    Args:
        groups: int. Number of groups `G`; the channel count must be
            divisible by `2 * groups`. Defaults to `64`.
        epsilon: float. Epsilon of the spatial-branch normalisation, finite
            and > 0. Defaults to `1e-5` (PyTorch's GroupNorm).
        fold_shuffle: bool. Whether the input already comes in the
            shuffled channel order (see above). Defaults to `False`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape / Output shape:
        Same shape as the input (rank 3, 4 or 5).

    Example:

    >>> x = np.random.rand(2, 8, 8, 256).astype("float32")
    >>> layer = keras_eca.layers.ShuffleAttention(groups=64)
    >>> tuple(layer(x).shape), layer.count_params()  # 6 * 256 / 128
    ((2, 8, 8, 256), 12)

    Folding the shuffle gives the same output from the permuted input:

    >>> order = keras_eca.layers.shuffle_order(256)
    >>> folded = keras_eca.layers.ShuffleAttention(groups=64, fold_shuffle=True)
    >>> folded.build(x.shape)
    >>> folded.set_weights(layer.get_weights())
    >>> got = keras.ops.convert_to_numpy(folded(x[..., order]))
    >>> bool(np.allclose(got, keras.ops.convert_to_numpy(layer(x)), atol=1e-6))
    True

    Reference:
    - [Yang et al., 2021](https://arxiv.org/abs/2102.00240)
    """

    def __init__(
        self, groups=64, epsilon=1e-5, fold_shuffle=False, data_format=None,
        **kwargs,
    ):
        if not is_integer(groups) or groups < 1:
            raise ValueError(
                f"`groups` must be a positive integer. Received: groups={groups!r}"
            )
        # nan passes `epsilon <= 0`; inf would make every rstd 0.
        if not is_finite_number(epsilon) or epsilon <= 0:
            raise ValueError(
                "`epsilon` must be a finite number > 0. "
                f"Received: epsilon={epsilon!r}"
            )
        if not isinstance(fold_shuffle, bool):
            raise ValueError(
                "`fold_shuffle` must be True or False. "
                f"Received: fold_shuffle={fold_shuffle!r}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.groups = int(groups)
        self.epsilon = as_python_number(epsilon)
        self.fold_shuffle = fold_shuffle

    def build_attention(self, channels):
        if channels % (2 * self.groups):
            valid = [g for g in range(1, channels // 2 + 1) if channels % (2 * g) == 0]
            raise ValueError(
                f"ShuffleAttention needs the channel count ({channels}) to be "
                f"divisible by 2 * groups. Group counts that work for "
                f"{channels} channels: {valid}. Received: groups={self.groups}"
            )
        half = channels // (2 * self.groups)
        for name, value in (
            ("cweight", "zeros"),
            ("cbias", "ones"),
            ("sweight", "zeros"),
            ("sbias", "ones"),
            ("gn_gamma", "ones"),
            ("gn_beta", "zeros"),
        ):
            weight = self.add_weight(
                name=name, shape=(half,), initializer=value, autocast=False
            )
            setattr(self, name, weight)

    def call(self, inputs):
        x, gate = self._flat_gate(inputs)
        out = x * gate
        if not self.fold_shuffle:
            out = _shuffle(out, self.data_format)
        out = ops.reshape(out, ops.shape(inputs))
        return ops.cast(out, inputs.dtype)

    def gate(self, inputs):
        """The gate of every channel at every position, before the shuffle.

        `call(inputs)` is `inputs * gate(inputs)`, channel-shuffled unless
        `fold_shuffle=True`. The gate has the input's layout and channel
        order: for a channel of a group's first half (the channel branch)
        it is `sigmoid(cweight * GAP(x0) + cbias)` at every position, for
        one of the second half (the spatial branch) `sigmoid(sweight *
        GN(x1) + sbias)` position by position. With `fold_shuffle=True`
        the input comes in the shuffled order, and so does the gate:
        channel `q` belongs to unshuffled channel `shuffle_order(C)[q]`.
        The layer is built on `inputs` first if it is not built yet.

        Args:
            inputs: a feature map of rank 3, 4 or 5.

        Returns:
            The gate, of the input's shape, in float32 (float64 in a
            float64 layer).

        Example:

        >>> x = np.random.rand(2, 4, 4, 8).astype("float32")
        >>> layer = keras_eca.layers.ShuffleAttention(groups=2)
        >>> gate = keras.ops.convert_to_numpy(layer.gate(x))
        >>> gate.shape
        (2, 4, 4, 8)
        >>> float(gate[0, 0, 0, 0])  # channel branch: sigmoid(0 * mean + 1)
        0.7310...
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        _, gate = self._flat_gate(inputs)
        return ops.reshape(gate, ops.shape(inputs))

    def _flat_gate(self, inputs):
        """The input as `(B, L, C)` or `(B, C, L)` in the statistics dtype,
        and the gate of that shape."""
        channels = inputs.shape[self.channel_axis]
        batch = ops.shape(inputs)[0]
        last = self.data_format == "channels_last"
        # (B, L, C) or (B, C, L): every op below is a plain channel-wise
        # broadcast; slicing the halves apart and stacking them back cost
        # about twice as much on CPU.
        flat_shape = (batch, -1, channels) if last else (batch, channels, -1)
        dtype = statistics_dtype(self.compute_dtype)
        x = ops.reshape(ops.cast(inputs, dtype), flat_shape)
        param_shape = (1, 1, channels) if last else (1, channels, 1)
        rate, slope_rate, bias = self._channel_constants(
            channels, param_shape, dtype
        )
        # Per sample and channel, gate = sigmoid(slope * x + offset).
        # Channel branch: slope 0, offset cweight * mean + cbias. Spatial
        # branch: the GroupNorm and both affines folded into one slope and
        # offset. Only these few (B, C) ops wait for the statistics.
        mean, variance = ops.moments(x, axes=[1 if last else 2], keepdims=True)
        slope = slope_rate * ops.rsqrt(variance + self.epsilon)
        offset = mean * (rate - slope) + bias
        return x, ops.sigmoid(x * slope + offset)

    def _channel_constants(self, channels, shape, dtype):
        """The weights as three per-channel vectors, in the input's channel
        order: `offset = mean * (rate - slope) + bias` and
        `slope = slope_rate * rstd` give both branches' gates."""
        cweight, cbias, sweight, sbias, gamma, beta = (
            ops.cast(w.value, dtype)  # tf.stack cannot take keras Variables
            for w in (
                self.cweight, self.cbias, self.sweight, self.sbias,
                self.gn_gamma, self.gn_beta,
            )
        )
        zeros = ops.zeros_like(cweight)
        table = ops.stack(  # (3 vectors, 2 branches: channel, spatial, half)
            [
                ops.stack([cweight, zeros]),
                ops.stack([zeros, sweight * gamma]),
                ops.stack([cbias, sweight * beta + sbias]),
            ]
        )
        half = channels // (2 * self.groups)
        table = ops.broadcast_to(ops.expand_dims(table, 1), (3, self.groups, 2, half))
        table = ops.reshape(table, (3, channels))
        if self.fold_shuffle:
            table = ops.take(table, shuffle_order(channels), axis=1)
        return [ops.reshape(table[i], shape) for i in range(3)]

    def get_config(self):
        config = super().get_config()
        config.update(
            groups=self.groups,
            epsilon=self.epsilon,
            fold_shuffle=self.fold_shuffle,
        )
        return config



@keras.saving.register_keras_serializable(package="keras_eca")
class FrozenShuffleAttention(AttentionLayer):
    """The inference form of `ShuffleAttention`: its six vectors baked into
    three per-channel ones.

    `ShuffleAttention` builds `rate`, `slope_rate` and `bias` (one value
    per channel, both branches and every group in one table) from its six
    weights on every call: a dozen small ops a graph runtime cannot fold
    away while they read variables. This layer stores the three vectors
    and computes, per sample and channel, `rstd = rsqrt(var + epsilon)`,
    `slope = slope_rate * rstd`, `offset = mean * (rate - slope) + bias`
    and returns `x * sigmoid(slope * x + offset)`, then the channel shuffle
    unless it is folded (`shuffle=False`). The variance is the mean of
    `d * d` for `d = x - mean`, not `ops.moments`' squared difference:
    TFLite has no int8 XNNPACK kernel for SQUARED_DIFFERENCE (5.97 ms
    against 0.29 ms for SUB + MUL on a 56x56x256 map, 2-core CPU; float
    0.26 against 0.16 ms), and TensorFlow runs both alike. Build it with
    `from_shuffle_attention(layer)`; `keras_eca.inference.inference_model`
    does it for every SA layer of a model.

    Called with `shortcut=` (a folded shuffle only), it returns
    `relu(out + shortcut)`, the residual add and ReLU after it. With
    `jit_compile=True` as well (the TensorFlow form), the mean and
    variance are matmuls with a ones vector (oneDNN's matmul reads the map
    ~1.8x faster than TensorFlow's reduction) and the gate, add and ReLU
    one XLA kernel (`keras_eca.layers.fusion`).

    Args:
        epsilon: float. The spatial-branch normalisation's epsilon.
        shuffle: bool. Whether to shuffle the channels after the gate
            (`False` when the input comes in the shuffled order).
        data_format: `"channels_last"` or `"channels_first"`.
        **kwargs: Base layer keyword arguments.

    Example:

    >>> x = np.random.rand(2, 4, 4, 16).astype("float32")
    >>> sa = keras_eca.layers.ShuffleAttention(groups=2)
    >>> y = keras.ops.convert_to_numpy(sa(x))
    >>> frozen = keras_eca.layers.FrozenShuffleAttention.from_shuffle_attention(sa)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(frozen(x)), y, atol=1e-6))
    True
    """

    def __init__(self, epsilon=1e-5, shuffle=True, data_format=None, **kwargs):
        if not is_finite_number(epsilon) or epsilon <= 0:
            raise ValueError(
                "`epsilon` must be a finite number > 0. "
                f"Received: epsilon={epsilon!r}"
            )
        if not isinstance(shuffle, bool):
            raise ValueError(
                f"`shuffle` must be True or False. Received: shuffle={shuffle!r}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.epsilon = as_python_number(epsilon)
        self.shuffle = shuffle

    @classmethod
    def from_shuffle_attention(cls, layer, name=None):
        """The frozen form of a built `ShuffleAttention` `layer`."""
        if not isinstance(layer, ShuffleAttention) or not layer.built:
            raise ValueError(
                "`layer` must be a built ShuffleAttention. "
                f"Received: layer={layer!r}"
            )
        channels = 2 * layer.groups * layer.cweight.shape[0]
        constants = layer._channel_constants(channels, (channels,), "float32")
        frozen = cls(
            epsilon=layer.epsilon,
            shuffle=not layer.fold_shuffle,
            data_format=layer.data_format,
            dtype=layer.dtype_policy,
            name=name or layer.name,
        )
        frozen.build_attention(channels)
        frozen.built = True
        for variable, value in zip(
            (frozen.rate, frozen.slope_rate, frozen.bias), constants
        ):
            variable.assign(ops.convert_to_numpy(value))
        return frozen

    def build_attention(self, channels):
        if channels % 2:
            raise ValueError(
                "FrozenShuffleAttention needs an even channel count. "
                f"Received: {channels} channels"
            )
        for name in ("rate", "slope_rate", "bias"):
            setattr(
                self,
                name,
                self.add_weight(
                    name=name, shape=(channels,), initializer="zeros",
                    autocast=False,
                ),
            )

    def call(self, inputs, shortcut=None, jit_compile=False):
        dtype = statistics_dtype(self.compute_dtype)
        x = ops.cast(inputs, dtype)
        rank = len(inputs.shape)
        shape = [1] * rank
        shape[self.channel_axis] = inputs.shape[self.channel_axis]
        rate, slope_rate, bias = (
            ops.reshape(ops.cast(w, dtype), shape)
            for w in (self.rate, self.slope_rate, self.bias)
        )
        axes = self.spatial_axes(rank)
        spatial = [inputs.shape[axis] for axis in axes]
        if jit_compile and None not in spatial:
            mean, variance = _matmul_moments(x, self.data_format)
        else:
            mean = ops.mean(x, axis=axes, keepdims=True)
            deviation = x - mean
            variance = ops.mean(deviation * deviation, axis=axes, keepdims=True)
        slope = slope_rate * ops.rsqrt(variance + self.epsilon)
        offset = mean * (rate - slope) + bias
        if shortcut is not None:
            if self.shuffle:
                raise ValueError(
                    f"FrozenShuffleAttention {self.name!r} takes `shortcut` "
                    "only with its shuffle folded (shuffle=False)."
                )
            return fusion.shuffle_gated_residual(
                x, slope, offset, ops.cast(shortcut, inputs.dtype), jit_compile
            )
        out = x * ops.sigmoid(x * slope + offset)
        if self.shuffle:
            out = _shuffle(out, self.data_format)
        return ops.cast(out, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, shuffle=self.shuffle)
        return config


def _matmul_moments(x, data_format):
    """`ops.moments(x, spatial axes, keepdims=True)` in its two passes (the
    mean, then the mean squared deviation from it: no cancellation), each
    mean a matmul (`matmul_mean`)."""
    mean = matmul_mean(x, data_format)
    deviation = x - mean
    return mean, matmul_mean(deviation * deviation, data_format)


def _shuffle(x, data_format):
    """SA's channel shuffle: output channel q reads (q % 2) * C/2 + q // 2."""
    shape = ops.shape(x)
    if data_format == "channels_last":
        channels = x.shape[-1]
        out = ops.reshape(x, (shape[0], -1, 2, channels // 2))
        out = ops.transpose(out, (0, 1, 3, 2))
    else:
        channels = x.shape[1]
        out = ops.reshape(x, (shape[0], 2, channels // 2, -1))
        out = ops.transpose(out, (0, 2, 1, 3))
    return ops.reshape(out, shape)
