"""The inference form of a model: the same function in the fewest ops.

`inference_model(model)` returns a new Keras model that computes what
`model(x, training=False)` computes, rebuilt for serving:

- every `BatchNormalization` (and `FoldedBatchNormalization`) right after a
  conv (`Conv1D/2D/3D`, grouped too), a `DepthwiseConv1D/2D` or a `Dense`
  is folded into that layer's kernel and bias, as long as nothing else
  reads the layer's output;
- every channel gate (ECA, SE and its variants) takes the conv's output
  directly and runs its minimal form: spatial mean, excitation (ECA: one
  conv), sigmoid, product. Where a bottleneck pooled the 4x narrower input
  of its last 1x1 conv, the inference form keeps that: the folded conv on
  the pooled input is the mean of its output;
- every `ShuffleAttention` becomes a `FrozenShuffleAttention`: its
  per-channel constants computed once, not from six weights per call.

`inference_model(model, xla=True)` is the TensorFlow form on top of that:
an SA layer followed by a residual `Add` and a `ReLU` becomes one call,
its statistics two matmuls and its gate, the add and the ReLU one XLA
kernel (`keras_eca.layers.fusion`): SA-ResNet-50's TensorFlow SavedModel
went from 0.735 to 0.844 of ResNet-50's speed at 224 px batch 8 (the
deployment benchmark, 2-core CPU). Its SavedModel needs a runtime with XLA's JIT
(TensorFlow's Python and C++ packages; TF Serving only with
`--xla_cpu_compilation_enabled`), so it is not the default; for TFLite,
convert the default form.

The training form of a folded BatchNorm applies the normalisation as an
explicit multiply and add inside the gate, which no converter can fold
back into the conv: a TFLite ECA-MobileNetV2 had 291 ops against
MobileNetV2's 70. Everything else (layers, names, dtype policies) is kept;
the original model is not touched and shares no variables with the result.

Works on functional models and `Sequential` ones, with nested functional
models (a fine-tuned model's backbone) converted recursively; this module
uses `keras.ops` only and runs on every backend. `keras_eca.export` uses
it for SavedModel and TFLite; for a hand-made export, convert first:

    lean = keras_eca.inference.inference_model(model)
    lean.export("saved_model")                       # or
    tf.lite.TFLiteConverter.from_keras_model(lean).convert()

Example:

>>> model = keras_eca.applications.ECAResNet18(weights=None, input_shape=(32, 32, 3))
>>> lean = keras_eca.inference.inference_model(model)
>>> x = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
>>> expected = model.predict(x, verbose=0)
>>> bool(np.allclose(lean.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6))
True
>>> len(lean.layers) < len(model.layers)  # no BatchNorm layers left
True
"""

import functools

import keras
import numpy as np

from keras_eca.layers import ChannelGate
from keras_eca.layers import FoldedBatchNormalization
from keras_eca.layers import FrozenShuffleAttention
from keras_eca.layers import LogitGate
from keras_eca.layers import ShuffleAttention

# Output channels on the kernel's last axis (depthwise: input channel x
# multiplier on the last two), one bias value per channel.
_FOLDABLE = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)
# Subclasses of the above whose kernel is laid out otherwise.
_NOT_FOLDABLE = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


