"""SE (Hu et al., 2018) and the SE variants of the ECA paper's Table 2."""

import keras
from keras import ops

from keras_eca._checks import is_integer
from keras_eca.layers.base import ChannelGate
from keras_eca.layers.base import torch_default_uniform
from keras_eca.layers.registry import register_attention


def _serialize_initializer(initializer):
    if initializer is None:
        return None
    return keras.initializers.serialize(initializer)


def _get_initializer(initializer):
    if initializer is None:
        return None
    return keras.initializers.get(initializer)


class _InitializerMixin:
    """`kernel_initializer=None` means PyTorch's default for that weight."""

    def _kernel_init(self, fan_in):
        return self.kernel_initializer or torch_default_uniform(fan_in)

    def _initializer_config(self):
        return {
            "kernel_initializer": _serialize_initializer(
                self.kernel_initializer
            )
        }


@register_attention("se")
class SqueezeExcitation(_InitializerMixin, ChannelGate):
    """Squeeze-and-Excitation (SE).

    `x * sigmoid(W2 activation(W1 GAP(x)))` with `W1: C -> C / r` and
    `W2: C / r -> C`: `2 C^2 / r` weights, plus `C / r + C` biases when
    `use_bias=True`.

    Args:
        reduction_ratio: int. `r`, the channel reduction of the bottleneck.
            Must not exceed the channel count. Defaults to `16`.
        use_bias: bool. Whether both projections have a bias. Defaults to
            `True` (the SENet code; the ECA paper counts no biases).
        activation: activation between the projections. Defaults to
            `"relu"`.
        kernel_initializer: initializer of both kernels. `None` uses
            PyTorch's default. Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape / Output shape:
        Same shape as the input (rank 3, 4 or 5).

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> layer = keras_eca.layers.SqueezeExcitation(reduction_ratio=16)
    >>> tuple(layer(x).shape), layer.count_params()  # 2 * 64 * 4 + 4 + 64
    ((2, 8, 8, 64), 580)

    Reference:
    - [Hu et al., 2018](https://arxiv.org/abs/1709.01507)
    """

    linear_excitation = False  # the ReLU between the two FCs

    def __init__(
        self,
        reduction_ratio=16,
        use_bias=True,
        activation="relu",
        kernel_initializer=None,
        data_format=None,
        **kwargs,
    ):
        if not is_integer(reduction_ratio) or reduction_ratio < 1:
            raise ValueError(
                "`reduction_ratio` must be a positive integer. "
                f"Received: reduction_ratio={reduction_ratio!r}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.reduction_ratio = int(reduction_ratio)
        self.use_bias = bool(use_bias)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = _get_initializer(kernel_initializer)

    def build_attention(self, channels):
        if self.reduction_ratio > channels:
            raise ValueError(
                "`reduction_ratio` must not exceed the number of channels "
                f"({channels}). Received: reduction_ratio="
                f"{self.reduction_ratio}"
            )
        hidden = channels // self.reduction_ratio
        # Creation order = PyTorch order: fc1 weight, fc1 bias, fc2 ...
        self.squeeze_kernel = self.add_weight(
            name="squeeze_kernel",
            shape=(channels, hidden),
            initializer=self._kernel_init(channels),
            autocast=False,
        )
        if self.use_bias:
            self.squeeze_bias = self.add_weight(
                name="squeeze_bias",
                shape=(hidden,),
                initializer="zeros",
                autocast=False,
            )
        self.excite_kernel = self.add_weight(
            name="excite_kernel",
            shape=(hidden, channels),
            initializer=self._kernel_init(hidden),
            autocast=False,
        )
        if self.use_bias:
            self.excite_bias = self.add_weight(
                name="excite_bias",
                shape=(channels,),
                initializer="zeros",
                autocast=False,
            )

    def excite(self, pooled):
        dtype = pooled.dtype  # the weights' own under a float16 policy
        hidden = ops.matmul(pooled, ops.cast(self.squeeze_kernel, dtype))
        if self.use_bias:
            hidden = hidden + ops.cast(self.squeeze_bias, dtype)
        hidden = self.activation(hidden)
        out = ops.matmul(hidden, ops.cast(self.excite_kernel, dtype))
        if self.use_bias:
            out = out + ops.cast(self.excite_bias, dtype)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction_ratio=self.reduction_ratio,
            use_bias=self.use_bias,
            activation=keras.activations.serialize(self.activation),
            **self._initializer_config(),
        )
        return config


@register_attention("se_var1")
class SqueezeExcitationVar1(ChannelGate):
    """SE-Var1 of the ECA paper: `x * sigmoid(GAP(x))`, no parameters.

    Args:
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> tuple(keras_eca.layers.SqueezeExcitationVar1()(x).shape)
    (2, 8, 8, 64)

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151), Table 2
    """

    def build_attention(self, channels):
        pass

    def excite(self, pooled):
        return pooled


