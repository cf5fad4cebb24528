"""Parameter and operation counts of built functional Keras models.

Two operation conventions are supported. Both count one image (batch 1)
and read each layer's input and output shapes, so the model needs a static
input size, e.g. `input_shape=(224, 224, 3)`.

`"macs"` counts multiply-accumulates of the layers with weights, what
many CNN papers call "FLOPs":

- `Conv1D/2D/3D`: `output elements * (kernel elements per output)`,
  i.e. `out * (C_in / groups) * kh * kw`; `DepthwiseConv1D/2D`:
  `out * kh * kw`; `Dense`: `out * in_features`. Biases are not counted.
- Attention layers count their small matmuls per image, for `C` channels
  and `S` spatial positions: ECA and ECA-NS `C * k`, SE `2 * C * C / r`,
  SE-Var1 `0`, SE-Var2 `C`, SE-Var3 `C^2`, SE-GC `C^2 / G`, SA the
  multiplications by its learned gate weights: `cweight` on the pooled
  channel half (`C / 2`) and `sweight` on the normalised spatial half
  (`S * C / 2`).
- Everything else counts 0: BatchNorm (it folds into the preceding conv),
  activations, pooling, padding, additions, the gates' sigmoid and
  rescale, and the normalisation inside SA.

`"thop"` counts what `thop.profile` (version 0.0.31, 2019) reports. The
ECA-Net paper ran it on a 1x3x224x224 input and calls the result "FLOPs"
(in units of 2^30 for "G" and 2^20 for "M"):

- conv: `out * (C_in / groups * kh * kw + bias)`; `Dense` (PyTorch's
  `Linear`): `out * (2 * in_features - 1)`, bias not counted;
- BatchNorm: 4 per input element; ReLU / ReLU6 / LeakyReLU (as layers or
  as a layer's activation): 1 per input element; other activations
  (sigmoid, softmax, ...): 0;
- average pooling: `out * (pool_h * pool_w + 1)`; global average pooling
  (PyTorch's `AdaptiveAvgPool2d(1)`): `C * (H * W + 1)`; max pooling,
  padding, additions and dropout: 0;
- attention layers: their global average pooling, `C * (S + 1)`, plus
  ECA / ECA-NS `C * k` (the `Conv1d`), SE `(2C - 1) * C/r + C/r + (2 C/r -
  1) * C` (two `Linear` layers and the ReLU module between them), SE-Var2
  `C`, SE-Var3 `(2C - 1) * C` (one `Linear`), SE-GC `C^2 / G` (a grouped
  conv); SA its pooling of the channel half, `C/2 * (S + 1)`, plus its
  GroupNorm counted like BatchNorm, `4 * S * C / 2`. Sigmoids and the
  element-wise products of the gates are functional calls (or modules
  without a hook) in the PyTorch code and count 0.

What this reproduces of the ECA paper's Table 3 (224x224, batch 1,
`"thop"`; the paper's M = 2^20 and G = 2^30, here Mi and Gi):

| model | params | Mi | paper | FLOPs (thop) | Gi (Mi) | paper |
|---|---|---|---|---|---|---|
| ResNet-50 | 25,557,032 | 24.37 | 24.37 | 4,145,398,296 | 3.8607 | 3.86 |
| ResNet-101 | 44,549,160 | 42.49 | 42.49 | 7,883,209,240 | 7.3418 | 7.34 |
| ResNet-152 | 60,192,808 | 57.40 | 57.40 | 11,627,041,304 | 10.8285 | 10.82 |
| MobileNetV2 | 3,504,872 | 3.34 | 3.34 | 334,935,512 | (319.42) | 319.4 |
| ECA-R50 | 25,557,112 | 24.37 | 24.37 | 4,151,019,032 | 3.8659 | 3.86 |
| ECA-R101 | 44,549,317 | 42.49 | 42.49 | 7,892,342,296 | 7.3503 | 7.35 |
| ECA-R152 | 60,193,042 | 57.40 | 57.40 | 11,640,477,208 | 10.8410 | 10.83 |
| ECA-MBv2 | 3,504,903 | 3.34 | 3.34 | 335,513,016 | (319.97) | 319.9 |
| SE-R50 | 28,088,024 | 26.79 | 26.77 | 4,155,947,544 | 3.8705 | 3.87 |
| SE-R101 | 49,326,872 | 47.04 | 47.01 | 7,901,626,904 | 7.3590 | 7.35 |
| SE-R152 | 66,821,848 | 63.73 | 63.68 | 11,653,343,768 | 10.8530 | 10.85 |
| SE-MBv2 r=8 | 3,563,492 | 3.40 | 3.40 | 335,621,688 | (320.07) | 320.1 |

- Reproduced exactly (rounded): every parameter count of the plain and
  ECA models, SE-MBv2's 3.40M, and the FLOPs of ResNet-50/101,
  MobileNetV2, ECA-R101, SE-R50, SE-R152 and SE-MBv2.
- The paper's SE-ResNet parameter counts are those of SE without biases:
  `attention_kwargs={"use_bias": False}` gives 28,071,976 = 26.77M,
  49,292,328 = 47.01M and 66,770,984 = 63.68M (the FLOPs do not change,
  thop counts no Linear bias).
- Differ by one in the last digit: ResNet-152 (10.83 vs 10.82), ECA-R50
  (3.87 vs 3.86), ECA-R152 (10.84 vs 10.83), ECA-MBv2 (320.0 vs 319.9)
  and SE-R101 (7.36 vs 7.35). Truncating instead of rounding matches
  all of these but ECA-R152, and then breaks SE-MBv2 (320.0 vs 320.1): no
  single reading reproduces every row.
- ECA's overhead is mostly its global pooling, `sum C * (H*W + 1)` over
  its blocks: 5,620,736 thop ops on ResNet-50 (5.2e-3 Gi), of which the
  1D convolutions are 86,272 (the `"macs"` overhead). The paper's
  "4.7e-4 GFLOPs" for ECA on ResNet-50 matches neither.
"""

