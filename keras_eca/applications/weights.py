"""Pretrained weights: the table of released checkpoints, downloads, loading.

`WEIGHTS` has one entry per released ImageNet-1k checkpoint, keyed
`"<architecture>.<tag>"` (e.g. `"eca_resnet50.official_in1k"`,
`"ecaresnet50d.miil_in1k"`). `build_model(..., weights=...)` resolves its
`weights` argument here (`resolve_weights`) and loads the weights into the
built model (`load_weights`).

Sources:

- The official ECA-Net checkpoints (`BangguWu/ECANet`, MIT): Google Drive,
  no published hash. The file is a `torch.save` training checkpoint
  `{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}` whose keys
  carry a `module.` prefix.
- The official SA-Net checkpoints (`wofmanaf/SA-Net`): Baidu Netdisk only,
  so they cannot be downloaded automatically (`url` is `None`); download
  them by hand and pass the file as `weights=`. SA-Net has no LICENSE file.
- timm's ECA / SE ResNets and the torchvision ResNet-50 weights, from the
  Hugging Face hub (`timm/<arch>.<tag>/model.safetensors`), verified
  against the sha256 the hub publishes for the file.

timm's pruned models (`ecaresnet50d_pruned.miil_in1k`,
`ecaresnet101d_pruned.miil_in1k`) have other layer widths than the
registered architectures and are not listed.

Entry fields: `architecture`, `tag`, `url` (`None`: manual download),
`host` (`"gdrive"`, `"hub"`, `"url"` or `"manual"`), `gdrive_id` /
`hub_repo` / `hub_file`, `file_name`, `file_format` (`"pth"` or
`"safetensors"`), `sha256` (pinned hash or `None`), `hash_source`
(`"pinned"`, `"hub"`: checked against the hub's published hash,
`"unpublished"`: none exists, `"manual"`), `weights_layout` (the PyTorch
key layout, see `keras_eca.conversion`), `kernel_sizes` (the checkpoint's
ECA kernel size per stage, `None` without ECA), `preprocessing` (`mean`,
`std`, `input_size`, `crop_pct`, `interpolation`, `test_input_size`,
`test_crop_pct`), `top1` / `top5` (ImageNet-1k val at `input_size`),
`test_top1` / `test_top5` (at `test_input_size`, `None` if not reported),
`license`, `license_note`, `source` (where the weights are published),
`manual_download` (instructions for manual entries).

Downloads go through `keras.utils.get_file` into `$KERAS_HOME/keras_eca`
(default `~/.keras/keras_eca`): the file lands in a temporary folder inside
the cache, is verified and converted, and only then moved into place with
`os.replace`, next to its converted Keras weights
`<architecture>.<tag>.weights.h5`. Later loads read the converted file
and never touch the network. The environment variables
`KERAS_ECA_HUB_URL` (default `https://huggingface.co`) and
`KERAS_ECA_GDRIVE_URL` (default `https://drive.usercontent.google.com`)
change the hosts, e.g. to a mirror.
"""

import copy
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import warnings

import keras

from keras_eca import checkpoints
from keras_eca import conversion
from keras_eca.applications import registry
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD
from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import EfficientChannelAttentionNS

HUB_URL_ENV = "KERAS_ECA_HUB_URL"
GDRIVE_URL_ENV = "KERAS_ECA_GDRIVE_URL"
DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_GDRIVE_URL = "https://drive.usercontent.google.com"
CACHE_SUBDIR = "keras_eca"

KERAS_EXTENSIONS = (".weights.h5", ".keras")
PYTORCH_EXTENSIONS = (".pth", ".pth.tar", ".pt", ".bin")
SAFETENSORS_EXTENSIONS = (".safetensors",)
FILE_EXTENSIONS = KERAS_EXTENSIONS + PYTORCH_EXTENSIONS + SAFETENSORS_EXTENSIONS
# Classifier tensors of the PyTorch layouts (dropped for include_top=False).
PYTORCH_TOP_PREFIXES = ("fc.", "classifier.")
# Keras layers of the classifier (`include_top=True` only).
TOP_LAYERS = ("predictions",)
HASH_SOURCES = ("pinned", "hub", "unpublished", "manual")
PREPROCESSING_FIELDS = (
    "mean",
    "std",
    "input_size",
    "crop_pct",
    "interpolation",
    "test_input_size",
    "test_crop_pct",
)

