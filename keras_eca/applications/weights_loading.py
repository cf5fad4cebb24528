"""Pretrained weights: `build_model`'s `weights=` argument, and loading.

`resolve_weights` tells table names from local files before the model is
built; `load_weights` loads either into the built model: Keras files
directly or layer by layer, PyTorch / safetensors files through
`keras_eca.conversion`, table weights from the cache of `weights_cache`.
"""

import logging
import os
import re
import warnings

import keras

from keras_eca import checkpoints
from keras_eca import conversion
from keras_eca.applications import weights_cache
from keras_eca.applications.weights import WEIGHTS
from keras_eca.applications.weights import default_weights
from keras_eca.applications.weights import list_weights
from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import EfficientChannelAttentionNS

KERAS_EXTENSIONS = (".weights.h5", ".keras")
PYTORCH_EXTENSIONS = (".pth", ".pth.tar", ".pt", ".bin")
SAFETENSORS_EXTENSIONS = (".safetensors",)
FILE_EXTENSIONS = KERAS_EXTENSIONS + PYTORCH_EXTENSIONS + SAFETENSORS_EXTENSIONS
# Classifier tensors of the PyTorch layouts (dropped for include_top=False).
PYTORCH_TOP_PREFIXES = ("fc.", "classifier.")
# Keras layers of the classifier (`include_top=True` only).
TOP_LAYERS = ("predictions",)


def is_weights_name(weights):
    """Tells weights names from files.

    Args:
        weights: a `weights` argument of `build_model`.

    Returns:
        `True` for `"imagenet"` and for strings that name table weights (a
        tag or a key) rather than a file: not an existing path, no path
        separator and no weights-file extension.
    """
    if not isinstance(weights, str):
        return False
    if weights == "imagenet":
        return True
    return not (
        os.path.exists(weights)
        or "/" in weights
        or os.sep in weights
        or weights.endswith(FILE_EXTENSIONS + (".h5",))
    )


class WeightsRequest:
    """What `resolve_weights` found: a table entry or a local file.

    Attributes:
        kind: `"table"`, `"keras"`, `"pytorch"` (`.pth`, `.bin`,
            `.safetensors`).
        key: the table key (`kind == "table"`), else `None`.
        path: the local file (not `"table"`), else `None`.
    """

    def __init__(self, kind, key=None, path=None):
        self.kind = kind
        self.key = key
        self.path = path

    def __repr__(self):
        return (
            f"WeightsRequest(kind={self.kind!r}, key={self.key!r}, "
            f"path={self.path!r})"
        )


def _weights_error(architecture, weights, reason=""):
    tags = [
        entry["tag"]
        for entry in WEIGHTS.values()
        if entry["architecture"] == architecture
    ]
    available = f"one of the tags {tags} of {architecture!r}, " if tags else ""
    return ValueError(
        f"{reason}`weights` must be None (random initialization), 'imagenet' "
        f"(pretrained), {available}or the path to an existing weights file "
        f"({', '.join(FILE_EXTENSIONS)}). Received: weights={weights!r}"
    )


def resolve_weights(architecture, weights, include_top):
    """Resolves a `build_model` `weights` argument before the model is built.

    Args:
        architecture: str. The registry key of the model.
        weights: `None`, `"imagenet"` (the architecture's default weights),
            a tag of the architecture (`"miil_in1k"`) or a full key
            (`"ecaresnet50d.miil_in1k"`), or the path to a `.weights.h5`,
            `.keras`, PyTorch (`.pth`, `.pth.tar`, `.pt`, `.bin`) or
            `.safetensors` file.
        include_top: bool. Whether the model has its classifier.

    Returns:
        `None` for `weights=None`, else a `WeightsRequest`.

    Raises:
        WeightsDownloadError: (a `ValueError`) if the weights must be
            downloaded by hand (SA-Net) and are not in the cache; the
            message says where to get them and where to put them.
        ValueError: if the architecture has no such weights, the file does
            not exist or has an unsupported extension.
    """
    del include_top  # Both variants load from the same files.
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise _weights_error(architecture, weights)
    if is_weights_name(weights):
        key = table_key(architecture, weights)
        if WEIGHTS[key]["url"] is None and not weights_cache.has_checkpoint(
            key
        ):
            raise weights_cache.manual_download_error(key, weights)
        return WeightsRequest("table", key=key)
    if not os.path.isfile(weights):
        raise _weights_error(architecture, weights)
    lowered = weights.lower()
    if lowered.endswith(KERAS_EXTENSIONS):
        return WeightsRequest("keras", path=weights)
    if lowered.endswith(PYTORCH_EXTENSIONS + SAFETENSORS_EXTENSIONS):
        return WeightsRequest("pytorch", path=weights)
    raise ValueError(
        "`weights` must be a file ending in one of "
        f"{list(FILE_EXTENSIONS)} (legacy Keras `.h5` files: build with "
        "weights=None, then call `model.load_weights(path)`). "
        f"Received: weights={weights!r}"
    )