import math
import numbers

import keras

from keras_eca import layers as eca_layers
from keras_eca.layers.folded_batch_norm import SpatialMean

CONVENTIONS = ("macs", "thop")

# Layers that hold no weights and cost nothing under either convention.
_FREE_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    # A bottleneck gate's means, taken before its 1x1 conv: the gate's own
    # count (the paper's pooling of the block output) already holds them.
    SpatialMean,
)

# Activations thop 0.0.31 has a hook for (1 op per element).
_COUNTED_ACTIVATIONS = ("relu", "relu6", "leaky_relu")


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(
            f"`convention` must be one of {CONVENTIONS}. "
            f"Received: convention={convention!r}"
        )


def _check_model(model):
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "`model` must be a built functional `keras.Model`, e.g. from "
            "`keras_eca.applications.build_model`. Received: "
            f"model={model!r}"
        )


def _elements(tensor, layer):
    """Elements of one sample of `tensor` (all axes but the batch axis)."""
    shape = tuple(tensor.shape)[1:]
    if any(d is None for d in shape):
        raise ValueError(
            "Counting operations needs static shapes; layer "
            f"{layer.name!r} has a tensor of shape {tuple(tensor.shape)}. "
            "Build the model with a fixed size, e.g. "
            "`input_shape=(224, 224, 3)`."
        )
    return math.prod(shape)


def _io_elements(layer):
    """`(input elements, output elements)` of `layer`'s first call."""
    try:
        inputs = keras.tree.flatten(layer.input)
        outputs = keras.tree.flatten(layer.output)
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Layer {layer.name!r} has no input/output tensors; count "
            "layers of a built functional model."
        ) from error
    return (
        sum(_elements(t, layer) for t in inputs),
        sum(_elements(t, layer) for t in outputs),
    )


def _channels(layer):
    shape = tuple(keras.tree.flatten(layer.input)[0].shape)
    return shape[layer.channel_axis]


def _activation_name(activation):
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", type(activation).__name__)


def _activation_ops(name, elements, convention):
    if convention == "thop" and name in _COUNTED_ACTIVATIONS:
        return elements
    return 0


# Per-layer counters: `fn(layer, convention) -> int`, one image.


