"""Pretrained weights: the table of released checkpoints.

`WEIGHTS` has one entry per released ImageNet-1k checkpoint, keyed
`"<architecture>.<tag>"` (e.g. `"eca_resnet50.official_in1k"`,
`"ecaresnet50d.miil_in1k"`). `build_model(..., weights=...)` resolves its
`weights` argument (`resolve_weights`) and loads the weights into the
built model (`load_weights`), both in `weights_loading`; downloads and the
cache are in `weights_cache`. Their public names are re-exported here.

Sources:

- The official ECA-Net checkpoints (`BangguWu/ECANet`, MIT): Google Drive,
  no published hash. The file is a `torch.save` training checkpoint
  `{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}` whose keys
  carry a `module.` prefix.
- The official SA-Net checkpoints (`wofmanaf/SA-Net`): Baidu Netdisk only,
  so they cannot be downloaded automatically (`url` is `None`); download
  them by hand and pass the file as `weights=`. SA-Net has no LICENSE file.
- timm's ECA / SE ResNets and torchvision's ResNet-18/34/50/101/152
  weights (as timm rehosts them, `resnet*.tv_in1k`), from the Hugging
  Face hub (`timm/<arch>.<tag>/model.safetensors`), verified against the
  sha256 the hub publishes for the file.
- torchvision's MobileNetV2 weights (`IMAGENET1K_V1`), from torchvision's
  own URL. Their file name carries the first hex digits of the file's
  sha256 (`mobilenet_v2-b0353104.pth`), which the download must match, as
  torchvision checks it (`hash_source="prefix"`).

timm's pruned models (`ecaresnet50d_pruned.miil_in1k`,
`ecaresnet101d_pruned.miil_in1k`) have other layer widths than the
registered architectures and are not listed.

Entry fields: `architecture`, `tag`, `url` (`None`: manual download),
`host` (`"gdrive"`, `"hub"`, `"url"` or `"manual"`), `gdrive_id` /
`hub_repo` / `hub_file`, `file_name`, `file_format` (`"pth"` or
`"safetensors"`), `sha256` (pinned hash or `None`), `hash_source`
(`"pinned"`, `"hub"`: checked against the hub's published hash,
`"prefix"`: the file's sha256 starts with the hex digits after the last
`-` of `file_name`, `"unpublished"`: none exists, `"manual"`),
`weights_layout` (the PyTorch
key layout, see `keras_eca.conversion`), `kernel_sizes` (the checkpoint's
ECA kernel size per stage, `None` without ECA), `preprocessing` (`mean`,
`std`, `input_size`, `crop_pct`, `interpolation`, `test_input_size`,
`test_crop_pct`), `top1` / `top5` (ImageNet-1k val at `input_size`),
`test_top1` / `test_top5` (at `test_input_size`, `None` if not reported),
`license`, `license_note`, `source` (where the weights are published),
`manual_download` (instructions for manual entries).
"""

import copy
import os

from keras_eca.applications import registry
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD

HUB_URL_ENV = "KERAS_ECA_HUB_URL"
GDRIVE_URL_ENV = "KERAS_ECA_GDRIVE_URL"
DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_GDRIVE_URL = "https://drive.usercontent.google.com"
HASH_SOURCES = ("pinned", "hub", "prefix", "unpublished", "manual")
PREPROCESSING_FIELDS = (
    "mean",
    "std",
    "input_size",
    "crop_pct",
    "interpolation",
    "test_input_size",
    "test_crop_pct",
)



class WeightsDownloadError(ValueError):
    """Table weights that cannot be obtained: no network, or manual only.

    Raised by `build_model(weights=...)` (and every model function) when
    the weights of the table are neither in the cache nor downloadable:
    the host cannot be reached, or the file can only be downloaded by hand
    (SA-Net). The message names the URL and says what to do: pass a local
    file as `weights=`, or place the downloaded file at `cache_path`, where
    the next load verifies and uses it. A file that is there but fails
    verification raises a plain `ValueError` instead.

    A subclass of `ValueError`, which was raised before, so existing
    handlers still catch it; catch this class to fall back, e.g., to
    random initialization.

    Attributes:
        key: the table key, e.g. `"resnet18.tv_in1k"`.
        url: where the file is downloaded from (`None`: by hand only).
        cache_path: where a downloaded file may be placed:
            `<cache_dir()>/<key><extension>`.
    """

    def __init__(self, message, key=None, url=None, cache_path=None):
        super().__init__(message)
        self.key = key
        self.url = url
        self.cache_path = cache_path

    def __reduce__(self):
        return (
            type(self),
            (str(self), self.key, self.url, self.cache_path),
        )


_ECANET_REPO = "https://github.com/BangguWu/ECANet"
_SANET_REPO = "https://github.com/wofmanaf/SA-Net"
_SANET_LICENSE_NOTE = (
    "wofmanaf/SA-Net has no LICENSE file (and never had one): the reuse "
    "rights for its code and weights are unclear."
)

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


_TORCHVISION_URL = "https://download.pytorch.org/models"
_TORCHVISION_DOCS = "https://pytorch.org/vision/stable/models/generated"
_TORCHVISION_LICENSE_NOTE = "torchvision weights (BSD-3-Clause)."