def table_key(architecture, weights):
    """The table key a weights name of `architecture` stands for.

    Args:
        architecture: str. A registry key.
        weights: str. `"imagenet"` (the architecture's first entry), a tag
            (`"miil_in1k"`) or a full key (`"ecaresnet50d.miil_in1k"`).

    Returns:
        The key, e.g. `"ecaresnet50d.miil_in1k"`; whether it can be
        downloaded is not checked.

    Raises:
        ValueError: if `architecture` has no such weights.

    Example:

    >>> keras_eca.applications.weights.table_key("resnet18", "imagenet")
    'resnet18.tv_in1k'
    """
    if weights == "imagenet":
        key = default_weights(architecture)
        if key is None:
            with_weights = sorted(
                {entry["architecture"] for entry in WEIGHTS.values()}
            )
            raise ValueError(
                f"Pretrained weights are not available for {architecture!r}: "
                "no checkpoint of it was released. Build it with "
                "weights=None (random initialization) or a local weights "
                f"file. Architectures with weights: {with_weights}. "
                f"Received: weights={weights!r}"
            )
    elif "." in weights:
        key = weights
        owner = weights.split(".", 1)[0]
        if key not in WEIGHTS:
            raise _weights_error(
                architecture, weights, f"Unknown weights {weights!r}. "
            )
        if owner != architecture:
            raise ValueError(
                f"The weights {weights!r} belong to {owner!r}, not to "
                f"{architecture!r}: build {owner!r}, or pass one of "
                f"{list_weights(architecture + '.*')}. "
                f"Received: weights={weights!r}"
            )
    else:
        key = f"{architecture}.{weights}"
        if key not in WEIGHTS:
            raise _weights_error(
                architecture, weights, f"Unknown weights {weights!r}. "
            )
    return key


def load_weights(model, request, make_model, canonical):
    """Loads the weights `resolve_weights` found into a built model.

    Args:
        model: the model `build_model` built.
        request: a `WeightsRequest`.
        make_model: callable `(include_top, classes, canonical)` returning
            a new model of the same architecture, `weights=None`, with the
            same attention overrides unless `canonical` (the registry's own
            attention). Used to convert into, or copy from, a model with
            its classifier.
        canonical: bool. Whether `model` has the registry's own attention
            (no `attention`, `attention_kwargs` or `kernel_sizes`
            override).

    Raises:
        WeightsDownloadError: (a `ValueError`) if table weights are not in
            the cache and cannot be downloaded; the message names the URL,
            and the local file or cache path (`checkpoint_path(key)`) to
            use instead.
        ValueError: if the weights do not fit the model (by name, listing
            every difference), or a download cannot be verified.
        UnsafeCheckpointError: if a PyTorch file asks for code to run.
    """
    if request.kind == "keras":
        _load_keras_file(model, request.path, make_model)
    elif request.kind == "pytorch":
        _load_pytorch_file(model, request.path)
    else:
        _load_table_weights(model, request.key, make_model, canonical)


# --- Local files -----------------------------------------------------------


def _has_top(model):
    return any(layer.name in TOP_LAYERS for layer in model.layers)


def _h5_datasets(path):
    """`{dataset path: shape}` of an HDF5 (`.weights.h5`) file."""
    import h5py

    shapes = {}
    try:
        with h5py.File(path, "r") as file:
            file.visititems(
                lambda name, obj: shapes.__setitem__(name, obj.shape)
                if isinstance(obj, h5py.Dataset)
                else None
            )
    except OSError as error:
        raise ValueError(
            f"Cannot read the weights file {path!r}: it is not a valid "
            f"`.weights.h5` (HDF5) file ({error})."
        ) from error
    return shapes


def _classifier_units(shapes):
    """Classes of the file's one `Dense` classifier, or `None`."""
    units = [
        shape[0]
        for name, shape in shapes.items()
        if re.fullmatch(r"layers/dense(_\d+)?/vars/1", name)
    ]
    return units[0] if len(units) == 1 else None