_ECANET_REPO = "https://github.com/BangguWu/ECANet"
_SANET_REPO = "https://github.com/wofmanaf/SA-Net"
_SANET_LICENSE_NOTE = (
    "wofmanaf/SA-Net has no LICENSE file (and never had one): the reuse "
    "rights for its code and weights are unclear."
)
_HTML_PREFIXES = (b"<!doctype html", b"<html")
_STAGING_PREFIX = ".download-"
_STALE_SECONDS = 24 * 3600


def _preprocessing(
    input_size=224,
    crop_pct=0.875,
    interpolation="bilinear",
    test_input_size=None,
    test_crop_pct=None,
):
    return {
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "input_size": input_size,
        "crop_pct": crop_pct,
        "interpolation": interpolation,
        "test_input_size": test_input_size or input_size,
        "test_crop_pct": test_crop_pct or crop_pct,
    }


# timm's pretrained-config helpers (timm/models/resnet.py): `_cfg` bilinear
# 0.875, `_tcfg` bicubic, `_ttcfg` bicubic + test 288 @ 0.95, `_rcfg` (RSB
# A1/A2) 224 @ 0.95, test 288 @ 1.0, `_r3cfg` (RSB A3) 160 @ 0.95, test
# 224 @ 0.95. Resize the shorter side to input_size / crop_pct, then crop.
_TIMM_MIIL = _preprocessing(
    interpolation="bicubic", test_input_size=288, test_crop_pct=0.95
)
_TIMM_RA2_256 = _preprocessing(
    input_size=256,
    interpolation="bicubic",
    test_input_size=320,
    test_crop_pct=0.95,
)
_TIMM_RSB = _preprocessing(
    crop_pct=0.95,
    interpolation="bicubic",
    test_input_size=288,
    test_crop_pct=1.0,
)
_TIMM_RSB_A3 = _preprocessing(
    input_size=160,
    crop_pct=0.95,
    interpolation="bicubic",
    test_input_size=224,
    test_crop_pct=0.95,
)
# The official ImageNet scripts (torchvision's example): resize 256,
# center-crop 224, bilinear.
_OFFICIAL = _preprocessing()


def _official_eca(architecture, checkpoint, drive_id, kernel_sizes, top1, top5):
    return {
        "architecture": architecture,
        "tag": "official_in1k",
        "url": (
            f"{DEFAULT_GDRIVE_URL}/download?id={drive_id}"
            "&export=download&confirm=t"
        ),
        "host": "gdrive",
        "gdrive_id": drive_id,
        "file_name": f"{checkpoint}.pth.tar",
        "file_format": "pth",
        "sha256": None,
        "hash_source": "unpublished",
        "weights_layout": "official",
        "kernel_sizes": kernel_sizes,
        "preprocessing": _OFFICIAL,
        "top1": top1,
        "top5": top5,
        "test_top1": None,
        "test_top5": None,
        "license": "MIT",
        "license_note": "BangguWu/ECANet is MIT-licensed.",
        "source": f"{_ECANET_REPO} (README: {checkpoint})",
    }


def _official_sa(architecture, extract_code, top1, top5):
    return {
        "architecture": architecture,
        "tag": "official_in1k",
        "url": None,
        "host": "manual",
        "file_name": f"{architecture}.pth.tar",
        "file_format": "pth",
        "sha256": None,
        "hash_source": "manual",
        "weights_layout": "official",
        "kernel_sizes": None,
        "preprocessing": _OFFICIAL,
        "top1": top1,
        "top5": top5,
        "test_top1": None,
        "test_top5": None,
        "license": None,
        "license_note": _SANET_LICENSE_NOTE,
        "source": f"{_SANET_REPO} (README: {architecture}, BaiduDrive)",
        "manual_download": (
            f"The official {architecture} weights are only on Baidu Netdisk, "
            "which cannot be downloaded from automatically. Download "
            f"{architecture}.pth.tar by hand from the BaiduDrive link in the "
            f"README of {_SANET_REPO} (extract code {extract_code}), then "
            f"pass the file: build_model({architecture!r}, "
            f"weights='/path/to/{architecture}.pth.tar'). "
            + _SANET_LICENSE_NOTE
        ),
    }


