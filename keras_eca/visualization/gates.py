"""The attention gates of a model, read from its own graph.

Backend-neutral: `keras.ops` only. A gate model is a `keras.Model` over the
existing layer tensors (nothing is rebuilt and no weight is copied): one
small probe layer per attention layer calls that layer's `gate(...)` on the
tensors the layer itself receives, so one forward pass gives every gate.
"""

import numpy as np

import keras
from keras import ops

from keras_eca.layers import ChannelGate
from keras_eca.layers import ShuffleAttention
from keras_eca.layers import shuffle_order

ATTENTION_TYPES = (ChannelGate, ShuffleAttention)
_SEARCHED = (
    "keras_eca channel gates (ChannelGate subclasses: ECA, ECA-NS, SE, "
    "SE-Var1/2/3, SE-GC) and ShuffleAttention layers, in the model and in "
    "its nested functional models"
)


def attention_layers(model):
    """Every attention layer of `model`, nested functional models included.

    Args:
        model: a functional `keras.Model` (or `Sequential`), e.g. one built
            by `keras_eca.applications.build_model`, possibly with the
            backbone nested as a sub-model.

    Returns:
        A dict from key to layer, in graph order. The key is the layer's
        name, prefixed by the names of the sub-models that hold it
        (`"backbone/conv2_block1_attn"`).

    Raises:
        ValueError: if `model` is not a `keras.Model`.

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(32, 32, 3), classes=10
    ... )
    >>> layers = keras_eca.visualization.attention_layers(model)
    >>> len(layers), next(iter(layers))
    (8, 'conv2_block1_attn')
    """
    _check_model(model)
    found = {}
    _collect(model, "", found)
    return found


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a keras.Model. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )


def _collect(model, prefix, found):
    for layer in model.layers:
        if isinstance(layer, ATTENTION_TYPES):
            found[prefix + layer.name] = layer
        elif isinstance(layer, keras.Model):
            _collect(layer, f"{prefix}{layer.name}/", found)


def _contains_attention(model):
    return any(
        isinstance(layer, ATTENTION_TYPES)
        or (isinstance(layer, keras.Model) and _contains_attention(layer))
        for layer in model.layers
    )


def _graph_inputs(model):
    """`model.inputs`, or a ValueError when the model has no graph."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "The attention gates are read from the graph of a functional "
            "model (keras.Model(inputs, outputs) or Sequential); a "
            "subclassed model has none. Received: "
            f"model={model.name!r} of type {type(model).__name__}"
        )
    return inputs


def call_tensors(outer, layer):
    """The input and output tensors of `layer`'s call inside `outer`'s graph.

    A nested model's own `input` / `output` are its internal tensors; the
    tensors of its call in `outer` are kept on that call's node.
    """
    nodes = list(getattr(layer, "_inbound_nodes", []))
    if not nodes:
        raise ValueError(
            f"Layer {layer.name!r} is never called in the graph of model "
            f"{outer.name!r}. Received: layer={layer.name!r}"
        )
    if len(nodes) > 1:
        # A layer shared by several graphs: keep the call `outer` reaches.
        reachable = _reachable_node_ids(outer)
        nodes = [n for n in nodes if id(n) in reachable] or nodes[:1]
    node = nodes[0]
    inputs = list(node.input_tensors)
    outputs = list(node.output_tensors)
    return (
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
    )


def _reachable_node_ids(model):
    """Ids of the nodes on the paths from `model`'s outputs backwards."""
    seen, stack = set(), list(keras.tree.flatten(model.outputs))
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        operation, node_index = history[0], history[1]
        node = operation._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input_tensors)
    return seen


class _GateProbe(keras.layers.Layer):
    """Calls `attention.gate(...)` on the attention layer's own inputs.

    Channel gates give `{"channel": (N, C)}`. ShuffleAttention gives
    `{"channel": (N, C/2), "spatial": (N, *spatial, C/2)}` in the natural
    (unshuffled) channel order, channels-last whatever the data format.
    """

    def __init__(self, attention, **kwargs):
        super().__init__(autocast=False, **kwargs)
        # Not tracked: the probe owns no weights, the attention layer does.
        object.__setattr__(self, "_attention", attention)

    def call(self, inputs):
        attention = self._attention
        if isinstance(attention, ChannelGate):
            return {"channel": attention.gate(inputs)}
        return split_shuffle_attention_gate(attention, attention.gate(inputs))

    def compute_output_spec(self, inputs):
        attention = self._attention
        features = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        axis = attention.channel_axis % len(features.shape)
        channels = features.shape[axis]
        dtype = "float64" if attention.compute_dtype == "float64" else "float32"
        if isinstance(attention, ChannelGate):
            shape = (features.shape[0], channels)
            return {"channel": keras.KerasTensor(shape, dtype)}
        spatial = [d for i, d in enumerate(features.shape[1:], 1) if i != axis]
        half = channels // 2
        return {
            "channel": keras.KerasTensor((features.shape[0], half), dtype),
            "spatial": keras.KerasTensor(
                (features.shape[0], *spatial, half), dtype
            ),
        }


