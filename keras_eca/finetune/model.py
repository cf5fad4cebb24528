"""The fine-tuning model and which of its layers train in each phase.

The model is functional: RGB images in [0, 255] -> the registry backbone
(`include_top=False`, `pooling="avg"`, `include_preprocessing=True`, so it
normalises with its weights' own mean and std), nested as a sub-model
named `"backbone"` -> dropout -> a float32 softmax classifier.

BatchNorm: under Keras 3.15, calling the backbone with `training=False`
does not keep `fit` from updating the statistics of an unfrozen backbone
(measured); a BatchNormalization layer runs in inference mode only when
its `trainable` is False. Phase 2 therefore sets every BatchNormalization
layer (FoldedBatchNormalization is one) non-trainable.
"""

import keras

from keras_eca import applications
from keras_eca.applications import feature_extraction
from keras_eca.applications import weights as weights_lib

BACKBONE = "backbone"
UNFREEZE_ALL = "all"
# The backbone's stages at strides 4, 8, 16 and 32 (the stem goes with
# the first, the last also holds the head convolution and the pooling).
NUM_STAGES = 4


class WeightsFallback(Exception):
    """Internal: the requested weights cannot be had (offline)."""


def build_finetune_model(
    architecture,
    *,
    weights,
    image_size,
    num_classes,
    dropout,
    seed=0,
    say=None,
):
    """Builds the fine-tuning model, its random weights drawn from `seed`.

    Args:
        architecture: a registry key.
        weights: as `build_model`'s `weights=` (`"imagenet"`, a tag or key,
            a file, `None`).
        image_size: int, the input side.
        num_classes: int.
        dropout: float, the dropout rate before the classifier.
        seed: the random seed of the weights (and of Keras' generators).
        say: callable for messages (the offline fallback), or `None`.

    Returns:
        `(model, weights_info)`: weights_info a dict with `requested`,
        `loaded` (the table key or the file, `None` for random
        initialisation), `pretrained` (bool) and `note` (why random
        initialisation was used, if it was).
    """
    say = say or (lambda text: None)
    keras.utils.set_random_seed(seed)
    info = {"requested": weights, "loaded": None, "pretrained": False, "note": None}
    requested = weights
    if weights == "imagenet" and weights_lib.default_weights(architecture) is None:
        info["note"] = (
            f"No ImageNet weights exist for {architecture!r}: training from "
            "random initialisation."
        )
        say(info["note"])
        requested = None
    try:
        backbone = _backbone(architecture, requested, image_size)
    except applications.WeightsDownloadError as error:
        which = f"{weights!r}" + (
            f" ({error.key})" if error.key and error.key != weights else ""
        )
        source = f" from {error.url}" if error.url else ""
        info["note"] = (
            f"The weights {which} are not at hand and could not be "
            f"downloaded{source}. Training from random initialisation "
            "instead."
        )
        info["error"] = str(error)
        say(info["note"])
        hint = "To start from them, pass the downloaded file as --weights"
        if error.cache_path:
            hint += f", or place it at {error.cache_path}"
        say(f"  {hint}.")
        requested = None
        # The failed build drew random weights: start again from the seed,
        # so that the run is the run of weights=None.
        keras.utils.set_random_seed(seed)
        backbone = _backbone(architecture, None, image_size)
    if requested is not None:
        request = weights_lib.resolve_weights(architecture, requested, False)
        info["loaded"] = request.key if request.kind == "table" else str(request.path)
        info["pretrained"] = True
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = backbone(inputs)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    model = keras.Model(inputs, outputs, name=f"{architecture}_finetune")
    return model, info


def _backbone(architecture, weights, image_size):
    return applications.build_model(
        architecture,
        include_top=False,
        weights=weights,
        input_shape=(image_size, image_size, 3),
        pooling="avg",
        include_preprocessing=True,
        name=BACKBONE,
    )


def backbone_of(model):
    return model.get_layer(BACKBONE)


def backbone_stages(backbone):
    """The backbone's layers in `NUM_STAGES` groups, bottom to top, cut
    after the feature maps at strides 4, 8 and 16
    (`feature_layer_names`)."""
    names = feature_extraction.feature_layer_names(backbone)
    order = [layer.name for layer in backbone.layers]
    cuts = [order.index(names[level]) for level in ("P2", "P3", "P4")]
    groups, start = [], 0
    for cut in cuts:
        groups.append(backbone.layers[start : cut + 1])
        start = cut + 1
    groups.append(backbone.layers[start:])
    return groups


def check_unfreeze(unfreeze):
    """`"all"` or an int in 0..4 (0: phase 2 is skipped)."""
    if unfreeze == UNFREEZE_ALL:
        return unfreeze
    if isinstance(unfreeze, str) and unfreeze.isdigit():
        unfreeze = int(unfreeze)
    if (
        isinstance(unfreeze, bool)
        or not isinstance(unfreeze, int)
        or not 0 <= unfreeze <= NUM_STAGES
    ):
        raise ValueError(
            f"`unfreeze` must be 'all' or the number of top stages to "
            f"train in phase 2, 0 to {NUM_STAGES}. "
            f"Received: unfreeze={unfreeze!r}"
        )
    return unfreeze


def is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _sublayers(layer):
    found = [layer]
    for child in getattr(layer, "layers", []) or []:
        found.extend(_sublayers(child))
    return found


def set_phase(model, phase, unfreeze=UNFREEZE_ALL):
    """Sets which layers train.

    - `"head"`: the backbone frozen (its BatchNorm in inference mode),
      the classifier trains.
    - `"backbone"`: the top `unfreeze` stages of the backbone train too
      (`"all"`: every stage), every BatchNormalization layer kept in
      inference mode (non-trainable: its statistics and its scale and
      offset stay as loaded).
    - `"scratch"`: everything trains, BatchNorm included (random
      initialisation).

    Returns:
        The number of trainable parameters.
    """
    backbone = backbone_of(model)
    # Layer by layer: under Keras 3.15 setting a model's `trainable` does
    # not reach back the layers an earlier phase set.
    for layer in _sublayers(model):
        layer.trainable = True
    if phase == "head":
        backbone.trainable = False
    elif phase == "backbone":
        stages = backbone_stages(backbone)
        count = NUM_STAGES if unfreeze == UNFREEZE_ALL else unfreeze
        for group in stages[: NUM_STAGES - count]:
            for layer in group:
                layer.trainable = False
        for layer in _sublayers(backbone):
            if is_batch_norm(layer):
                layer.trainable = False
    elif phase != "scratch":
        raise ValueError(f"Unknown phase {phase!r}")
    return trainable_parameters(model)


def trainable_parameters(model):
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


def batch_norm_layers(model):
    return [layer for layer in _sublayers(model) if is_batch_norm(layer)]