def inference_model(model, name=None, xla=False):
    """The inference form of `model`: BatchNorm folded, lean attention.

    Args:
        model: a built functional or `Sequential` `keras.Model`.
        name: the new model's name; defaults to `model.name`.
        xla: bool. Build the TensorFlow form: each SA layer fused with
            the residual add and ReLU after it into one XLA kernel (see
            the module's docstring for where such a model runs). Default
            False.

    Returns:
        A new `keras.Model` with `model`'s inputs and outputs (names,
        shapes, dtypes) whose outputs equal `model(x, training=False)` to
        float32 round-off (tested within 1e-5 relative on every family).

    Raises:
        ValueError: for a model that is not built, or a subclassed model
            (its graph is Python code, not data to rewrite).
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            f"`model` must be a built `keras.Model`. Received: model={model!r}"
        )
    if not isinstance(xla, bool):
        raise ValueError(f"`xla` must be True or False. Received: xla={xla!r}")
    return _Graph.of(model).rebuild(name or model.name, xla=xla)


def is_rewritable(model):
    """Whether `inference_model` can rewrite `model` (functional or
    `Sequential`, not subclassed)."""
    if isinstance(model, keras.Sequential):
        return True
    if not isinstance(model, keras.Model):
        return False
    try:
        config = model.get_config()
    except NotImplementedError:
        return False
    return isinstance(config, dict) and {"layers", "input_layers"} <= set(config)


class _Folded:
    """Stands for the scale / offset of a BatchNorm folded into its conv:
    only the channel gate after it may read them, and it no longer does."""

    def __repr__(self):
        return "<folded into the conv>"


_FOLDED = _Folded()


class _Ref:
    """Output `key[2]` of call `key[1]` of layer `key[0]`, of `shape`."""

    __slots__ = ("key", "shape")

    def __init__(self, layer_name, node, tensor, shape=None):
        self.key = (layer_name, int(node), int(tensor))
        self.shape = None if shape is None else tuple(shape)


class _Node:
    """Call number `index` of `layer`, on `args` / `kwargs` (`_Ref` leaves)."""

    def __init__(self, layer, index, args, kwargs):
        self.layer, self.index, self.args, self.kwargs = layer, index, args, kwargs

    def refs(self):
        return [
            leaf for leaf in _leaves((self.args, self.kwargs))
            if isinstance(leaf, _Ref)
        ]


class _Graph:
    """A model's layer calls in order, read from its (public) config."""

    def __init__(self, model, input_layers, input_refs, nodes, outputs):
        self.model = model
        self.input_layers = input_layers
        self.input_refs = input_refs
        self.nodes = nodes
        self.outputs = outputs

    @classmethod
    def of(cls, model):
        if isinstance(model, keras.Sequential):
            return cls._of_sequential(model)
        if not is_rewritable(model):
            raise ValueError(
                "inference_model rewrites functional and Sequential models; "
                f"{type(model).__name__} {model.name!r} is subclassed (its "
                "graph is Python code). Export it as it is."
            )
        config = model.get_config()
        input_layers, nodes = {}, []
        for entry in config["layers"]:
            layer = model.get_layer(entry["name"])
            if isinstance(layer, keras.layers.InputLayer):
                input_layers[layer.name] = layer
                continue
            for index, node in enumerate(entry["inbound_nodes"]):
                nodes.append(_Node(
                    layer, index,
                    _refs_of(node.get("args", [])),
                    _refs_of(node.get("kwargs", {})),
                ))
        return cls(
            model, input_layers, _history_refs(config["input_layers"]), nodes,
            _history_refs(config["output_layers"]),
        )

    @classmethod
    def _of_sequential(cls, model):
        if not model.layers or not model.inputs:
            raise ValueError(
                f"Sequential model {model.name!r} has no layers or no input."
            )
        source = model.inputs[0]
        name = f"{model.name}_input"
        input_layer = keras.layers.InputLayer(
            batch_shape=source.shape, dtype=source.dtype, name=name
        )
        nodes, previous = [], _Ref(name, 0, 0, source.shape)
        for layer in model.layers:
            nodes.append(_Node(layer, 0, [previous], {}))
            previous = _Ref(layer.name, 0, 0, _output_shape(layer))
        return cls(model, {name: input_layer}, _Ref(name, 0, 0), nodes, previous)

    def _readers(self):
        """`{tensor key: [reading layer name, or None for a model output]}`
        and `{layer name: [its nodes]}`."""
        readers, calls = {}, {}
        for node in self.nodes:
            calls.setdefault(node.layer.name, []).append(node)
            for ref in node.refs():
                readers.setdefault(ref.key, []).append(node.layer)
        for ref in _leaves(self.outputs):
            readers.setdefault(ref.key, []).append(None)
        return readers, calls

    def folds(self):
        """`{BatchNorm name: conv layer}`: the BatchNorms to fold, each into
        the one conv (or dense) layer all its inputs come from, whose every
        call feeds that BatchNorm and nothing else."""
        readers, calls = self._readers()
        folds = {}
        for name, norm_calls in calls.items():
            norm = norm_calls[0].layer
            if not isinstance(norm, keras.layers.BatchNormalization):
                continue
            refs = [ref for node in norm_calls for ref in node.refs()]
            sources = {ref.key[0] for ref in refs}
            if len(sources) != 1 or refs[0].shape is None:
                continue
            (source,) = sources
            conv_calls = calls.get(source, [])
            if not conv_calls or not _can_fold(
                conv_calls[0].layer, norm, len(refs[0].shape)
            ):
                continue
            if all(
                readers.get((source, node.index, 0), []) == [norm]
                for node in conv_calls
            ):
                folds[name] = conv_calls[0].layer
        return folds, readers

    def pooled_calls(self, folds):
        """The `(conv name, call index)` of the folded convs' calls on a
        pooled input: the `means` of a `FoldedBatchNormalization([x,
        means])`. The gate after it decides what to make of them."""
        calls = set()
        for node in self.nodes:
            if (
                node.layer.name in folds
                and isinstance(node.layer, FoldedBatchNormalization)
                and isinstance(node.args[0], list)
                and len(node.args[0]) == 2
            ):
                _, means = node.args[0]
                calls.add(means.key[:2])
        return calls

    def residual_tails(self):
        """`{gate name: (add name, ReLU name)}`: the gates whose only
        reader is a two-input `Add` whose only reader is a plain ReLU
        (not a model output), each layer called once."""
        readers_of, calls = self._readers()

        def only_reader(name):
            if len(calls.get(name, [])) != 1:
                return None
            found = readers_of.get((name, 0, 0), [])
            return found[0] if len(found) == 1 else None

        tails = {}
        for name, gate_calls in calls.items():
            gate = gate_calls[0].layer
            if not _fusable_gate(gate) or len(gate_calls) != 1:
                continue
            add = only_reader(name)
            if not isinstance(add, keras.layers.Add):
                continue
            (add_call,) = calls[add.name]
            if len(add_call.args) != 1 or len(_leaves(add_call.args)) != 2:
                continue
            relu = only_reader(add.name)
            if _is_plain_relu(relu) and None not in readers_of.get(
                (relu.name, 0, 0), [None]
            ):
                tails[name] = (add.name, relu.name)
        return tails

    def rebuild(self, name, xla=False):
        folds, readers = self.folds()
        tails = self.residual_tails() if xla else {}
        fused_adds = {add for add, _ in tails.values()}
        fused_relus = {relu for _, relu in tails.values()}
        norm_of_conv = {conv.name: norm for norm, conv in folds.items()}
        pooled_calls = self.pooled_calls(folds)
        for node in self.nodes:
            if isinstance(node.layer, FoldedBatchNormalization):
                _check_folded_readers(node, readers)
        values, inputs = {}, {}
        for layer_name, layer in self.input_layers.items():
            tensor = keras.Input(
                batch_shape=layer.batch_shape, dtype=layer.dtype, name=layer_name
            )
            inputs[layer_name] = values[(layer_name, 0, 0)] = tensor
        replacements = {}
        for node in self.nodes:
            layer = node.layer
            args = _resolve(node.args, values)
            kwargs = _resolve(node.kwargs, values)
            if layer.name in folds:
                # The conv before it already applies it.
                outputs = args[0]
                if isinstance(layer, FoldedBatchNormalization):
                    outputs = _folded_outputs(outputs)
            elif (layer.name, node.index) in pooled_calls:
                outputs = _Pooled(args[0], layer.name)
            elif layer.name in fused_adds:
                # The gate's call, now that the shortcut is known.
                first, second = args[0]
                gate, shortcut = (
                    (first, second) if isinstance(first, _Deferred)
                    else (second, first)
                )
                outputs = gate(shortcut=shortcut, jit_compile=True)
            elif layer.name in fused_relus:
                outputs = args[0]  # applied by the gate
            else:
                if layer.name not in replacements:
                    norm = norm_of_conv.get(layer.name)
                    norm = None if norm is None else self.model.get_layer(norm)
                    replacements[layer.name] = _replacement(layer, norm, xla)
                if isinstance(layer, ChannelGate) and _is_folded(args[0]):
                    outputs = _gate_call(layer, replacements, args[0], kwargs)
                elif layer.name in tails:
                    outputs = _Deferred(functools.partial(
                        replacements[layer.name], *args, **kwargs
                    ))
                else:
                    outputs = replacements[layer.name](*args, **kwargs)
            for index, tensor in enumerate(_flat(outputs)):
                values[(layer.name, node.index, index)] = tensor
        return keras.Model(
            _map_refs(lambda ref: inputs[ref.key[0]], self.input_refs),
            _map_refs(lambda ref: values[ref.key], self.outputs),
            name=name,
        )