def _conv(layer, convention):
    _, out = _io_elements(layer)
    # Kernel (*window, C_in / groups, C_out): per output element, all but
    # the last axis; depthwise kernels (*window, C_in, multiplier): the
    # window only.
    kernel_shape = tuple(layer.kernel.shape)
    depthwise = isinstance(
        layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
    )
    window = kernel_shape[:-2] if depthwise else kernel_shape[:-1]
    per_output = math.prod(window)
    ops = out * per_output
    if convention == "thop":
        ops += out * int(bool(layer.use_bias))
        activation = _activation_name(layer.activation)
        ops += _activation_ops(activation, out, convention)
    return ops


def _dense(layer, convention):
    _, out = _io_elements(layer)
    in_features = layer.kernel.shape[0]
    if convention == "macs":
        return out * in_features
    activation = _activation_ops(
        _activation_name(layer.activation), out, convention
    )
    return out * (2 * in_features - 1) + activation


def _batch_norm(layer, convention):
    # The feature map only: a FoldedBatchNormalization may also take the
    # means its gate pools.
    features = keras.tree.flatten(layer.input)[0]
    return 4 * _elements(features, layer) if convention == "thop" else 0


def _relu(layer, convention):
    inputs, _ = _io_elements(layer)
    return inputs if convention == "thop" else 0


def _activation_layer(layer, convention):
    inputs, _ = _io_elements(layer)
    activation = _activation_name(layer.activation)
    return _activation_ops(activation, inputs, convention)


def _average_pool(layer, convention):
    _, out = _io_elements(layer)
    if convention == "macs":
        return 0
    return out * (math.prod(layer.pool_size) + 1)


def _global_average_pool(layer, convention):
    inputs, out = _io_elements(layer)
    # out = C values, each the sum of H*W inputs plus one division.
    return inputs + out if convention == "thop" else 0


def _pooling(layer):
    """thop: `AdaptiveAvgPool2d(1)` of a gate, `C * (S + 1)` ops."""
    # The feature map only: a gate after a folded BatchNorm also takes
    # the BatchNorm's scale and offset vectors.
    features = keras.tree.flatten(layer.input)[0]
    return _elements(features, layer) + _channels(layer)


def _eca(layer, convention):
    channels = _channels(layer)
    k = layer.kernel.shape[0]
    ops = channels * k
    return ops + (_pooling(layer) if convention == "thop" else 0)


def _se(layer, convention):
    channels = _channels(layer)
    hidden = layer.squeeze_kernel.shape[1]
    if convention == "macs":
        return 2 * channels * hidden
    relu = _activation_ops(_activation_name(layer.activation), hidden, "thop")
    return (
        _pooling(layer)
        + (2 * channels - 1) * hidden
        + relu
        + (2 * hidden - 1) * channels
    )


def _se_var1(layer, convention):
    return _pooling(layer) if convention == "thop" else 0


def _se_var2(layer, convention):
    channels = _channels(layer)
    return channels + (_pooling(layer) if convention == "thop" else 0)


def _se_var3(layer, convention):
    channels = _channels(layer)
    if convention == "macs":
        return channels * channels
    return _pooling(layer) + (2 * channels - 1) * channels


def _se_gc(layer, convention):
    channels = _channels(layer)
    groups, width, _ = layer.kernel.shape
    ops = channels * width
    return ops + (_pooling(layer) if convention == "thop" else 0)


def _shuffle_attention(layer, convention):
    inputs, _ = _io_elements(layer)
    channels = _channels(layer)
    half_elements = inputs // 2
    if convention == "macs":
        return channels // 2 + half_elements
    pooled = half_elements + channels // 2
    return pooled + 4 * half_elements


