"""Strict loading of a PyTorch state_dict (NumPy arrays) into a Keras model."""

import collections.abc
import re

import keras
import numpy as np

from keras_eca.architectures import MOBILENET_V2_STAGES
from keras_eca.architectures import block_stage_indices
from keras_eca.conversion import naming
from keras_eca.conversion import tensors
from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import EfficientChannelAttentionNS
from keras_eca.layers import ShuffleAttention
from keras_eca.layers import shuffle_order

_DATA_PARALLEL_PREFIX = "module."
_RESNET_STAGE = re.compile(r"^conv([2-5])_")
_MOBILENET_BLOCK = re.compile(r"^block(\d+)_")
_MOBILENET_STAGES = block_stage_indices(MOBILENET_V2_STAGES)


def detect_layout(state_dict):
    """Tells a timm ResNet state_dict from an official / torchvision one.

    timm names every block attention `se`, keeps deep stems in
    `conv1.0`..`conv1.6` and avg-down shortcuts in `downsample.1` /
    `downsample.2`. Plain ResNet-50 keys are the same in both layouts, and
    map to the same Keras weights, so they read as `"official"`.

    Args:
        state_dict: mapping from PyTorch parameter name to array.

    Returns:
        `"timm"` or `"official"`.

    Example:

    >>> keras_eca.conversion.detect_layout({"layer1.0.se.conv.weight": 0})
    'timm'
    >>> keras_eca.conversion.detect_layout({"layer1.0.eca.conv.weight": 0})
    'official'
    """
    for key in _strip_prefix(_unwrap(state_dict)):
        if (
            ".se." in key
            or key.startswith("conv1.0.")
            or ".downsample.2." in key
        ):
            return "timm"
    return "official"