class _Deferred:
    """A gate call waiting for the shortcut of the `Add` after it."""

    def __init__(self, call):
        self.call = call

    def __call__(self, **kwargs):
        return self.call(**kwargs)


def _fusable_gate(layer):
    # Channel gates are left alone: fused the same way (product, add and
    # ReLU one XLA kernel, the excitation in it or not), ECA-ResNet-50's
    # SavedModel was no faster at batch 1 or 8 (0.87-0.90 of ResNet-50
    # against 0.90 unfused, 20 interleaved calls): the map pass it saves is
    # paid back in each XLA call's launch.
    if isinstance(layer, ShuffleAttention):
        return layer.fold_shuffle
    if isinstance(layer, FrozenShuffleAttention):
        return not layer.shuffle
    return False


def _is_plain_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return (
            config.get("max_value") is None
            and not config.get("negative_slope")
            and not config.get("threshold")
        )
    if isinstance(layer, keras.layers.Activation):
        return layer.get_config().get("activation") == "relu"
    return False


class _Pooled:
    """The pooled input of a folded conv, not yet through the conv: the
    gate after it picks the cheapest way to its means."""

    def __init__(self, pooled, conv_name):
        self.pooled, self.conv_name = pooled, conv_name


def _gate_call(layer, replacements, inputs, kwargs):
    """A channel gate on the output of the conv its BatchNorm folded into.

    Where the block pooled the conv's input (`_Pooled` means), the means
    of the output come from the conv on the pooled input: that reads the
    conv's `C_in x C_out` weights once more instead of the `H x W x C_out`
    output, so it pays only when `C_in < H * W` (ResNet-50 at 224 px:
    stages 2 and 3, not 4 and 5: there the 1x1 conv on the means cost
    ~190 us a block in TFLite against ~40 us for pooling the 7x7 output).
    A linear excitation (ECA, its variants, SE-Var1/2/3, SE-GC) is then
    folded into that conv too: `sigmoid(pooled @ (W @ E) + b @ E)`, a
    mean, a 1x1 conv, a sigmoid and a product, at the cost of a second
    `C_in x C_out` kernel.
    """
    gate = replacements[layer.name]
    features, _, _, means = inputs
    if not isinstance(means, _Pooled):
        return gate(features if means is None else [features, means], **kwargs)
    conv = replacements[means.conv_name]
    data_format = getattr(conv.layer, "data_format", "channels_last")
    in_channels = means.pooled.shape[-1 if data_format == "channels_last" else 1]
    spatial = _spatial_dims(features, data_format)
    if None in spatial or in_channels >= int(np.prod(spatial)):
        return gate(features, **kwargs)
    if not layer.linear_excitation:
        return gate([features, conv(means.pooled)], **kwargs)
    channels = conv.layer.filters
    # Row i is the excitation of the i-th unit vector (the original layer's
    # weights; an eager call adds nothing to its graph).
    excitation = np.asarray(keras.ops.convert_to_numpy(
        layer.excite(keras.ops.eye(channels, dtype="float32"))
    ), "float64")
    kernel = np.asarray(keras.ops.convert_to_numpy(conv.layer.kernel), "float64")
    bias = np.asarray(keras.ops.convert_to_numpy(conv.layer.bias), "float64")
    logits_conv = type(conv.layer).from_config({
        **conv.layer.get_config(), "name": f"{layer.name}_logits",
        "use_bias": True,
    })
    logits = logits_conv(means.pooled)
    logits_conv.kernel.assign((kernel @ excitation).astype("float32"))
    logits_conv.bias.assign((bias @ excitation).astype("float32"))
    return LogitGate(name=layer.name, dtype=layer.dtype_policy)([features, logits])