def _torchvision_resnet(architecture, top1, top5):
    return _timm(
        architecture,
        f"{architecture}.tv_in1k",
        _OFFICIAL,
        None,
        top1,
        top5,
        weights_layout="official",
        license="bsd-3-clause",
        license_note=_TORCHVISION_LICENSE_NOTE,
    )


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
    # torchvision's ResNet v1 weights (IMAGENET1K_V1), as rehosted by timm
    # (same keys). ResNet-50: timm's figures; the others: torchvision's.
    _torchvision_resnet("resnet18", 69.758, 89.078),
    _torchvision_resnet("resnet34", 73.314, 91.420),
    _torchvision_resnet("resnet50", 76.156, 92.86),
    _torchvision_resnet("resnet101", 77.374, 93.546),
    _torchvision_resnet("resnet152", 78.312, 94.046),
    # torchvision's MobileNetV2 (IMAGENET1K_V1), from torchvision's own URL.
    {
        "architecture": "mobilenet_v2",
        "tag": "tv_in1k",
        "url": f"{_TORCHVISION_URL}/mobilenet_v2-b0353104.pth",
        "host": "url",
        "file_name": "mobilenet_v2-b0353104.pth",
        "file_format": "pth",
        "sha256": None,
        "hash_source": "prefix",
        "weights_layout": "official",
        "kernel_sizes": None,
        "preprocessing": _OFFICIAL,
        "top1": 71.878,
        "top5": 90.286,
        "test_top1": None,
        "test_top5": None,
        "license": "bsd-3-clause",
        "license_note": _TORCHVISION_LICENSE_NOTE,
        "source": (
            f"{_TORCHVISION_DOCS}/torchvision.models.mobilenet_v2.html "
            "(MobileNet_V2_Weights.IMAGENET1K_V1)"
        ),
    },
]

WEIGHTS = {f"{e['architecture']}.{e['tag']}": e for e in _ENTRIES}
del _ENTRIES

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


def preprocessing_for(architecture, weights="imagenet"):
    """The preprocessing a `weights=` argument of `architecture` expects.

    What `build_model(architecture, weights=weights,
    include_preprocessing=True)` applies inside the model (`mean`, `std`),
    and how the images were prepared for the published accuracy (resize the
    shorter side to `input_size / crop_pct` with `interpolation`, then
    center-crop `input_size`).

    Args:
        architecture: str. A registry key, see
            `keras_eca.applications.list_models()`.
        weights: `"imagenet"`, a weights tag or key of `architecture` (the
            table entry's preprocessing), or `None` or the path to a local
            weights file (the ImageNet defaults: mean `(0.485, 0.456,
            0.406)`, std `(0.229, 0.224, 0.225)`, 224 pixels, crop 0.875,
            bilinear). Defaults to `"imagenet"`.

    Returns:
        A new dict with the fields `mean`, `std` (per RGB channel, for
        images scaled to [0, 1]), `input_size`, `crop_pct`,
        `interpolation`, `test_input_size` and `test_crop_pct`.

    Raises:
        ValueError: if `architecture` is not registered, or `weights`
            names weights it does not have (`"imagenet"` for an
            architecture without released weights).

    Example:

    >>> from keras_eca.applications import weights
    >>> config = weights.preprocessing_for("ecaresnet50t", "imagenet")
    >>> config["input_size"], config["crop_pct"], config["interpolation"]
    (256, 0.875, 'bicubic')
    >>> weights.preprocessing_for("se_resnet50", None)["mean"]
    (0.485, 0.456, 0.406)
    """
    # Imported here: the table itself does not import keras.
    from keras_eca.applications import weights_loading

    registry.check_model_name(architecture)
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if weights is not None and not isinstance(weights, str):
        raise ValueError(
            "`weights` must be None, 'imagenet', a weights tag or key, or "
            f"the path to a weights file. Received: weights={weights!r}"
        )
    if weights is None or not weights_loading.is_weights_name(weights):
        return _preprocessing()
    key = weights_loading.table_key(architecture, weights)
    return copy.deepcopy(WEIGHTS[key]["preprocessing"])



# The download / cache and loading halves sit above this table (they read
# it); their public names stay reachable here, resolved on first use so
# that the table imports neither them nor keras.
_ELSEWHERE = {
    "keras_eca.applications.weights_cache": (
        "CACHE_SUBDIR",
        "cache_dir",
        "checkpoint_path",
        "converted_path",
        "download_url",
    ),
    "keras_eca.applications.weights_loading": (
        "FILE_EXTENSIONS",
        "KERAS_EXTENSIONS",
        "PYTORCH_EXTENSIONS",
        "PYTORCH_TOP_PREFIXES",
        "SAFETENSORS_EXTENSIONS",
        "TOP_LAYERS",
        "WeightsRequest",
        "is_weights_name",
        "load_weights",
        "model_kernel_sizes",
        "resolve_weights",
        "table_key",
    ),
}
_MODULE_OF = {
    name: module for module, names in _ELSEWHERE.items() for name in names
}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "CACHE_SUBDIR",
    "DEFAULT_GDRIVE_URL",
    "DEFAULT_HUB_URL",
    "FILE_EXTENSIONS",
    "GDRIVE_URL_ENV",
    "HASH_SOURCES",
    "HUB_URL_ENV",
    "KERAS_EXTENSIONS",
    "PREPROCESSING_FIELDS",
    "PYTORCH_EXTENSIONS",
    "PYTORCH_TOP_PREFIXES",
    "SAFETENSORS_EXTENSIONS",
    "TOP_LAYERS",
    "WEIGHTS",
    "WeightsDownloadError",
    "WeightsRequest",
    "cache_dir",
    "checkpoint_path",
    "converted_path",
    "default_weights",
    "download_url",
    "is_weights_name",
    "list_weights",
    "load_weights",
    "model_kernel_sizes",
    "preprocessing_for",
    "resolve_weights",
    "table_key",
    "weights_config",
]