def _timm(
    architecture,
    timm_name,
    preprocessing,
    kernel_sizes,
    top1,
    top5,
    test_top1=None,
    test_top5=None,
    *,
    weights_layout="timm",
    license="apache-2.0",
    license_note="timm weights, apache-2.0 per the timm model cards.",
):
    repo = f"timm/{timm_name}"
    return {
        "architecture": architecture,
        "tag": timm_name.split(".", 1)[1],
        "url": f"{DEFAULT_HUB_URL}/{repo}/resolve/main/model.safetensors",
        "host": "hub",
        "hub_repo": repo,
        "hub_file": "model.safetensors",
        "file_name": "model.safetensors",
        "file_format": "safetensors",
        "sha256": None,
        "hash_source": "hub",
        "weights_layout": weights_layout,
        "kernel_sizes": kernel_sizes,
        "preprocessing": preprocessing,
        "top1": top1,
        "top5": top5,
        "test_top1": test_top1,
        "test_top5": test_top5,
        "license": license,
        "license_note": license_note,
        "source": f"{DEFAULT_HUB_URL}/{repo}",
    }


# timm's EcaModule on the bottleneck widths 256..2048 (k >= 3).
_TIMM_ECA_K = (5, 5, 5, 7)

_ENTRIES = [
    # Official ECA-Net (BangguWu/ECANet README): top-1 / top-5 at 224.
    _official_eca(
        "eca_resnet18",
        "eca_resnet18_k3577",
        "1LMRFRTyzVifGBi2MUpTuYEWW44S8mwyl",
        (3, 5, 7, 7),
        70.92,
        89.93,
    ),
    _official_eca(
        "eca_resnet34",
        "eca_resnet34_k3357",
        "15LV5Jkea3GPzvLP5__H7Gg88oNQUxBDE",
        (3, 3, 5, 7),
        74.21,
        91.83,
    ),
    _official_eca(
        "eca_resnet50",
        "eca_resnet50_k3557",
        "1670rce333c_lyMWFzBlNZoVUvtxbCF_U",
        (3, 5, 5, 7),
        77.42,
        93.62,
    ),
    _official_eca(
        "eca_resnet101",
        "eca_resnet101_k3357",
        "1b5FQ8yDFnZ_UhvWT9txmjI_LjbKkgnvC",
        (3, 3, 5, 7),
        78.65,
        94.34,
    ),
    _official_eca(
        "eca_resnet152",
        "eca_resnet152_k3357",
        "1_bYnaOg9ptsILC_iC7uQ5Izv-u2rjYG5",
        (3, 3, 5, 7),
        78.92,
        94.55,
    ),
    _official_eca(
        "eca_mobilenet_v2",
        "eca_mobilenetv2_k13",
        "1FxzeXPg1SJQZzVVH4HRjMeq_SVMfidUm",
        (1, 1, 1, 1, 3, 3, 3),
        72.56,
        90.81,
    ),
    # Official SA-Net (wofmanaf/SA-Net README): Baidu only.
    _official_sa("sa_resnet50", "474p", 77.88, 93.89),
    _official_sa("sa_resnet101", "6nxm", 78.95, None),
    # timm (results-imagenet.csv; top-5 from the timm model cards).
    _timm(
        "ecaresnet26t",
        "ecaresnet26t.ra2_in1k",
        _TIMM_RA2_256,
        _TIMM_ECA_K,
        78.894,
        94.54,
        79.900,
        95.07,
    ),
    _timm(
        "ecaresnet50d",
        "ecaresnet50d.miil_in1k",
        _TIMM_MIIL,
        _TIMM_ECA_K,
        80.634,
        95.310,
        81.648,
        95.884,
    ),
    _timm(
        "ecaresnet50t",
        "ecaresnet50t.ra2_in1k",
        _TIMM_RA2_256,
        _TIMM_ECA_K,
        81.450,
        95.67,
        82.370,
        96.14,
    ),
    _timm(
        "ecaresnet50t",
        "ecaresnet50t.a1_in1k",
        _TIMM_RSB,
        _TIMM_ECA_K,
        81.282,
        95.16,
        82.110,
        95.65,
    ),
    _timm(
        "ecaresnet50t",
        "ecaresnet50t.a2_in1k",
        _TIMM_RSB,
        _TIMM_ECA_K,
        80.884,
        95.02,
        81.682,
        95.54,
    ),
    _timm(
        "ecaresnet50t",
        "ecaresnet50t.a3_in1k",
        _TIMM_RSB_A3,
        _TIMM_ECA_K,
        77.786,
        93.60,
        79.548,
        94.72,
    ),
    _timm(
        "ecaresnetlight",
        "ecaresnetlight.miil_in1k",
        _TIMM_MIIL,
        _TIMM_ECA_K,
        80.454,
        95.24,
        81.430,
        95.82,
    ),
    _timm(
        "ecaresnet101d",
        "ecaresnet101d.miil_in1k",
        _TIMM_MIIL,
        _TIMM_ECA_K,
        82.180,
        96.062,
        83.006,
        96.524,
    ),
    _timm(
        "ecaresnet269d",
        "ecaresnet269d.ra2_in1k",
        _preprocessing(
            input_size=320,
            crop_pct=0.95,
            interpolation="bicubic",
            test_input_size=352,
            test_crop_pct=1.0,
        ),
        _TIMM_ECA_K,
        84.724,
        97.18,
        84.968,
        97.224,
    ),
    _timm(
        "seresnet50",
        "seresnet50.ra2_in1k",
        _TIMM_MIIL,
        None,
        80.260,
        95.08,
        81.30,
        95.65,
    ),
    _timm(
        "timm_resnet50",
        "resnet50.a1_in1k",
        _TIMM_RSB,
        None,
        80.382,
        94.60,
        81.22,
        95.11,
    ),
    # torchvision's ResNet-50 v1 weights, as rehosted by timm (same keys).
    _timm(
        "resnet50",
        "resnet50.tv_in1k",
        _preprocessing(),
        None,
        76.156,
        92.86,
        weights_layout="official",
        license="bsd-3-clause",
        license_note="torchvision weights (BSD-3-Clause).",
    ),
]