def _spatial_dims(tensor, data_format):
    shape = tuple(tensor.shape)
    return shape[1:-1] if data_format == "channels_last" else shape[2:]


def _output_shape(layer):
    try:
        return layer.output.shape
    except (AttributeError, ValueError):
        return None


def _replacement(layer, norm, xla):
    """What stands for `layer` in the inference form: a callable taking
    the layer's call arguments."""
    if isinstance(layer, keras.Model):
        return inference_model(layer, xla=xla)
    if isinstance(layer, ShuffleAttention):
        return FrozenShuffleAttention.from_shuffle_attention(layer)
    if isinstance(layer, FoldedBatchNormalization):
        # Not after a foldable conv: a plain BatchNorm; the gate pools its
        # output (the means of `[x, means]` are those of x, not of it).
        plain = _Copy(keras.layers.BatchNormalization, layer)

        def normalise(inputs, **kwargs):
            features = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            return _folded_outputs(plain(features, **kwargs))

        return normalise
    if norm is not None:
        return _Copy(type(layer), layer, fold=norm)
    return _Copy(type(layer), layer)


class _Copy:
    """A new `cls` layer from `original`'s config, given `original`'s
    weights (with `fold`'s BatchNorm folded in) once its first call built
    it."""

    def __init__(self, cls, original, fold=None):
        config = original.get_config()
        if fold is not None:
            config["use_bias"] = True
        self.layer = cls.from_config(config)
        self.original, self.fold = original, fold

    def __call__(self, *args, **kwargs):
        outputs = self.layer(*args, **kwargs)
        if self.original is not None:
            if self.fold is None:
                self.layer.set_weights(self.original.get_weights())
            else:
                kernel, bias = folded_weights(self.original, self.fold)
                self.layer.kernel.assign(kernel)
                self.layer.bias.assign(bias)
            self.original = None
        return outputs


