"""ECA: efficient channel attention (Wang et al., CVPR 2020), and ECA-NS."""

import math

import keras
from keras import ops

from keras_eca._checks import as_python_number
from keras_eca._checks import is_finite_number
from keras_eca._checks import is_integer
from keras_eca.layers.base import ChannelGate
from keras_eca.layers.base import torch_default_uniform
from keras_eca.layers.registry import register_attention

PADDINGS = ("zeros", "circular")


def adaptive_kernel_size(channels, gamma=2, beta=1, min_kernel_size=1):
    """The paper's adaptive kernel size `k = psi(C)` (Eq. 12, Figure 3 code).

    `t = int(|(log2(C) + beta) / gamma|)`, then `k = t` if `t` is odd, else
    `t + 1`, then at least `min_kernel_size` (timm uses 3; the paper none).

    Example:

    >>> [keras_eca.layers.adaptive_kernel_size(c) for c in (64, 128, 2048)]
    [3, 5, 7]
    """
    _check_positive_int("channels", channels)
    _check_rule(gamma, beta, min_kernel_size)
    t = int(abs((math.log2(channels) + beta) / gamma))
    k = t if t % 2 else t + 1
    return max(k, int(min_kernel_size))


def _check_positive_int(arg_name, value, odd=False):
    ok = is_integer(value) and value > 0 and (value % 2 == 1 or not odd)
    if not ok:
        kind = "a positive odd integer" if odd else "a positive integer"
        raise ValueError(
            f"`{arg_name}` must be {kind}. Received: {arg_name}={value!r}"
        )


def _check_rule(gamma, beta, min_kernel_size):
    # nan passes `gamma <= 0` and would only fail in int(nan) when built.
    if not is_finite_number(gamma) or gamma <= 0:
        raise ValueError(
            f"`gamma` must be a finite number > 0. Received: gamma={gamma!r}"
        )
    if not is_finite_number(beta):
        raise ValueError(
            f"`beta` must be a finite number. Received: beta={beta!r}"
        )
    _check_positive_int("min_kernel_size", min_kernel_size)