WEIGHTS = {f"{e['architecture']}.{e['tag']}": e for e in _ENTRIES}
del _ENTRIES

# Sessions warn once per unverified file.
_WARNED = set()


def list_weights(pattern=None):
    """Returns the keys of the weights table, `"<architecture>.<tag>"`.

    Args:
        pattern: str or `None`. A shell-style wildcard (`fnmatch`) the keys
            must match, e.g. `"ecaresnet50t.*"`. `None` lists every entry.
            Defaults to `None`.

    Returns:
        A list of keys, in table order. For each architecture the first
        key is its `weights="imagenet"` default.

    Raises:
        ValueError: if `pattern` is not a string or `None`.

    Example:

    >>> keras_eca.applications.weights.list_weights("ecaresnet50t.*")
    ['ecaresnet50t.ra2_in1k', 'ecaresnet50t.a1_in1k', \
'ecaresnet50t.a2_in1k', 'ecaresnet50t.a3_in1k']
    """
    return registry.filter_names(WEIGHTS, pattern)


def weights_config(key):
    """Returns a copy of the weights table entry `key`.

    Args:
        key: str. `"<architecture>.<tag>"`, see `list_weights()`.

    Returns:
        A dict with the entry's fields (see the module docstring).

    Raises:
        ValueError: if `key` is not in the table.

    Example:

    >>> entry = keras_eca.applications.weights.weights_config(
    ...     "eca_resnet50.official_in1k")
    >>> entry["kernel_sizes"], entry["top1"], entry["hash_source"]
    ((3, 5, 5, 7), 77.42, 'unpublished')
    >>> entry["preprocessing"]["input_size"]
    224
    """
    if not isinstance(key, str) or key not in WEIGHTS:
        raise ValueError(
            f"`key` must be one of {list_weights()}. Received: key={key!r}"
        )
    return copy.deepcopy(WEIGHTS[key])