def folded_weights(conv, norm):
    """`conv`'s kernel and bias with the inference-mode BatchNorm `norm`
    after it folded in (computed in float64):
    `norm(conv(x)) == conv'(x)` for `kernel' = kernel * s`,
    `bias' = (bias - mean) * s + beta`, `s = gamma / sqrt(var + eps)`.

    Example:

    >>> conv = keras.layers.Conv2D(4, 3, use_bias=False)
    >>> norm = keras.layers.BatchNormalization()
    >>> x = np.random.default_rng(0).random((1, 6, 6, 2), "float32")
    >>> y = norm(conv(x))
    >>> kernel, bias = keras_eca.inference.folded_weights(conv, norm)
    >>> kernel.shape, bias.shape
    ((3, 3, 2, 4), (4,))
    """
    def array(variable):
        return np.asarray(keras.ops.convert_to_numpy(variable), "float64")

    kernel = array(conv.kernel)
    channels = norm.moving_mean.shape[0]
    scale = 1.0 / np.sqrt(array(norm.moving_variance) + norm.epsilon)
    if norm.scale:
        scale = scale * array(norm.gamma)
    offset = -array(norm.moving_mean) * scale
    if norm.center:
        offset = offset + array(norm.beta)
    bias = array(conv.bias) if conv.use_bias else np.zeros(channels)
    if isinstance(conv, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        kernel = kernel * scale.reshape(kernel.shape[-2:])
    else:
        kernel = kernel * scale
    return kernel.astype("float32"), (bias * scale + offset).astype("float32")


def _can_fold(conv, norm, rank):
    if isinstance(conv, _NOT_FOLDABLE) or not isinstance(conv, _FOLDABLE):
        return False
    if conv.get_config().get("activation", "linear") != "linear":
        return False
    if getattr(conv, "quantization_mode", None) or getattr(
        conv, "lora_enabled", False
    ):
        return False
    if not isinstance(norm.axis, int):
        return False
    channel_axis = rank - 1
    if getattr(conv, "data_format", None) == "channels_first":
        channel_axis = 1
    return norm.axis % rank == channel_axis


def _folded_outputs(features):
    """A folded `FoldedBatchNormalization`'s outputs: the conv's output, and
    the conv of the pooled input (the output's means) if it had one."""
    means = None
    if isinstance(features, (list, tuple)):
        features, means = features
    return [features, _FOLDED, _FOLDED, means]


def _is_folded(inputs):
    return (
        isinstance(inputs, (list, tuple))
        and len(inputs) == 4
        and inputs[1] is _FOLDED
    )


def _check_folded_readers(node, readers):
    for index in (1, 2, 3):
        for reader in readers.get((node.layer.name, node.index, index), []):
            if not isinstance(reader, ChannelGate):
                what = "a model output" if reader is None else repr(reader.name)
                raise ValueError(
                    "inference_model hands the scale, offset and means of "
                    f"FoldedBatchNormalization {node.layer.name!r} to the "
                    f"channel gate after it, but its output {index} is also "
                    f"read by {what}."
                )


def _refs_of(structure):
    """A node's serialized call arguments, `__keras_tensor__`s as `_Ref`s."""
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            config = structure["config"]
            return _Ref(*config["keras_history"], shape=config.get("shape"))
        return {key: _refs_of(value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_refs_of(item) for item in structure]
    return structure


def _history_refs(structure):
    """A config's `input_layers` / `output_layers`: `[name, node, tensor]`
    leaves in lists or dicts."""
    if (
        isinstance(structure, (list, tuple))
        and len(structure) == 3
        and isinstance(structure[0], str)
        and not isinstance(structure[1], (list, tuple))
    ):
        return _Ref(*structure)
    if isinstance(structure, dict):
        return {key: _history_refs(value) for key, value in structure.items()}
    return [_history_refs(item) for item in structure]


def _leaves(structure):
    if isinstance(structure, dict):
        return [leaf for value in structure.values() for leaf in _leaves(value)]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in _leaves(item)]
    return [structure]


def _map_refs(fn, structure):
    """`structure` with every `_Ref` leaf replaced by `fn(ref)`."""
    if isinstance(structure, _Ref):
        return fn(structure)
    if isinstance(structure, dict):
        return {key: _map_refs(fn, value) for key, value in structure.items()}
    if isinstance(structure, list):
        return [_map_refs(fn, item) for item in structure]
    return structure


def _resolve(structure, values):
    return _map_refs(lambda ref: values[ref.key], structure)


def _flat(outputs):
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    if isinstance(outputs, dict):
        return keras.tree.flatten(outputs)
    return [outputs]