def _wrap_channels(pooled, pad):
    """`pooled` (batch, C) with `pad` channels wrapped around on each side;
    tiled first when the padding is wider than the channels."""
    channels = pooled.shape[-1]
    copies = 2 * (-(-pad // channels)) + 1
    tiled = ops.concatenate([pooled] * copies, axis=-1)
    start = (copies // 2) * channels - pad
    return tiled[:, start : start + channels + 2 * pad]


def channel_conv(pooled, kernel, padding):
    """PyTorch's `Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)` along
    the channel axis of `pooled` (batch, C), for a `(k,)` kernel.

    The channels are the width of a one-row, one-feature image, so the
    whole convolution is one 2D conv op between two reshapes (a 1D conv
    lowers to four ops, expand-dims and squeeze around a 2D conv, in
    TensorFlow and TFLite alike). At batch 1 on TF-CPU, where every tiny
    op costs tens of microseconds, k shifted slices, multiplies and adds
    took ~5 % of ResNet-50's time and the one conv ~3 %.
    """
    k = kernel.shape[0]
    weights = ops.reshape(kernel, (1, k, 1, 1))
    if padding == "zeros":
        sequence, conv_padding = pooled, "same"  # symmetric for odd k
    else:
        sequence, conv_padding = _wrap_channels(pooled, (k - 1) // 2), "valid"
    out = ops.conv(
        ops.reshape(sequence, (-1, 1, sequence.shape[-1], 1)),
        weights,
        padding=conv_padding,
        data_format="channels_last",
    )
    return ops.reshape(out, (-1, pooled.shape[-1]))


def channel_windows(pooled, kernel_size, padding):
    """The `kernel_size` shifted copies of `pooled` (batch, C) a 1D conv of
    that size sees along the channel axis, each of shape (batch, C).

    ECA-NS sums `w[:, j] * window[j]`, one weight per channel and offset.
    """
    channels = pooled.shape[-1]
    pad = (kernel_size - 1) // 2
    if pad == 0:
        return [pooled]
    if padding == "zeros":
        padded = ops.pad(pooled, ((0, 0), (pad, pad)))
    else:
        padded = _wrap_channels(pooled, pad)
    return [padded[:, j : j + channels] for j in range(kernel_size)]


@register_attention("ceca", padding="circular")
@register_attention("eca")
class EfficientChannelAttention(ChannelGate):
    """Efficient Channel Attention (ECA).

    Global average pooling, a 1D convolution of size `k` across the channel
    axis (one shared kernel, no bias, so `k` parameters), a sigmoid, and a
    channel-wise rescale of the input. With `kernel_size=None`, `k` follows
    the paper's adaptive rule from the channel count (see
    `keras_eca.layers.adaptive_kernel_size`). With `padding="circular"` the
    channel axis wraps around (timm's `CecaModule`, registered as `"ceca"`).

    Args:
        kernel_size: int or `None`. Positive odd size of the convolution
            across channels. `None` derives it from the channel count with
            `gamma` and `beta`. Defaults to `None`.
        gamma: float. `gamma` of the adaptive rule, finite and > 0.
            Defaults to `2`.
        beta: float. `b` of the adaptive rule, finite. Defaults to `1`.
        min_kernel_size: int. Lower bound of the adaptive size; timm uses 3,
            the paper none. Defaults to `1`.
        padding: `"zeros"` (the paper) or `"circular"`. Defaults to
            `"zeros"`.
        kernel_initializer: initializer of the kernel. `None` uses PyTorch's
            default `U(-1/sqrt(k), 1/sqrt(k))`, as the official code.
            Defaults to `None`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: feature map of rank 3, 4 or 5 (1D, 2D or 3D).

    Input shape / Output shape:
        Same shape as the input.

    Example:

    >>> x = np.random.rand(2, 8, 8, 256).astype("float32")
    >>> layer = keras_eca.layers.EfficientChannelAttention()
    >>> tuple(layer(x).shape)
    (2, 8, 8, 256)
    >>> tuple(layer.kernel.shape)  # adaptive: psi(256) = 5
    (5,)

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151)
    """

    def __init__(
        self,
        kernel_size=None,
        gamma=2,
        beta=1,
        min_kernel_size=1,
        padding="zeros",
        kernel_initializer=None,
        data_format=None,
        **kwargs,
    ):
        if kernel_size is not None:
            _check_positive_int("kernel_size", kernel_size, odd=True)
        _check_rule(gamma, beta, min_kernel_size)
        if padding not in PADDINGS:
            raise ValueError(
                f"`padding` must be one of {PADDINGS}. "
                f"Received: padding={padding!r}"
            )
        super().__init__(data_format=data_format, **kwargs)
        self.kernel_size = None if kernel_size is None else int(kernel_size)
        self.gamma = as_python_number(gamma)
        self.beta = as_python_number(beta)
        self.min_kernel_size = int(min_kernel_size)
        self.padding = padding
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )

    def resolve_kernel_size(self, channels):
        """The kernel size this layer uses for `channels` input channels."""
        if self.kernel_size is not None:
            return self.kernel_size
        return adaptive_kernel_size(
            channels, self.gamma, self.beta, self.min_kernel_size
        )

    def kernel_shape(self, kernel_size, channels):
        return (kernel_size,)

    def build_attention(self, channels):
        k = self.resolve_kernel_size(channels)
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.kernel_shape(k, channels),
            initializer=self.kernel_initializer or torch_default_uniform(k),
            autocast=False,
        )

    def excite(self, pooled):
        kernel = ops.cast(self.kernel, pooled.dtype)  # float16 policy: up
        return channel_conv(pooled, kernel, self.padding)

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            gamma=self.gamma,
            beta=self.beta,
            min_kernel_size=self.min_kernel_size,
            padding=self.padding,
            kernel_initializer=(
                None
                if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer)
            ),
        )
        return config


@register_attention("eca_ns")
class EfficientChannelAttentionNS(EfficientChannelAttention):
    """ECA without weight sharing (the paper's ECA-NS, Eq. 7).

    Like `EfficientChannelAttention`, but every channel has its own `k`
    weights over its `k` neighbours (a band matrix), so `k * C` parameters.
    Its kernel has shape `(k, C)`; the official checkpoint's `[C, 1, k]`
    weight maps to it by a transpose. Takes the same arguments as
    `EfficientChannelAttention`.

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> layer = keras_eca.layers.EfficientChannelAttentionNS(kernel_size=3)
    >>> tuple(layer(x).shape), tuple(layer.kernel.shape)
    ((2, 8, 8, 64), (3, 64))

    Reference:
    - [Wang et al., 2020](https://arxiv.org/abs/1910.03151), Table 2
    """

    def kernel_shape(self, kernel_size, channels):
        return (kernel_size, channels)

    def excite(self, pooled):
        kernel = ops.cast(self.kernel, pooled.dtype)  # one read, k slices
        k = kernel.shape[0]
        windows = channel_windows(pooled, k, self.padding)
        out = windows[0] * kernel[0]
        for j in range(1, k):
            out = out + windows[j] * kernel[j]
        return out