_COUNTERS = {
    keras.layers.Conv1D: _conv,
    keras.layers.Conv2D: _conv,
    keras.layers.Conv3D: _conv,
    keras.layers.DepthwiseConv1D: _conv,
    keras.layers.DepthwiseConv2D: _conv,
    keras.layers.Dense: _dense,
    keras.layers.BatchNormalization: _batch_norm,
    eca_layers.FoldedBatchNormalization: _batch_norm,
    keras.layers.ReLU: _relu,
    keras.layers.Activation: _activation_layer,
    keras.layers.AveragePooling1D: _average_pool,
    keras.layers.AveragePooling2D: _average_pool,
    keras.layers.AveragePooling3D: _average_pool,
    keras.layers.GlobalAveragePooling1D: _global_average_pool,
    keras.layers.GlobalAveragePooling2D: _global_average_pool,
    keras.layers.GlobalAveragePooling3D: _global_average_pool,
    eca_layers.EfficientChannelAttention: _eca,
    eca_layers.EfficientChannelAttentionNS: _eca,
    eca_layers.SqueezeExcitation: _se,
    eca_layers.SqueezeExcitationVar1: _se_var1,
    eca_layers.SqueezeExcitationVar2: _se_var2,
    eca_layers.SqueezeExcitationVar3: _se_var3,
    eca_layers.SqueezeExcitationGroupConv: _se_gc,
    eca_layers.ShuffleAttention: _shuffle_attention,
}
_COUNTERS.update({cls: None for cls in _FREE_LAYERS})


def _leaf_layers(model):
    """The layers of `model`, with nested models expanded, each once."""
    seen = set()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            nested = _leaf_layers(layer)
        else:
            nested = [layer]
        for leaf in nested:
            if id(leaf) not in seen:
                seen.add(id(leaf))
                yield leaf


def _counter(layer):
    # Exact types: a subclass may compute something else than its parent.
    cls = type(layer)
    if cls not in _COUNTERS:
        kind = "with weights" if layer.weights else "without weights"
        raise ValueError(
            f"Cannot count the operations of layer {layer.name!r} of type "
            f"{cls.__name__} ({kind}): `keras_eca.complexity` has no rule "
            "for this type and does not count unknown layers as 0. It "
            "knows the Keras conv, dense, BatchNorm, ReLU, pooling, padding "
            "and merge layers of the `keras_eca.applications` models and "
            "the `keras_eca.layers` attention layers. Received: "
            f"layer={layer.name!r} ({cls.__module__}.{cls.__qualname__})"
        )
    return _COUNTERS[cls]


def layer_ops(model, convention="macs"):
    """Operations per layer of a built functional model, for one image.

    Args:
        model: a built functional `keras.Model` with static input shape.
            Nested models are expanded; a layer called several times is
            counted once, on its first call.
        convention: `"macs"` or `"thop"`, see the module docstring.
            Defaults to `"macs"`.

    Returns:
        A list of `(layer_name, class_name, ops)` tuples in layer order,
        one per counted layer.

    Raises:
        ValueError: for an unknown layer type, a tensor with an unknown
            (non-batch) dimension or an unknown `convention`.

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(64, 64, 3), classes=10)
    >>> rows = keras_eca.complexity.layer_ops(model, "thop")
    >>> # ECA of 512 channels on 2x2 maps: C * (2 * 2 + 1) + C * k, k = 7
    >>> [row for row in rows if row[0] == "conv5_block1_attn"]
    [('conv5_block1_attn', 'EfficientChannelAttention', 6144)]
    """
    _check_convention(convention)
    _check_model(model)
    rows = []
    for layer in _leaf_layers(model):
        counter = _counter(layer)
        ops = 0 if counter is None else int(counter(layer, convention))
        rows.append((layer.name, type(layer).__name__, ops))
    return rows


def count_ops(model, convention="macs"):
    """Counts the operations of one image through a built functional model.

    Args:
        model: a built functional `keras.Model` with a static input size,
            e.g. `build_model("resnet50", input_shape=(224, 224, 3))`.
        convention: `"macs"` (multiply-accumulates of convs, dense layers
            and attention matmuls) or `"thop"` (what `thop.profile` 0.0.31
            counts, the ECA paper's "FLOPs"). See the module docstring for
            every rule. Defaults to `"macs"`.

    Returns:
        An int.

    Raises:
        ValueError: for a layer type this module does not know (it never
            counts an unknown layer as 0), a tensor with an unknown
            (non-batch) dimension or an unknown `convention`.

    Example:

    >>> model = keras_eca.applications.build_model("resnet50")
    >>> keras_eca.complexity.count_ops(model, "thop")
    4145398296
    >>> keras_eca.complexity.format_count(4145398296, binary=True)
    '3.86 G'
    """
    return sum(ops for _, _, ops in layer_ops(model, convention))


