"""Keras layer name -> PyTorch module name, for each state_dict layout.

Layouts:

- `"official"`: torchvision ResNet / MobileNetV2 module names, as used by
  the official ECA-Net (`BangguWu/ECANet`) and SA-Net (`wofmanaf/SA-Net`)
  code: the attention module of a ResNet block is `eca` or `sa`.
- `"timm"`: `timm.models.resnet.ResNet`: deep stems in `conv1.{0,3,6}`,
  the attention of every block is named `se` (whatever its type), and the
  avg-down shortcut keeps its pool at `downsample.0`.
"""

import re

from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import ShuffleAttention

LAYOUTS = ("official", "timm")

_DEEP_STEM_CONV = {1: "conv1.0", 2: "conv1.3", 3: "conv1.6"}
_DEEP_STEM_BN = {1: "conv1.1", 2: "conv1.4"}
_RESNET_BRANCH = re.compile(r"^conv([2-5])_block(\d+)_([0-3])_(conv|bn)$")
_RESNET_ATTENTION = re.compile(r"^conv([2-5])_block(\d+)_attn$")
_STEM = re.compile(r"^conv1_([1-3])_(conv|bn)$")
_MOBILENET_BLOCK = re.compile(
    r"^block(\d+)_(expand_conv|expand_bn|dw_conv|dw_bn|project_conv|"
    r"project_bn|attn)$"
)
# Position in the block's `conv` Sequential of torchvision's MobileNetV2.
_MOBILENET_INDEX = {
    True: {  # with the 1x1 expansion (t != 1)
        "expand_conv": "0.0",
        "expand_bn": "0.1",
        "dw_conv": "1.0",
        "dw_bn": "1.1",
        "project_conv": "2",
        "project_bn": "3",
        "attn": "4",
    },
    False: {
        "dw_conv": "0.0",
        "dw_bn": "0.1",
        "project_conv": "1",
        "project_bn": "2",
        "attn": "3",
    },
}


def model_family(model):
    names = {layer.name for layer in model.layers}
    if "stem_conv" in names and "head_conv" in names:
        return "mobilenet_v2"
    if "conv1_bn" in names and "pool1_pool" in names:
        return "resnet"
    raise ValueError(
        f"Model {model.name!r} is not a keras_eca.applications ResNet or "
        "MobileNetV2 (its layer names are unknown), so its PyTorch names "
        f"cannot be derived. Received: model={model.name!r}"
    )


def torch_prefixes(model, layout):
    """Maps every layer of `model` to its PyTorch module name.

    Layers without weights map to `None`.
    """
    family = model_family(model)
    if family == "mobilenet_v2":
        if layout != "official":
            raise ValueError(
                "MobileNetV2 state_dicts use the torchvision / official "
                "ECA-Net layout; timm's MobileNetV2 is a different network. "
                f"Received: layout={layout!r}"
            )
        return _mobilenet_v2_prefixes(model)
    return _resnet_prefixes(model, layout)


def _attention_module(layer, layout):
    if layout == "timm":
        return "se"
    if isinstance(layer, EfficientChannelAttention):
        return "eca"
    if isinstance(layer, ShuffleAttention):
        return "sa"
    return "se"


def _resnet_prefixes(model, layout):
    names = {layer.name for layer in model.layers}
    # timm's avg-down shortcut is Sequential(pool or Identity, conv, bn).
    shift = 1 if any(n.endswith("_0_pool") for n in names) else 0
    prefixes = {}
    for layer in model.layers:
        name = layer.name
        prefix = None
        branch = _RESNET_BRANCH.match(name)
        attention = _RESNET_ATTENTION.match(name)
        stem = _STEM.match(name)
        if branch:
            stage, block, j, kind = branch.groups()
            module = f"layer{int(stage) - 1}.{int(block) - 1}"
            if j == "0":
                index = (0 if kind == "conv" else 1) + shift
                prefix = f"{module}.downsample.{index}"
            else:
                prefix = f"{module}.{kind}{j}"
        elif attention:
            stage, block = attention.groups()
            prefix = (
                f"layer{int(stage) - 1}.{int(block) - 1}."
                + _attention_module(layer, layout)
            )
        elif stem:
            i, kind = int(stem.group(1)), stem.group(2)
            table = _DEEP_STEM_CONV if kind == "conv" else _DEEP_STEM_BN
            prefix = table.get(i)
        elif name == "conv1_conv":
            prefix = "conv1"
        elif name == "conv1_bn":
            prefix = "bn1"
        elif name == "predictions":
            prefix = "fc"
        prefixes[name] = prefix
    return prefixes


def _mobilenet_v2_prefixes(model):
    names = {layer.name for layer in model.layers}
    blocks = {
        int(m.group(1))
        for m in map(_MOBILENET_BLOCK.match, names)
        if m is not None
    }
    head = f"features.{max(blocks) + 1}"
    fixed = {
        "stem_conv": "features.0.0",
        "stem_bn": "features.0.1",
        "head_conv": f"{head}.0",
        "head_bn": f"{head}.1",
        "predictions": "classifier.1",
    }
    prefixes = {}
    for layer in model.layers:
        match = _MOBILENET_BLOCK.match(layer.name)
        if match:
            block, part = int(match.group(1)), match.group(2)
            expands = f"block{block}_expand_conv" in names
            index = _MOBILENET_INDEX[expands][part]
            prefixes[layer.name] = f"features.{block}.conv.{index}"
        else:
            prefixes[layer.name] = fixed.get(layer.name)
    return prefixes