@register_attention("se_var2")
class SqueezeExcitationVar2(_InitializerMixin, ChannelGate):
    """SE-Var2 of the ECA paper: `x * sigmoid(w * GAP(x))`, `C` parameters.

    One weight per channel (a diagonal `W`), no cross-channel interaction.

    Args:
        kernel_initializer: initializer of the per-channel weight. `None`
            uses ones (the gate starts as SE-Var1). Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> tuple(keras_eca.layers.SqueezeExcitationVar2()(x).shape)
    (2, 8, 8, 64)

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151), Table 2
    """

    def __init__(self, kernel_initializer=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.kernel_initializer = _get_initializer(kernel_initializer)

    def build_attention(self, channels):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(channels,),
            initializer=self.kernel_initializer or "ones",
            autocast=False,
        )

    def excite(self, pooled):
        return pooled * ops.cast(self.kernel, pooled.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(self._initializer_config())
        return config


@register_attention("se_var3")
class SqueezeExcitationVar3(_InitializerMixin, ChannelGate):
    """SE-Var3 of the ECA paper: `x * sigmoid(W GAP(x))`, one `C x C` FC.

    Args:
        kernel_initializer: initializer of the `(C, C)` kernel. `None` uses
            PyTorch's default. Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> layer = keras_eca.layers.SqueezeExcitationVar3()
    >>> tuple(layer(x).shape), layer.count_params()
    ((2, 8, 8, 64), 4096)

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151), Table 2
    """

    def __init__(self, kernel_initializer=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.kernel_initializer = _get_initializer(kernel_initializer)

    def build_attention(self, channels):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(channels, channels),
            initializer=self._kernel_init(channels),
            autocast=False,
        )

    def excite(self, pooled):
        return ops.matmul(pooled, ops.cast(self.kernel, pooled.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(self._initializer_config())
        return config


@register_attention("se_gc")
class SqueezeExcitationGroupConv(_InitializerMixin, ChannelGate):
    """SE-GC of the ECA paper: `x * sigmoid(GC(GAP(x)))`, a grouped FC.

    The pooled channels are split into `G` groups, each with its own
    `(C/G, C/G)` projection: `C^2 / G` parameters. The paper's SE-GC1 is
    `groups=16`; SE-GC2 (`C/16` groups) is `group_width=16`; SE-GC3 (`C/8`
    groups) is `group_width=8`.

    Args:
        groups: int or `None`. Number of groups `G`. Defaults to `None`,
            which means 16 unless `group_width` is given.
        group_width: int or `None`. Channels per group instead of a group
            count (`G = C / group_width`). Defaults to `None`.
        kernel_initializer: initializer of the `(G, C/G, C/G)` kernel.
            `None` uses PyTorch's default. Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> layer = keras_eca.layers.SqueezeExcitationGroupConv(group_width=16)
    >>> tuple(layer(x).shape), layer.count_params()  # SE-GC2: 16 * C
    ((2, 8, 8, 64), 1024)

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151), Table 2
    """

    def __init__(
        self,
        groups=None,
        group_width=None,
        kernel_initializer=None,
        data_format=None,
        **kwargs,
    ):
        for arg_name, value in (("groups", groups), ("group_width", group_width)):
            if value is not None and (not is_integer(value) or value < 1):
                raise ValueError(
                    f"`{arg_name}` must be a positive integer or None. "
                    f"Received: {arg_name}={value!r}"
                )
        if groups is not None and group_width is not None:
            raise ValueError(
                "Pass either `groups` or `group_width`, not both. "
                f"Received: groups={groups}, group_width={group_width}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.groups = None if groups is None else int(groups)
        self.group_width = None if group_width is None else int(group_width)
        self.kernel_initializer = _get_initializer(kernel_initializer)

    def resolve_groups(self, channels):
        """The number of groups used for `channels` input channels."""
        if self.group_width is not None:
            if channels % self.group_width:
                raise ValueError(
                    f"The number of channels ({channels}) must be divisible "
                    f"by `group_width`. Received: group_width="
                    f"{self.group_width}"
                )
            return channels // self.group_width
        groups = 16 if self.groups is None else self.groups
        if channels % groups:
            raise ValueError(
                f"The number of channels ({channels}) must be divisible by "
                f"`groups`. Received: groups={groups}"
            )
        return groups

    def build_attention(self, channels):
        groups = self.resolve_groups(channels)
        width = channels // groups
        self.kernel = self.add_weight(
            name="kernel",
            shape=(groups, width, width),
            initializer=self._kernel_init(width),
            autocast=False,
        )

    def excite(self, pooled):
        groups, width, _ = self.kernel.shape
        grouped = ops.reshape(pooled, (-1, groups, width))
        kernel = ops.cast(self.kernel, pooled.dtype)
        out = ops.einsum("bgi,gio->bgo", grouped, kernel)
        return ops.reshape(out, (-1, groups * width))

    def get_config(self):
        config = super().get_config()
        config.update(
            groups=self.groups,
            group_width=self.group_width,
            **self._initializer_config(),
        )
        return config