def _keras_load(model, path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(path)
    except ValueError as error:
        raise ValueError(
            f"The weights file {path!r} does not fit model "
            f"{model.name!r}: {error}"
        ) from error


def _load_keras_file(model, path, make_model):
    """`.keras` / `.weights.h5` -> model: whole, or all but the top by name."""
    if path.lower().endswith(".keras"):
        try:
            source = keras.saving.load_model(path, compile=False)
        except Exception as error:
            raise ValueError(
                f"Cannot load the model file {path!r}: {error}"
            ) from error
        _copy_by_name(source, model, path)
        return
    shapes = _h5_datasets(path)
    if len(shapes) == len(model.weights):
        _keras_load(model, path)
        return
    units = _classifier_units(shapes)
    if _has_top(model) or units is None:
        expects = "with" if _has_top(model) else "without"
        raise ValueError(
            f"The weights file {path!r} holds {len(shapes)} weight tensors "
            f"but model {model.name!r} ({expects} its classifier) has "
            f"{len(model.weights)}: it was saved from a different model. "
            + (
                "It has no classifier: build the model with "
                "`include_top=False`."
                if _has_top(model) and len(shapes) < len(model.weights)
                else ""
            )
        )
    source = make_model(include_top=True, classes=units, canonical=False)
    if len(shapes) != len(source.weights):
        raise ValueError(
            f"The weights file {path!r} holds {len(shapes)} weight tensors "
            f"but model {model.name!r} with its classifier has "
            f"{len(source.weights)}: it was saved from a different model."
        )
    _keras_load(source, path)
    _copy_by_name(source, model, path)


def _copy_by_name(source, target, where, assign=True):
    """Copies every weighted layer of `target` from the same-named layer of
    `source`; only the classifier of `source` may be left over. With
    `assign=False`, only checks that the layers fit."""
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    missing, mismatched, values = [], [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        found = sources.pop(layer.name, None)
        if found is None:
            missing.append(layer.name)
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(w.shape) for w in found.weights]
        if type(found).__name__ != type(layer).__name__ or want != have:
            mismatched.append(
                f"{layer.name}: {type(found).__name__} {have} in the file, "
                f"{type(layer).__name__} {want} in the model"
            )
            continue
        values.append((layer, found.get_weights() if assign else None))
    unexpected = [name for name in sources if name not in TOP_LAYERS]
    errors = []
    if missing:
        errors.append(f"Layers missing from the file: {missing}")
    if mismatched:
        errors.append("Layers that differ:\n  " + "\n  ".join(mismatched))
    if unexpected:
        errors.append(f"Layers of the file not in the model: {unexpected}")
    if errors:
        raise ValueError(
            f"The weights in {where!r} do not fit model {target.name!r} "
            "(layers are matched by name; a classifier the model lacks is "
            "skipped):\n"
            + "\n".join(errors)
        )
    if assign:
        for layer, weights in values:
            layer.set_weights(weights)


def _say(message):
    """One line for the user, as Keras prints its own progress."""
    if keras.config.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logging.getLogger("keras_eca").info(message)


def _read_state_dict(path, include_top):
    state_dict = checkpoints.load_checkpoint(path)
    if not include_top:
        state_dict = {
            name: value
            for name, value in state_dict.items()
            if not name.startswith(PYTORCH_TOP_PREFIXES)
        }
    return state_dict


def _convert(model, path, layout="auto"):
    """PyTorch / safetensors file -> model, strictly. Returns the layout."""
    state_dict = _read_state_dict(path, _has_top(model))
    _say(
        f"keras_eca: converting {os.path.basename(path)} to Keras weights "
        f"for {model.name!r}."
    )
    try:
        return conversion.load_state_dict(model, state_dict, layout=layout)
    except ValueError as error:
        raise ValueError(
            f"Cannot load the checkpoint {path!r}: {error}"
        ) from error


def _load_pytorch_file(model, path):
    _convert(model, path)


# --- Table weights ---------------------------------------------------------


def _check_kernel_sizes(model, key):
    expected = WEIGHTS[key]["kernel_sizes"]
    if expected is None:
        return
    found = model_kernel_sizes(model)
    if found is None or tuple(found) == tuple(expected):
        return
    raise ValueError(
        f"The weights {key!r} have the ECA kernel sizes {list(expected)} per "
        f"stage, but model {model.name!r} has {list(found)}: `kernel_sizes` "
        f"must be None (the architecture's own) or {list(expected)} with "
        f"these weights. Received: weights={key!r}"
    )


def model_kernel_sizes(model):
    """The ECA kernel size of every stage of a ResNet / MobileNetV2 model.

    Args:
        model: a model built by `keras_eca.applications.build_model`.

    Returns:
        A list with one kernel size per stage, or `None` when the model has
        no ECA layers or a stage mixes kernel sizes.
    """
    per_stage = {}
    for layer in model.layers:
        if not isinstance(layer, EfficientChannelAttention) or isinstance(
            layer, EfficientChannelAttentionNS
        ):
            continue
        stage = conversion.stage_of_layer(layer.name)
        if stage is None:
            return None
        per_stage.setdefault(stage, set()).add(int(layer.kernel.shape[0]))
    if not per_stage or any(len(ks) != 1 for ks in per_stage.values()):
        return None
    return [per_stage[stage].pop() for stage in sorted(per_stage)]


def _load_table_weights(model, key, make_model, canonical):
    _check_kernel_sizes(model, key)
    full = canonical and _has_top(model) and model.output_shape[-1] == 1000
    # Other models load from the architecture's own, with its classifier.
    source = model
    if not full:
        source = make_model(include_top=True, classes=1000, canonical=True)
        # Fail before downloading when the model cannot take the weights.
        _copy_by_name(source, model, key, assign=False)
    weights_cache.load_cached(key, source, _convert)
    if source is not model:
        _copy_by_name(source, model, key)