def split_shuffle_attention_gate(layer, gate):
    """A ShuffleAttention gate map (from `layer.gate`) split into branches.

    Args:
        layer: the `ShuffleAttention` layer.
        gate: its `gate(inputs)`, in the input's layout and channel order.

    Returns:
        `{"channel": (N, C/2), "spatial": (N, *spatial, C/2)}`: the gates of
        the channel-branch and spatial-branch channels, channels-last, in
        the natural channel order (unshuffled when `fold_shuffle=True`):
        entry `g * C/(2G) + j` is channel `j` of group `g`'s half.
    """
    rank = len(gate.shape)
    if layer.data_format == "channels_first":
        gate = ops.transpose(gate, (0, *range(2, rank), 1))
    channels = gate.shape[-1]
    if layer.fold_shuffle:
        # Input channel q is natural channel order[q]: undo with argsort.
        gate = ops.take(gate, np.argsort(shuffle_order(channels)), axis=-1)
    spatial = tuple(gate.shape[1:-1])
    half = channels // (2 * layer.groups)
    grouped = ops.reshape(gate, (-1, *spatial, layer.groups, 2, half))
    # The channel branch's gate is one value per sample and channel.
    first = (slice(None),) + (0,) * len(spatial)
    channel = ops.reshape(
        grouped[first + (slice(None), 0)], (-1, channels // 2)
    )
    rest = (slice(None),) * (1 + len(spatial)) + (slice(None), 1)
    spatial_gate = ops.reshape(grouped[rest], (-1, *spatial, channels // 2))
    return {"channel": channel, "spatial": spatial_gate}


def attention_model(model):
    """A `keras.Model` computing every attention gate of `model`.

    It shares `model`'s inputs, layers and weights (nothing is rebuilt or
    copied) and outputs, per attention layer, what `attention_gates`
    returns, as tensors. Build it once to read the gates of many batches.

    Args:
        model: a functional `keras.Model` with attention layers (nested
            functional models are searched, e.g. a fine-tuning model whose
            backbone is a sub-model named `"backbone"`).

    Returns:
        A `keras.Model` with `model`'s inputs and a dict of outputs
        `{key: {"channel": ..., "spatial": ...}}` (see `attention_gates`).

    Raises:
        ValueError: if `model` has no attention layer (the message says
            what was searched for) or no functional graph.

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(32, 32, 3), classes=10
    ... )
    >>> gates = keras_eca.visualization.attention_model(model)
    >>> gates.output["conv5_block2_attn"]["channel"].shape
    (None, 512)
    """
    _check_model(model)
    if not _contains_attention(model):
        raise ValueError(
            f"Model {model.name!r} has no attention layer: searched for "
            f"{_SEARCHED}. Grad-CAM "
            "(keras_eca.visualization.grad_cam) works without attention. "
            f"Received: model={model.name!r}"
        )
    inputs = _graph_inputs(model)
    outputs = _gate_tensors(model)
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs,
        name=f"{model.name}_attention",
    )


def _gate_tensors(model):
    _graph_inputs(model)
    outputs = {}
    for layer in model.layers:
        if isinstance(layer, ATTENTION_TYPES):
            probe = _GateProbe(layer, name=f"{layer.name}_gate_probe")
            inputs, _ = call_tensors(model, layer)
            outputs[layer.name] = probe(inputs)
        elif isinstance(layer, keras.Model) and _contains_attention(layer):
            inner = keras.Model(
                layer.inputs,
                _gate_tensors(layer),
                name=f"{layer.name}_attention",
            )
            inputs, _ = call_tensors(model, layer)
            for key, value in inner(inputs).items():
                outputs[f"{layer.name}/{key}"] = value
    return outputs


def check_images(model, images, arg_name="images"):
    """`images` as a float32 NumPy batch fitting `model`'s input."""
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(image) for image in images])
    images = np.asarray(ops.convert_to_numpy(images))
    expected = tuple(model.inputs[0].shape) if model.inputs else None
    if expected is not None and images.ndim != len(expected):
        raise ValueError(
            f"`{arg_name}` must be a batch of rank {len(expected)} "
            f"({expected[1:]} per image, for model {model.name!r}); pass a "
            f"single image as images[None]. Received: {arg_name} of shape "
            f"{images.shape}"
        )
    if expected is not None:
        for got, want in zip(images.shape[1:], expected[1:]):
            if want is not None and got != want:
                raise ValueError(
                    f"`{arg_name}` does not fit the input of model "
                    f"{model.name!r}, shape {expected}. Received: "
                    f"{arg_name} of shape {images.shape}"
                )
    if not len(images):
        raise ValueError(
            f"`{arg_name}` is an empty batch. Received: {arg_name} of shape "
            f"{images.shape}"
        )
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(
            f"`{arg_name}` must hold numbers. Received: {arg_name} of dtype "
            f"{images.dtype}"
        )
    return images.astype("float32")


