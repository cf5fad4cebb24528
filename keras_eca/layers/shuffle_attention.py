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

    The layer works on either layout directly, with a dynamic batch size.
    Its statistics and gates are computed in float32. Both branches are
    evaluated as one channel-wise `x * sigmoid(a * (x - mean) + b)` over the
    whole feature map, which is ~30 % cheaper than gating the halves apart.

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
        last = self.data_format == "channels_last"
        # (B, L, C) or (B, C, L): every op below is a plain channel-wise
        # broadcast; slicing the halves apart and stacking them back cost
        # about twice as much on CPU.
        flat_shape = (batch, -1, channels) if last else (batch, channels, -1)
        x = ops.reshape(ops.cast(inputs, "float32"), flat_shape)
        spatial_axis = 1 if last else 2
        mean = ops.mean(x, axis=spatial_axis, keepdims=True)
        centered = x - mean
        variance = ops.mean(
            ops.square(centered), axis=spatial_axis, keepdims=True
        )

        def by_branch(stat):  # (B, C) view as (B, G, branch, half)
            return ops.reshape(stat, (batch, self.groups, 2, half))

        mean = by_branch(mean)
        rstd = ops.rsqrt(by_branch(variance)[:, :, 1] + self.epsilon)
        # Both branches as sigmoid(centered * slope + offset) per channel.
        # Channel branch: slope 0, offset cweight * GAP + cbias. Spatial
        # branch: GroupNorm and its affine folded into one slope and offset.
        slope = ops.stack(
            [ops.zeros_like(rstd), self.sweight * self.gn_gamma * rstd], axis=2
        )
        offset = ops.stack(
            [
                self.cweight * mean[:, :, 0] + self.cbias,
                ops.broadcast_to(
                    self.sweight * self.gn_beta + self.sbias, ops.shape(rstd)
                ),
            ],
            axis=2,
        )
        param_shape = (batch, 1, channels) if last else (batch, channels, 1)
        gate = ops.sigmoid(
            centered * ops.reshape(slope, param_shape)
            + ops.reshape(offset, param_shape)
        )
        out = x * gate

        # Channel shuffle with 2 groups: output channel q reads channel
        # (q % 2) * C/2 + q // 2.
        if last:
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
