"""SA: shuffle attention (Yang et al., ICASSP 2021)."""

from keras import ops

from keras_eca.layers.base import AttentionLayer
from keras_eca.layers.registry import register_attention


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

    The layer works on the channels-last layout directly, with a dynamic
    batch size. Its statistics and gates are computed in float32.

    Args:
        groups: int. Number of groups `G`; the channel count must be
            divisible by `2 * groups`. Defaults to `64`.
        epsilon: float. Epsilon of the spatial-branch normalisation.
            Defaults to `1e-5` (PyTorch's GroupNorm).
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

    Reference:
    - [Yang et al., 2021](https://arxiv.org/abs/2102.00240)
    """

    def __init__(self, groups=64, epsilon=1e-5, data_format=None, **kwargs):
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(
                f"`groups` must be a positive integer. Received: groups={groups!r}"
            )
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(
                f"`epsilon` must be a number > 0. Received: epsilon={epsilon!r}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.groups = groups
        self.epsilon = epsilon

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
        channels = inputs.shape[self.channel_axis]
        half = channels // (2 * self.groups)
        batch = ops.shape(inputs)[0]
        x = ops.cast(inputs, "float32")
        if self.data_format == "channels_last":
            # (B, L, G, 2, half): per group, the two halves of its channels.
            x = ops.reshape(x, (batch, -1, self.groups, 2, half))
            x0, x1 = x[:, :, :, 0], x[:, :, :, 1]
            spatial_axis, param_shape = 1, (half,)
        else:
            x = ops.reshape(x, (batch, self.groups, 2, half, -1))
            x0, x1 = x[:, :, 0], x[:, :, 1]
            spatial_axis, param_shape = -1, (half, 1)

        def param(weight):
            return ops.reshape(weight, param_shape)

        channel_gate = ops.sigmoid(
            param(self.cweight) * ops.mean(x0, axis=spatial_axis, keepdims=True)
            + param(self.cbias)
        )
        mean = ops.mean(x1, axis=spatial_axis, keepdims=True)
        centered = x1 - mean
        variance = ops.mean(ops.square(centered), axis=spatial_axis, keepdims=True)
        normalized = centered * ops.rsqrt(variance + self.epsilon)
        normalized = normalized * param(self.gn_gamma) + param(self.gn_beta)
        spatial_gate = ops.sigmoid(
            param(self.sweight) * normalized + param(self.sbias)
        )
        halves_axis = 3 if self.data_format == "channels_last" else 2
        out = ops.stack([x0 * channel_gate, x1 * spatial_gate], axis=halves_axis)

        # Channel shuffle with 2 groups: output channel q reads channel
        # (q % 2) * C/2 + q // 2 of the concatenated result.
        if self.data_format == "channels_last":
            out = ops.reshape(out, (batch, -1, 2, channels // 2))
            out = ops.transpose(out, (0, 1, 3, 2))
        else:
            out = ops.reshape(out, (batch, 2, channels // 2, -1))
            out = ops.transpose(out, (0, 2, 1, 3))
        out = ops.reshape(out, ops.shape(inputs))
        return ops.cast(out, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, epsilon=self.epsilon)
        return config
