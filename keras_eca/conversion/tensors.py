"""Per-layer tensor conversions: PyTorch parameter -> Keras variable.

`layer_tensors(layer, prefix)` lists, for one Keras layer, the state_dict
entries it needs as `Entry` records: the PyTorch key, the Keras variable,
the PyTorch shape it expects and the NumPy function that turns the PyTorch
array into the Keras value. Everything is NumPy; torch is never imported.
"""

import collections

import keras

from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import EfficientChannelAttentionNS
from keras_eca.layers import ShuffleAttention
from keras_eca.layers import SqueezeExcitation

Entry = collections.namedtuple(
    "Entry", ["key", "variable", "torch_shape", "convert", "layer"]
)

# BatchNorm buffers PyTorch saves that Keras has no use for.
IGNORED_SUFFIXES = ("num_batches_tracked",)


def _conv2d(value):
    return value.transpose(2, 3, 1, 0)  # [O, I, kh, kw] -> (kh, kw, I, O)


def _depthwise(value):
    return value.transpose(2, 3, 0, 1)  # [C, 1, kh, kw] -> (kh, kw, C, 1)


def _linear(value):
    return value.T  # [O, I] -> (I, O)


def _flatten(value):
    return value.reshape(-1)


def _squeeze_1x1(value):
    # A 1x1 conv [O, I, 1, 1] (timm SEModule fc1 / fc2) as a Dense kernel.
    return value.reshape(value.shape[:2]).T


def _eca_ns(value):
    return value[:, 0, :].T  # [C, 1, k] -> (k, C)


def _same(value):
    return value


def layer_tensors(layer, prefix):
    """The `Entry` records of `layer`, under the PyTorch module `prefix`."""

    def entry(suffix, variable, torch_shape, convert):
        return Entry(
            f"{prefix}.{suffix}",
            variable,
            tuple(torch_shape),
            convert,
            layer.name,
        )

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, c, m = layer.kernel.shape
        entries = [
            entry("weight", layer.kernel, (c * m, 1, kh, kw), _depthwise)
        ]
        if layer.use_bias:
            entries.append(entry("bias", layer.bias, layer.bias.shape, _same))
        return entries
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, i, o = layer.kernel.shape
        entries = [entry("weight", layer.kernel, (o, i, kh, kw), _conv2d)]
        if layer.use_bias:
            entries.append(entry("bias", layer.bias, layer.bias.shape, _same))
        return entries
    if isinstance(layer, keras.layers.Dense):
        i, o = layer.kernel.shape
        return [
            entry("weight", layer.kernel, (o, i), _linear),
            entry("bias", layer.bias, (o,), _same),
        ]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [
            entry(suffix, variable, variable.shape, _same)
            for suffix, variable in (
                ("weight", layer.gamma),
                ("bias", layer.beta),
                ("running_mean", layer.moving_mean),
                ("running_var", layer.moving_variance),
            )
        ]
    if isinstance(layer, EfficientChannelAttentionNS):
        k, c = layer.kernel.shape
        return [entry("conv.weight", layer.kernel, (c, 1, k), _eca_ns)]
    if isinstance(layer, EfficientChannelAttention):
        (k,) = layer.kernel.shape
        return [entry("conv.weight", layer.kernel, (1, 1, k), _flatten)]
    if isinstance(layer, SqueezeExcitation):
        c, hidden = layer.squeeze_kernel.shape
        entries = [
            entry(
                "fc1.weight",
                layer.squeeze_kernel,
                (hidden, c, 1, 1),
                _squeeze_1x1,
            ),
            entry(
                "fc2.weight",
                layer.excite_kernel,
                (c, hidden, 1, 1),
                _squeeze_1x1,
            ),
        ]
        if layer.use_bias:
            entries += [
                entry("fc1.bias", layer.squeeze_bias, (hidden,), _same),
                entry("fc2.bias", layer.excite_bias, (c,), _same),
            ]
        return entries
    if isinstance(layer, ShuffleAttention):
        (half,) = layer.cweight.shape
        gate = (1, half, 1, 1)
        return [
            entry("cweight", layer.cweight, gate, _flatten),
            entry("cbias", layer.cbias, gate, _flatten),
            entry("sweight", layer.sweight, gate, _flatten),
            entry("sbias", layer.sbias, gate, _flatten),
            entry("gn.weight", layer.gn_gamma, (half,), _same),
            entry("gn.bias", layer.gn_beta, (half,), _same),
        ]
    if layer.weights:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has no PyTorch "
            "counterpart in the official ECA / SA or timm models, so a "
            "state_dict cannot fill it. Received: "
            f"layer={layer.name!r}"
        )
    return []