def default_weights(architecture):
    """Returns the key `weights="imagenet"` stands for.

    Args:
        architecture: str. A registry key.

    Returns:
        The first table key of `architecture`, or `None` if it has no
        weights.

    Example:

    >>> keras_eca.applications.weights.default_weights("ecaresnet50t")
    'ecaresnet50t.ra2_in1k'
    """
    for key, entry in WEIGHTS.items():
        if entry["architecture"] == architecture:
            return key
    return None


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
        ValueError: if the architecture has no such weights, the weights
            must be downloaded by hand (SA-Net), the file does not exist or
            has an unsupported extension.
    """
    del include_top  # Both variants load from the same files.
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise _weights_error(architecture, weights)
    if is_weights_name(weights):
        return WeightsRequest("table", key=_table_key(architecture, weights))
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


def _table_key(architecture, weights):
    if weights == "imagenet":
        key = default_weights(architecture)
        if key is None:
            with_weights = sorted(
                {entry["architecture"] for entry in WEIGHTS.values()}
            )
            raise ValueError(
                f"Pretrained weights are not available for {architecture!r}: "
                "no checkpoint of it was released. Architectures with "
                f"weights: {with_weights}. Received: weights={weights!r}"
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
    entry = WEIGHTS[key]
    if entry["url"] is None:
        raise ValueError(
            f"{entry['manual_download']} Received: weights={weights!r}"
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


# --- Table weights: download, verify, convert, cache -----------------------


def cache_dir():
    """The folder of downloaded and converted weights (created if needed).

    `$KERAS_HOME/keras_eca`, or `~/.keras/keras_eca` without `KERAS_HOME`
    (read at each call); a temporary folder if that is not writable.

    Returns:
        The folder's path.
    """
    root = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    path = os.path.join(root, CACHE_SUBDIR)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        path = os.path.join(tempfile.gettempdir(), ".keras", CACHE_SUBDIR)
        os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
        path = os.path.join(tempfile.gettempdir(), ".keras", CACHE_SUBDIR)
        os.makedirs(path, exist_ok=True)
    return path


def _base_url(variable, default):
    return (os.environ.get(variable) or default).rstrip("/")


def download_url(key):
    """The URL `key` is downloaded from, after the host overrides.

    Args:
        key: str. A table key.

    Returns:
        The URL, or `None` for weights that must be downloaded by hand.
    """
    entry = WEIGHTS[key]
    if entry["host"] == "hub":
        hub = _base_url(HUB_URL_ENV, DEFAULT_HUB_URL)
        return f"{hub}/{entry['hub_repo']}/resolve/main/{entry['hub_file']}"
    if entry["host"] == "gdrive":
        drive = _base_url(GDRIVE_URL_ENV, DEFAULT_GDRIVE_URL)
        return (
            f"{drive}/download?id={entry['gdrive_id']}"
            "&export=download&confirm=t"
        )
    return entry["url"]


def _hub_sha256(entry):
    """The sha256 the hub publishes for the entry's file (its LFS oid)."""
    hub = _base_url(HUB_URL_ENV, DEFAULT_HUB_URL)
    url = f"{hub}/api/models/{entry['hub_repo']}/tree/main"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            listing = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ValueError(
            f"Cannot get the published sha256 of {entry['hub_file']} from "
            f"{url} ({error}), so the download cannot be verified."
        ) from error
    for item in listing if isinstance(listing, list) else []:
        if isinstance(item, dict) and item.get("path") == entry["hub_file"]:
            oid = (item.get("lfs") or {}).get("oid")
            if isinstance(oid, str) and re.fullmatch(r"[0-9a-f]{64}", oid):
                return oid
    raise ValueError(
        f"{url} publishes no sha256 (LFS oid) for {entry['hub_file']}, so "
        "the download cannot be verified."
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_name(key, entry):
    ext = ".pth.tar" if entry["file_name"].endswith(".pth.tar") else (
        os.path.splitext(entry["file_name"])[1]
    )
    return key + ext


def converted_path(key):
    """Where the converted Keras weights of `key` are cached.

    Args:
        key: str. A table key.

    Returns:
        `<cache_dir()>/<architecture>.<tag>.weights.h5` (it may not exist).
    """
    return os.path.join(cache_dir(), f"{key}.weights.h5")


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
    converted = converted_path(key)
    if os.path.isfile(converted):
        _keras_load(source, converted)
    else:
        _fetch_and_convert(key, source)
    if source is not model:
        _copy_by_name(source, model, key)


def _fetch_and_convert(key, model):
    """Downloads (or reuses) the checkpoint of `key`, converts it into
    `model` and caches the converted weights; nothing unverified stays."""
    entry = WEIGHTS[key]
    cache = cache_dir()
    raw = os.path.join(cache, _raw_name(key, entry))
    if (
        os.path.isfile(raw)
        and entry["sha256"]
        and _sha256(raw) != entry["sha256"]
    ):
        os.remove(raw)
    _remove_stale_downloads(cache)
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache)
    try:
        if os.path.isfile(raw):
            # Verified (or, without a published hash, converted) before.
            try:
                _convert(model, raw, layout=entry["weights_layout"])
            except Exception:
                os.remove(raw)
                raise
        else:
            fetched, digest = _download(key, entry, staging)
            _convert_download(model, fetched, digest, entry, key)
            os.replace(fetched, raw)
        staged = os.path.join(staging, f"{key}.weights.h5")
        model.save_weights(staged)
        os.replace(staged, converted_path(key))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_downloads(cache):
    """Removes staging folders a killed process left (older than a day;
    younger ones may belong to a download running in another process)."""
    now = time.time()
    for name in os.listdir(cache):
        path = os.path.join(cache, name)
        if name.startswith(_STAGING_PREFIX) and os.path.isdir(path):
            if now - os.path.getmtime(path) > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)