def count_params(model):
    """Counts the learnable parameters, as the papers count them.

    BatchNorm moving statistics are left out; everything else a layer owns
    is a learnable parameter. This holds for frozen models too
    (`model.trainable = False`), unlike `keras.Model.count_params()`, which
    includes the moving statistics. Shared weights count once.

    Args:
        model: a built `keras.Model`.

    Returns:
        An int.

    Example:

    >>> model = keras_eca.applications.build_model("eca_resnet50")
    >>> keras_eca.complexity.count_params(model)  # ResNet-50 + 80 ECA weights
    25557112
    >>> keras_eca.complexity.format_count(25557112, binary=True)
    '24.37 M'
    """
    _check_model(model)
    seen = {}
    for layer in _leaf_layers(model):
        weights = layer.weights
        if isinstance(layer, keras.layers.BatchNormalization):
            stats = {id(layer.moving_mean), id(layer.moving_variance)}
            weights = [w for w in weights if id(w) not in stats]
        elif type(layer) not in _COUNTERS:
            # Unknown layer: what Keras marks trainable.
            weights = [w for w in weights if w.trainable]
        for weight in weights:
            seen[id(weight)] = math.prod(weight.shape)
    return int(sum(seen.values()))


def format_count(n, binary=False):
    """Formats a count with a K/M/G/T suffix and two decimals.

    Args:
        n: int. The count.
        binary: bool. Units of 1024 (as the ECA paper: its "24.37M" is
            25,557,032 / 2^20) instead of 1000. Defaults to `False`.

    Returns:
        A string such as `"25.56 M"`; counts below one unit are returned
        as plain integers.

    Example:

    >>> keras_eca.complexity.format_count(25557032)
    '25.56 M'
    >>> keras_eca.complexity.format_count(25557032, binary=True)
    '24.37 M'
    >>> keras_eca.complexity.format_count(80)
    '80'
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"`n` must be an integer. Received: n={n!r}")
    n = int(n)
    base = 1024 if binary else 1000
    value, suffix = float(abs(n)), ""
    for unit in ("K", "M", "G", "T"):
        if value < base:
            break
        value, suffix = value / base, unit
    if not suffix:
        return str(n)
    sign = "-" if n < 0 else ""
    return f"{sign}{value:.2f} {suffix}"


# Registry fields that do not change the counted architecture.
_NON_ARCHITECTURE_FIELDS = (
    "display_name",
    "attention",
    "attention_kwargs",
    "kernel_sizes",
    "dropout_rate",
    "weights_layout",
    "source",
    "reference",
)


def plain_counterpart(name):
    """The registered attention-free model with the same architecture.

    Args:
        name: str. A registry key of `keras_eca.applications`.

    Returns:
        The registry key of the model that has the same layers without
        attention (`"resnet50"` for `"eca_resnet50"`, `"mobilenet_v2"` for
        `"se_mobilenet_v2"`), preferring one with the same weights layout;
        `name` itself for a model without attention; `None` if no such
        model is registered (e.g. for the timm ResNet-D/T models).

    Example:

    >>> keras_eca.complexity.plain_counterpart("eca_resnet50")
    'resnet50'
    >>> keras_eca.complexity.plain_counterpart("seresnet50")
    'timm_resnet50'
    >>> keras_eca.complexity.plain_counterpart("ecaresnet50d") is None
    True
    """
    from keras_eca import applications

    config = applications.model_config(name)
    if config["attention"] is None:
        return name

    def architecture(row):
        return {
            key: value
            for key, value in row.items()
            if key not in _NON_ARCHITECTURE_FIELDS
        }

    matches = []
    for other in applications.list_models():
        row = applications.model_config(other)
        if row["attention"] is None and architecture(row) == architecture(
            config
        ):
            other_layout = row["weights_layout"] != config["weights_layout"]
            matches.append((other_layout, other))
    return min(matches)[1] if matches else None


def model_complexity(model):
    """Params and both operation counts of a built model.

    Args:
        model: a built functional `keras.Model` with a static input size.

    Returns:
        A dict with int values `params`, `macs` and `flops` (the `"thop"`
        convention).
    """
    return {
        "params": count_params(model),
        "macs": count_ops(model, "macs"),
        "flops": count_ops(model, "thop"),
    }


def summary_table(names, image_size=224):
    """Complexity of registered models and of their attention.

    Every model is built with `input_shape=(image_size, image_size, 3)`
    and 1000 classes; its attention overhead is measured against its
    plain counterpart (see `plain_counterpart`).

    Args:
        names: list of registry keys of `keras_eca.applications`.
        image_size: int. Side of the square input images, at least 32.
            Defaults to `224`.

    Returns:
        A list of dicts, one per name, with keys `model`, `params`, `macs`,
        `flops` (the `"thop"` count), `backbone` (registry key or `None`)
        and, when a backbone exists and differs from the model,
        `extra_params`, `extra_macs` and `extra_flops`.

    Example:

    >>> rows = keras_eca.complexity.summary_table(["eca_resnet18"], 64)
    >>> rows[0]["backbone"], rows[0]["extra_params"]  # k = 3, 5, 7, 7
    ('resnet18', 44)
    """
    from keras_eca import applications

    if isinstance(names, str) or not names:
        raise ValueError(
            "`names` must be a non-empty list of model names. "
            f"Received: names={names!r}"
        )
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ValueError(
            "`image_size` must be an integer of at least 32. "
            f"Received: image_size={image_size!r}"
        )
    cache = {}

    def measure(name):
        if name not in cache:
            model = applications.build_model(
                name,
                input_shape=(image_size, image_size, 3),
                classifier_activation=None,
            )
            cache[name] = model_complexity(model)
        return cache[name]

    rows = []
    for name in names:
        row = {"model": name, **measure(name)}
        backbone = plain_counterpart(name)
        row["backbone"] = None if backbone == name else backbone
        if row["backbone"] is not None:
            base = measure(backbone)
            for key in ("params", "macs", "flops"):
                row[f"extra_{key}"] = row[key] - base[key]
        rows.append(row)
    return rows


def format_summary(rows, image_size=224):
    """Formats `summary_table` rows as a fixed-width text table.

    Args:
        rows: list of dicts from `summary_table`.
        image_size: int. The image size the rows were measured at (for the
            caption). Defaults to `224`.

    Returns:
        A string: one line per model, then a legend.
    """
    header = (
        ("model", "<"),
        ("params", ">"),
        ("M", ">"),
        ("Mi", ">"),
        ("MACs", ">"),
        ("FLOPs(thop)", ">"),
        ("backbone", "<"),
        ("+params", ">"),
        ("+MACs", ">"),
        ("+FLOPs(thop)", ">"),
    )
    table = [[title for title, _ in header]]
    for row in rows:
        extra = row["backbone"] is not None
        table.append(
            [
                row["model"],
                f"{row['params']:,}",
                f"{row['params'] / 10**6:.2f}",
                f"{row['params'] / 2**20:.2f}",
                format_count(row["macs"]),
                format_count(row["flops"], binary=True),
                row["backbone"] or "—",
                f"{row['extra_params']:+,}" if extra else "—",
                f"{row['extra_macs']:+,}" if extra else "—",
                f"{row['extra_flops']:+,}" if extra else "—",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(line, header, widths)
        ).rstrip()
        for line in table
    ]
    lines += [
        f"Batch 1, {image_size}x{image_size}x3 input, 1000 classes.",
        "params: trainable, no BN moving statistics; M = 10^6, Mi = 2^20 "
        "(the ECA paper's 'M').",
        "MACs: multiply-accumulates (units of 10^3). FLOPs(thop): what thop "
        "0.0.31 counts, the ECA paper's 'FLOPs' (units of 2^10).",
        "+: overhead against the plain backbone; '—' where there is none "
        "or none is registered.",
    ]
    return "\n".join(lines)