def load_state_dict(model, state_dict, layout="auto", check_values=True):
    """Loads a PyTorch state_dict into a `keras_eca.applications` model.

    The PyTorch name of every Keras weight follows from the Keras layer
    names, and each tensor is converted to the Keras layout: conv
    `[O, I, kh, kw]` -> `(kh, kw, I, O)`, depthwise `[C, 1, kh, kw]` ->
    `(kh, kw, C, 1)`, linear `[O, I]` -> `(I, O)`, BatchNorm `weight`,
    `bias`, `running_mean`, `running_var` -> `gamma`, `beta`,
    `moving_mean`, `moving_variance` (`num_batches_tracked` is dropped),
    ECA `conv.weight` `[1, 1, k]` -> `(k,)`, SE `fc1` / `fc2` 1x1 convs ->
    `squeeze_*` / `excite_*`, SA gates `[1, C/2G, 1, 1]` -> `(C/2G,)`.

    Loading is strict and atomic: every tensor must be used and every Keras
    weight set. Otherwise nothing is assigned and one `ValueError` lists
    every missing, unexpected and mis-shaped tensor by name. A name given
    both with and without the `module.` prefix is an error too (one of the
    two would be dropped silently). With `check_values`, so is a value
    no trained network holds, or one the cast to the variable's dtype
    would change: NaN or infinity, a negative BatchNorm variance, an
    integer, boolean or complex tensor where floats belong, a float64
    value beyond the variable's float range.

    Args:
        model: a model built by `keras_eca.applications.build_model`, under
            any dtype policy. For a model without its classifier
            (`include_top=False`), leave the classifier's tensors out.
        state_dict: mapping from PyTorch parameter name to NumPy array
            (e.g. `{k: v.numpy() for k, v in module.state_dict().items()}`).
            A `module.` prefix (`nn.DataParallel`) is removed, and a
            training checkpoint `{"state_dict": ..., "epoch": ...}` is
            unwrapped.
        layout: `"official"` (torchvision names: official ECA-Net and
            SA-Net code), `"timm"` (timm's ResNet), or `"auto"` to detect
            it from the keys. Defaults to `"auto"`.
        check_values: bool. Refuse the values listed above. `False` loads
            them as they are cast (e.g. to inspect a diverged run).
            Defaults to `True`.

    Returns:
        The layout used, `"official"` or `"timm"`.
    """
    if layout not in ("auto",) + naming.LAYOUTS:
        raise ValueError(
            f"`layout` must be one of {('auto',) + naming.LAYOUTS}. "
            f"Received: layout={layout!r}"
        )
    if not isinstance(check_values, bool):
        raise ValueError(
            "`check_values` must be True or False. "
            f"Received: check_values={check_values!r}"
        )
    state_dict = _strip_prefix(_unwrap(state_dict))
    if layout == "auto":
        layout = detect_layout(state_dict)
    prefixes = naming.torch_prefixes(model, layout)

    expected = {}
    unmapped = []
    for layer in model.layers:
        prefix = prefixes.get(layer.name)
        if prefix is None:
            if layer.weights:
                unmapped.append(layer.name)
            continue
        for entry in tensors.layer_tensors(layer, prefix):
            expected[entry.key] = entry

    missing, mismatched, bad_values, values = [], [], [], {}
    eca_mismatch = False
    for key, entry in expected.items():
        if key not in state_dict:
            missing.append(key)
            continue
        value = np.asarray(state_dict[key])
        if tuple(value.shape) != entry.torch_shape:
            mismatched.append(_shape_message(key, value, entry, model))
            eca_mismatch |= _is_eca(model, entry)
            continue
        if check_values:
            problem = _value_problem(key, value, entry.variable)
            if problem:
                bad_values.append(f"{key}: {problem}")
        values[key] = value

    bn_prefixes = {
        key[: -len(".running_mean")]
        for key in expected
        if key.endswith(".running_mean")
    }
    unexpected = [
        key
        for key in state_dict
        if key not in expected
        and not (
            key.endswith(tensors.IGNORED_SUFFIXES)
            and key.rsplit(".", 1)[0] in bn_prefixes
        )
    ]
    assigned = {entry.variable.path for entry in expected.values()}
    unset = [w.path for w in model.weights if w.path not in assigned]

    errors = []
    if missing:
        errors.append(f"Missing tensors ({len(missing)}): {missing}")
    if unexpected:
        errors.append(
            f"Unexpected tensors ({len(unexpected)}): {unexpected}"
        )
    if mismatched:
        errors.append("Shape mismatches:\n  " + "\n  ".join(mismatched))
        if eca_mismatch:
            hint = _kernel_sizes_hint(model, state_dict, prefixes)
            if hint:
                errors.append(hint)
    if bad_values:
        errors.append(
            f"Values no trained network holds, or that the cast to the "
            f"model's dtype would change ({len(bad_values)}; to load them "
            "anyway, build the model with weights=None and call "
            "keras_eca.conversion.load_state_dict(model, state_dict, "
            "check_values=False)):\n  "
            + "\n  ".join(bad_values)
        )
    if unmapped:
        errors.append(f"Layers with no PyTorch name: {unmapped}")
    if unset:
        errors.append(f"Keras weights left unset ({len(unset)}): {unset}")
    if errors:
        raise ValueError(
            f"The state_dict does not fit model {model.name!r} "
            f"(layout={layout!r}):\n" + "\n".join(errors)
        )

    orders = folded_shuffle_orders(model)
    for key, entry in expected.items():
        value = values[key]
        if entry.layer in orders:  # PyTorch's output channels lead
            value = np.take(value, orders[entry.layer], axis=0)
        value = entry.convert(value)
        entry.variable.assign(np.asarray(value, dtype=entry.variable.dtype))
    return layout


def _unwrap(state_dict):
    if not isinstance(state_dict, collections.abc.Mapping):
        raise ValueError(
            "`state_dict` must be a mapping from parameter name to array. "
            f"Received: state_dict of type {type(state_dict).__name__}"
        )
    inner = state_dict.get("state_dict")
    if isinstance(inner, collections.abc.Mapping):
        return inner
    return state_dict


def _strip_prefix(state_dict):
    stripped, sources = {}, {}
    for key, value in state_dict.items():
        name = key
        if isinstance(key, str) and key.startswith(_DATA_PARALLEL_PREFIX):
            name = key[len(_DATA_PARALLEL_PREFIX) :]
        if name in sources:
            raise ValueError(
                f"The state_dict holds both {sources[name]!r} and {key!r}, "
                "which name the same tensor once the `module.` prefix "
                "(nn.DataParallel) is removed; keep one of them."
            )
        sources[name] = key
        stripped[name] = value
    return stripped


def _largest_finite(dtype):
    if dtype.name == "bfloat16":  # ml_dtypes' type: np.finfo refuses it
        import ml_dtypes

        return float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    return float(np.finfo(dtype).max)