def _download(key, entry, staging):
    """Downloads into `staging`; returns `(path, sha256)` once verified."""
    url = download_url(key)
    expected = entry["sha256"]
    if expected is None and entry["hash_source"] == "hub":
        expected = _hub_sha256(entry)
    try:
        path = keras.utils.get_file(
            fname=_raw_name(key, entry),
            origin=url,
            cache_dir=staging,
            cache_subdir="",
        )
    except Exception as error:
        raise ValueError(
            f"Cannot download the weights {key!r} from {url}: {error}"
        ) from error
    actual = _sha256(path)
    if expected is not None and actual != expected:
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} is "
            f"corrupt or was changed: its sha256 is {actual}, expected "
            f"{expected}. It was deleted; try again, or download it by hand "
            "and pass the file as `weights=`."
        )
    with open(path, "rb") as file:
        head = file.read(64).lstrip().lower()
    if head.startswith(_HTML_PREFIXES):
        raise ValueError(
            f"{url} returned a web page instead of the weights {key!r} "
            "(download quota exceeded, or the file moved). It was deleted. "
            f"Download {entry['file_name']} by hand from {entry['source']} "
            "and pass the file as `weights=`."
        )
    return path, actual


def _convert_download(model, path, digest, entry, key):
    url = download_url(key)
    expected = entry["sha256"] or (
        "the hub's published hash" if entry["hash_source"] == "hub" else None
    )
    try:
        _convert(model, path, layout=entry["weights_layout"])
    except checkpoints.UnsafeCheckpointError:
        raise
    except Exception as error:
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} could "
            f"not be loaded, so it was deleted (sha256 {digest}, expected "
            f"{expected or 'unknown: none is published'}). {error}"
        ) from error
    if entry["sha256"] is None and entry["hash_source"] == "unpublished":
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"The weights {key!r} from {url} could not be verified: no "
                "sha256 is published for them. The file loads strictly, so "
                f"it was kept; its sha256 is {digest} (pin it in "
                f"keras_eca.applications.weights.WEIGHTS[{key!r}]['sha256'] "
                "to verify later downloads).",
                stacklevel=2,
            )