def attention_gates(model, images, batch_size=32):
    """The attention gates of every attention block for a batch of images.

    One forward pass in inference mode (BatchNorm with its moving
    statistics) through a `keras.Model` over `model`'s own graph (see
    `attention_model`); `keras.ops` only, so it runs on every backend.

    Args:
        model: a functional `keras.Model` with keras_eca attention layers:
            a registry model (`keras_eca.applications.build_model`), one
            built with `include_top=False`, or a model holding such a
            backbone as a nested functional sub-model (the fine-tuning
            model's `"backbone"`). Models of the applications, whose
            channel gates take a `FoldedBatchNormalization` and whose SA
            layers fold the channel shuffle, are read the same way.
        images: a batch the model takes, e.g. `(N, H, W, 3)`, already
            preprocessed as the model expects.
        batch_size: int. Images per forward pass. Defaults to `32`.

    Returns:
        A dict, in graph order, from attention layer key (its name, with
        the nested models' names in front: `"backbone/conv2_block1_attn"`)
        to a dict of float32 NumPy arrays:

        - channel gates (ECA, ECA-NS, SE, SE-Var1/2/3, SE-GC):
          `{"channel": (N, C)}`, the sigmoid gate of every channel;
        - ShuffleAttention: `{"channel": (N, C/2), "spatial": (N, H, W,
          C/2)}`, the gates of the channel-branch channels (one per
          sample) and of the spatial-branch channels (one per position).
          Entry `g * C/(2G) + j` is channel `j` of group `g`'s branch, in
          the natural channel order of the paper's layer: with
          `fold_shuffle=True` (every applications model) the layer's
          input comes in the shuffled order, and the gates are permuted
          back. Spatial gates are channels-last whatever the data format.

    Raises:
        ValueError: if `model` has no attention layer (the message names
            what was searched for), has no functional graph, or `images`
            do not fit the model (rank, shape) or are empty;
            if `batch_size` is not a positive integer.

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(32, 32, 3), classes=10
    ... )
    >>> images = np.random.default_rng(0).normal(size=(2, 32, 32, 3))
    >>> gates = keras_eca.visualization.attention_gates(model, images)
    >>> gates["conv2_block1_attn"]["channel"].shape
    (2, 64)
    >>> bool(((gates["conv5_block2_attn"]["channel"] > 0)
    ...       & (gates["conv5_block2_attn"]["channel"] < 1)).all())
    True
    """
    if isinstance(batch_size, bool) or not isinstance(
        batch_size, (int, np.integer)
    ) or batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    gate_model = attention_model(model)
    images = check_images(model, images)
    batches = []
    for start in range(0, len(images), int(batch_size)):
        out = gate_model(images[start : start + batch_size], training=False)
        batches.append(
            keras.tree.map_structure(
                lambda t: np.asarray(ops.convert_to_numpy(t), "float32"), out
            )
        )
    # Keras hands dict outputs back in sorted key order; keep graph order.
    return {
        key: {
            part: np.concatenate([batch[key][part] for batch in batches])
            for part in sorted(batches[0][key])
        }
        for key in attention_layers(model)
        if key in batches[0]
    }
