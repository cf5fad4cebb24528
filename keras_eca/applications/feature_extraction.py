"""Multi-scale feature maps of a backbone, for detection and segmentation."""

import re

import keras

from keras_eca.applications import registry
from keras_eca.applications.factory import build_model

LEVELS = ("P2", "P3", "P4", "P5")
_RESNET_OUT = re.compile(r"^conv([2-5])_block(\d+)_out$")
_MOBILENET_V2_LAYERS = registry.MODELS["mobilenet_v2"]["feature_layers"]


def feature_layer_names(model):
    """The layer names of `model`'s feature maps at strides 4, 8, 16, 32.

    Uses the registry row of `model.name` when its names exist in the
    model, else recognizes the ResNet / MobileNetV2 naming scheme.

    Args:
        model: a model built by `keras_eca.applications.build_model`.

    Returns:
        A dict `{"P2": name, ..., "P5": name}`.
    """
    layer_names = {layer.name for layer in model.layers}
    if model.name in registry.MODELS:
        names = registry.MODELS[model.name]["feature_layers"]
        if set(names.values()) <= layer_names:
            return dict(names)
    last_blocks = {}
    for name in layer_names:
        match = _RESNET_OUT.match(name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            last_blocks[stage] = max(block, last_blocks.get(stage, 0))
    if sorted(last_blocks) == [2, 3, 4, 5]:
        return {
            level: f"conv{stage}_block{last_blocks[stage]}_out"
            for level, stage in zip(LEVELS, range(2, 6))
        }
    if set(_MOBILENET_V2_LAYERS.values()) <= layer_names:
        return dict(_MOBILENET_V2_LAYERS)
    raise ValueError(
        f"Cannot find the feature layers of model {model.name!r}: it is not "
        "a keras_eca.applications model. Pass `layer_names`. "
        f"Received: model={model.name!r}"
    )


def feature_extractor(model_or_name, layer_names=None, **kwargs):
    """Returns a model whose outputs are the feature maps at strides 4-32.

    Args:
        model_or_name: a registry key (the model is then built with
            `include_top=False` and `kwargs`), or a model built by
            `keras_eca.applications.build_model`.
        layer_names: optional dict from level (`"P2"`..`"P5"`) to layer
            name, to use instead of the architecture's feature layers.
        **kwargs: arguments of `keras_eca.applications.build_model` (e.g.
            `input_shape`, `attention`), only with a registry key.

    Returns:
        A functional `keras.Model` with the input of the backbone and a
        dict of outputs keyed `"P2"`..`"P5"` (strides 4, 8, 16 and 32).

    Example:

    >>> extractor = keras_eca.applications.feature_extractor(
    ...     "eca_resnet18", input_shape=(64, 64, 3)
    ... )
    >>> sorted(extractor.output)
    ['P2', 'P3', 'P4', 'P5']
    >>> extractor.output["P2"].shape, extractor.output["P5"].shape
    ((None, 16, 16, 64), (None, 2, 2, 512))
    """
    if isinstance(model_or_name, str):
        kwargs.setdefault("include_top", False)
        model = build_model(model_or_name, **kwargs)
    elif isinstance(model_or_name, keras.Model):
        if kwargs:
            raise ValueError(
                "Build arguments only apply when `model_or_name` is a "
                f"registry key. Received: {sorted(kwargs)} with "
                f"model_or_name={model_or_name.name!r}"
            )
        model = model_or_name
    else:
        raise ValueError(
            "`model_or_name` must be a registry key or a keras.Model. "
            f"Received: model_or_name={model_or_name!r}"
        )
    if layer_names is None:
        layer_names = feature_layer_names(model)
    elif not isinstance(layer_names, dict) or not layer_names:
        raise ValueError(
            "`layer_names` must be a non-empty dict from level to layer "
            f"name. Received: layer_names={layer_names!r}"
        )
    available = {layer.name for layer in model.layers}
    missing = sorted(set(layer_names.values()) - available)
    if missing:
        raise ValueError(
            f"Model {model.name!r} has no layers named {missing}. "
            f"Received: layer_names={layer_names!r}"
        )
    outputs = {
        level: model.get_layer(name).output
        for level, name in layer_names.items()
    }
    return keras.Model(model.input, outputs, name=f"{model.name}_features")