def _value_problem(key, value, variable):
    """Why `value` should not be loaded into `variable`, or `None`."""
    dtype = np.dtype(keras.backend.standardize_dtype(variable.dtype))
    if value.dtype.kind in "biuc":
        kind = {"b": "a boolean", "i": "an integer", "u": "an integer"}.get(
            value.dtype.kind, "a complex"
        )
        return f"{kind} tensor ({value.dtype}) where floats belong"
    if value.dtype.kind != "f":
        return f"a {value.dtype} tensor where floats belong"
    if not np.isfinite(value).all():
        count = int(value.size - np.isfinite(value).sum())
        return f"{count} of {value.size} values are NaN or infinite"
    if value.dtype.itemsize > dtype.itemsize and value.size:
        largest = float(np.abs(value).max())
        limit = _largest_finite(dtype)
        if largest > limit:
            return (
                f"holds {largest:.3g}, beyond the largest {dtype} "
                f"({limit:.3g})"
            )
    if key.endswith(".running_var") and value.size and value.min() < 0:
        return f"a BatchNorm variance of {float(value.min()):.3g} (< 0)"
    return None


def _is_eca(model, entry):
    layer = model.get_layer(entry.layer)
    return isinstance(layer, EfficientChannelAttention) and not isinstance(
        layer, EfficientChannelAttentionNS
    )


def _shape_message(key, value, entry, model):
    if _is_eca(model, entry) and value.ndim == 3:
        return (
            f"{key} has kernel size {value.shape[-1]} but the model's "
            f"{entry.layer} has {entry.torch_shape[-1]}"
        )
    return (
        f"{key} has shape {tuple(value.shape)} but the model's "
        f"{entry.layer} expects {entry.torch_shape}"
    )


def folded_shuffle_orders(model):
    """The output channel order of the layers an SA shuffle is folded into.

    A `ShuffleAttention(fold_shuffle=True)` takes its input with the
    channels already shuffled, so the conv and BatchNorm before it hold
    their output channels in `shuffle_order(C)`: a PyTorch tensor of
    theirs is read as `value[order]` along its output axis.

    Args:
        model: a Keras functional model.

    Returns:
        `{layer name: order}` for those convs and BatchNorms.

    Raises:
        ValueError: if a folded SA layer does not follow a BatchNorm that
            follows a conv.
    """
    producers = {}
    for layer in model.layers:
        try:
            producers[id(layer.output)] = layer
        except (AttributeError, ValueError):  # never called
            continue
    orders = {}
    for layer in model.layers:
        if not (isinstance(layer, ShuffleAttention) and layer.fold_shuffle):
            continue
        norm = producers.get(id(layer.input))
        conv = producers.get(id(norm.input)) if norm is not None else None
        if not (
            isinstance(norm, keras.layers.BatchNormalization)
            and isinstance(conv, keras.layers.Conv2D)
        ):
            raise ValueError(
                f"The SA layer {layer.name!r} folds its channel shuffle "
                "(fold_shuffle=True) but does not follow a BatchNorm that "
                "follows a Conv2D, so no weights can hold the shuffled "
                f"order. Received: layer={layer.name!r}"
            )
        order = shuffle_order(int(layer.input.shape[layer.channel_axis]))
        orders[norm.name] = orders[conv.name] = order
    return orders


def stage_of_layer(layer_name):
    """Stage index (ResNet 0..3, MobileNetV2 table row 0..6) of a layer of a
    `keras_eca.applications` model, from its name; `None` outside stages."""
    match = _RESNET_STAGE.match(layer_name)
    if match:
        return int(match.group(1)) - 2
    match = _MOBILENET_BLOCK.match(layer_name)
    if match:
        return _MOBILENET_STAGES.get(int(match.group(1)))
    return None


def _kernel_sizes_hint(model, state_dict, prefixes):
    """`pass kernel_sizes=[...]` when the state_dict has one k per stage."""
    per_stage = {}
    for layer in model.layers:
        if not isinstance(layer, EfficientChannelAttention) or isinstance(
            layer, EfficientChannelAttentionNS
        ):
            continue
        value = state_dict.get(f"{prefixes[layer.name]}.conv.weight")
        stage = stage_of_layer(layer.name)
        if value is None or stage is None or np.ndim(value) != 3:
            return None
        per_stage.setdefault(stage, set()).add(np.shape(value)[-1])
    if not per_stage or any(len(ks) != 1 for ks in per_stage.values()):
        return None
    sizes = [per_stage[s].pop() for s in sorted(per_stage)]
    return (
        "The state_dict's ECA kernel sizes per stage: pass "
        f"kernel_sizes={sizes}"
    )
