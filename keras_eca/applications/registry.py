"""The one model registry: every architecture is a row of data.

`build_model` (in `factory.py`) turns a row into layers with the generic
ResNet or MobileNetV2 builder; the public functions (`ECAResNet50`, ...)
are one-line wrappers around it. Adding an architecture means adding a row.

Row fields, ResNet family:

- `block`: `"basic"` (2 convs) or `"bottleneck"` (1x1-3x3-1x1, x4 output).
- `depths`, `widths`: blocks and base width per stage (`layer1..4` in
  PyTorch, `conv2..conv5` in the Keras names).
- `stem`: `"default"` (7x7 conv), `"deep"` (3x3 convs 32-32-64) or
  `"tiered"` (3x3 convs 24-32-64); `avg_down`: average-pool shortcut.
- `attention`, `attention_kwargs`: the attention after the last BN of every
  residual branch, as `keras_eca.layers.get_attention(attention, **kwargs)`.
- `kernel_sizes`: ECA kernel size per stage, or `"adaptive"`.
- `zero_init_last`: start the last BN of every residual branch at a zero
  scale (timm's default init; the official and torchvision code use 1).

MobileNetV2 family: `stages` is the `(t, c, n, s)` table (expansion,
output channels, repeats, first stride) and `kernel_sizes` has one ECA
kernel size per table row.

Every row also records `num_features` (channels of the last feature map),
`feature_layers` / `feature_channels` (the layer names and widths of the
feature maps at strides 4, 8, 16 and 32, keyed `"P2"`..`"P5"`), the
public `display_name`, the PyTorch `weights_layout` its checkpoints use
(`"official"` or `"timm"`) and the `source` it reproduces.
"""

import copy
import fnmatch

from keras_eca.architectures import MOBILENET_V2_STAGES

RESNET_WIDTHS = (64, 128, 256, 512)

_ECA_PAPER = "Wang et al., CVPR 2020, https://arxiv.org/abs/1910.03151"
_SA_PAPER = "Yang et al., ICASSP 2021, https://arxiv.org/abs/2102.00240"
_SE_PAPER = "Hu et al., CVPR 2018, https://arxiv.org/abs/1709.01507"
_RESNET_PAPER = "He et al., CVPR 2016, https://arxiv.org/abs/1512.03385"
_BAG_OF_TRICKS = "He et al., CVPR 2019, https://arxiv.org/abs/1812.01187"
_MOBILENET_V2_PAPER = (
    "Sandler et al., CVPR 2018, https://arxiv.org/abs/1801.04381"
)
_ECANET = "BangguWu/ECANet models/eca_resnet.py"
_SANET = "wofmanaf/SA-Net models/sa_resnet.py"
_TIMM = "huggingface/pytorch-image-models timm/models/resnet.py"
_ECA_TIMM = _ECA_PAPER + "; ResNet-D / -T: " + _BAG_OF_TRICKS
_TORCHVISION = "torchvision.models.resnet (v1.5: stride on the 3x3 conv)"

# timm's EcaModule: the adaptive rule with a minimum kernel size of 3.
_TIMM_ECA = {"min_kernel_size": 3}


def _resnet(
    display_name,
    block,
    depths,
    *,
    stem="default",
    avg_down=False,
    attention=None,
    attention_kwargs=None,
    kernel_sizes=None,
    zero_init_last=False,
    weights_layout="official",
    source,
    reference,
):
    expansion = 4 if block == "bottleneck" else 1
    channels = [w * expansion for w in RESNET_WIDTHS]
    levels = ("P2", "P3", "P4", "P5")
    return {
        "family": "resnet",
        "display_name": display_name,
        "block": block,
        "depths": tuple(depths),
        "widths": RESNET_WIDTHS,
        "stem": stem,
        "avg_down": avg_down,
        "attention": attention,
        "attention_kwargs": dict(attention_kwargs or {}),
        "kernel_sizes": kernel_sizes,
        "zero_init_last": zero_init_last,
        "dropout_rate": 0.0,
        "num_features": channels[-1],
        "feature_layers": {
            level: f"conv{stage}_block{depth}_out"
            for level, stage, depth in zip(levels, range(2, 6), depths)
        },
        "feature_channels": dict(zip(levels, channels)),
        "weights_layout": weights_layout,
        "source": source,
        "reference": reference,
    }


def _mobilenet_v2(
    display_name,
    *,
    attention=None,
    attention_kwargs=None,
    kernel_sizes=None,
    dropout_rate,
    source,
    reference,
):
    return {
        "family": "mobilenet_v2",
        "display_name": display_name,
        "stages": MOBILENET_V2_STAGES,
        "stem_width": 32,
        "head_width": 1280,
        "attention": attention,
        "attention_kwargs": dict(attention_kwargs or {}),
        "kernel_sizes": kernel_sizes,
        "dropout_rate": dropout_rate,
        "num_features": 1280,
        # Last block at strides 4, 8 and 16 (all with a residual add, so the
        # name does not depend on the attention); stride 32: the head conv.
        "feature_layers": {
            "P2": "block3_add",
            "P3": "block6_add",
            "P4": "block13_add",
            "P5": "head_relu",
        },
        "feature_channels": {"P2": 24, "P3": 32, "P4": 96, "P5": 1280},
        "weights_layout": "official",
        "source": source,
        "reference": reference,
    }


_R18 = ("basic", (2, 2, 2, 2))
_R34 = ("basic", (3, 4, 6, 3))
_R50 = ("bottleneck", (3, 4, 6, 3))
_R101 = ("bottleneck", (3, 4, 23, 3))
_R152 = ("bottleneck", (3, 8, 36, 3))

MODELS = {
    # Plain ResNets (torchvision v1.5 layout).
    "resnet18": _resnet(
        "ResNet18", *_R18, source=_TORCHVISION, reference=_RESNET_PAPER
    ),
    "resnet34": _resnet(
        "ResNet34", *_R34, source=_TORCHVISION, reference=_RESNET_PAPER
    ),
    "resnet50": _resnet(
        "ResNet50", *_R50, source=_TORCHVISION, reference=_RESNET_PAPER
    ),
    "resnet101": _resnet(
        "ResNet101", *_R101, source=_TORCHVISION, reference=_RESNET_PAPER
    ),
    "resnet152": _resnet(
        "ResNet152", *_R152, source=_TORCHVISION, reference=_RESNET_PAPER
    ),
    # Official ECA-Net: per-stage kernel sizes of the released checkpoints
    # (k3577, k3357, k3557, k3357, k3357), not the code default [3,3,3,3].
    "eca_resnet18": _resnet(
        "ECAResNet18",
        *_R18,
        attention="eca",
        kernel_sizes=(3, 5, 7, 7),
        source=_ECANET,
        reference=_ECA_PAPER,
    ),
    "eca_resnet34": _resnet(
        "ECAResNet34",
        *_R34,
        attention="eca",
        kernel_sizes=(3, 3, 5, 7),
        source=_ECANET,
        reference=_ECA_PAPER,
    ),
    "eca_resnet50": _resnet(
        "ECAResNet50",
        *_R50,
        attention="eca",
        kernel_sizes=(3, 5, 5, 7),
        source=_ECANET,
        reference=_ECA_PAPER,
    ),
    "eca_resnet101": _resnet(
        "ECAResNet101",
        *_R101,
        attention="eca",
        kernel_sizes=(3, 3, 5, 7),
        source=_ECANET,
        reference=_ECA_PAPER,
    ),
    "eca_resnet152": _resnet(
        "ECAResNet152",
        *_R152,
        attention="eca",
        kernel_sizes=(3, 3, 5, 7),
        source=_ECANET,
        reference=_ECA_PAPER,
    ),
    # SE-ResNets at the same spot as ECA (the ECA paper's SE baseline).
    "se_resnet18": _resnet(
        "SEResNet18",
        *_R18,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        source=_TORCHVISION + " + SE",
        reference=_SE_PAPER,
    ),
    "se_resnet34": _resnet(
        "SEResNet34",
        *_R34,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        source=_TORCHVISION + " + SE",
        reference=_SE_PAPER,
    ),
    "se_resnet50": _resnet(
        "SEResNet50",
        *_R50,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        source=_TORCHVISION + " + SE",
        reference=_SE_PAPER,
    ),
    "se_resnet101": _resnet(
        "SEResNet101",
        *_R101,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        source=_TORCHVISION + " + SE",
        reference=_SE_PAPER,
    ),
    "se_resnet152": _resnet(
        "SEResNet152",
        *_R152,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        source=_TORCHVISION + " + SE",
        reference=_SE_PAPER,
    ),
    # Official SA-Net (Bottleneck only: SA needs C % (2 * groups) == 0).
    "sa_resnet50": _resnet(
        "SAResNet50",
        *_R50,
        attention="sa",
        attention_kwargs={"groups": 64},
        source=_SANET,
        reference=_SA_PAPER,
    ),
    "sa_resnet101": _resnet(
        "SAResNet101",
        *_R101,
        attention="sa",
        attention_kwargs={"groups": 64},
        source=_SANET,
        reference=_SA_PAPER,
    ),
    "sa_resnet152": _resnet(
        "SAResNet152",
        *_R152,
        attention="sa",
        attention_kwargs={"groups": 64},
        source=_SANET,
        reference=_SA_PAPER,
    ),
    # MobileNetV2: torchvision (dropout 0.2) and the official ECA variant
    # (ECA after the projection BN of every block, k=1 for c < 96 else 3,
    # dropout 0.25); SE with r=8 at the same spot (the ECA paper's baseline).
    "mobilenet_v2": _mobilenet_v2(
        "MobileNetV2",
        dropout_rate=0.2,
        source="torchvision.models.mobilenetv2",
        reference=_MOBILENET_V2_PAPER,
    ),
    "eca_mobilenet_v2": _mobilenet_v2(
        "ECAMobileNetV2",
        attention="eca",
        kernel_sizes=(1, 1, 1, 1, 3, 3, 3),
        dropout_rate=0.25,
        source="BangguWu/ECANet models/eca_mobilenetv2.py",
        reference=_ECA_PAPER,
    ),
    "se_mobilenet_v2": _mobilenet_v2(
        "SEMobileNetV2",
        attention="se",
        attention_kwargs={"reduction_ratio": 8},
        dropout_rate=0.25,
        source="BangguWu/ECANet models/eca_mobilenetv2.py with SE (r=8)",
        reference=_ECA_PAPER,
    ),
    # timm ResNet variants ('d': deep stem + avg-down, 't': tiered stem +
    # avg-down); timm's ECA picks k from the channels, at least 3.
    "ecaresnet26t": _resnet(
        "ECAResNet26T",
        "bottleneck",
        (2, 2, 2, 2),
        stem="tiered",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet26t",
        reference=_ECA_TIMM,
    ),
    "ecaresnet50d": _resnet(
        "ECAResNet50D",
        *_R50,
        stem="deep",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet50d",
        reference=_ECA_TIMM,
    ),
    "ecaresnet50t": _resnet(
        "ECAResNet50T",
        *_R50,
        stem="tiered",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet50t",
        reference=_ECA_TIMM,
    ),
    # timm's "light" model keeps the 7x7 stem but uses avg-down shortcuts.
    "ecaresnetlight": _resnet(
        "ECAResNetLight",
        "bottleneck",
        (1, 1, 11, 3),
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnetlight",
        reference=_ECA_TIMM,
    ),
    "ecaresnet101d": _resnet(
        "ECAResNet101D",
        *_R101,
        stem="deep",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet101d",
        reference=_ECA_TIMM,
    ),
    "ecaresnet200d": _resnet(
        "ECAResNet200D",
        "bottleneck",
        (3, 24, 36, 3),
        stem="deep",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet200d",
        reference=_ECA_TIMM,
    ),
    "ecaresnet269d": _resnet(
        "ECAResNet269D",
        "bottleneck",
        (3, 30, 48, 8),
        stem="deep",
        avg_down=True,
        attention="eca",
        attention_kwargs=_TIMM_ECA,
        kernel_sizes="adaptive",
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " ecaresnet269d",
        reference=_ECA_TIMM,
    ),
    # timm's SEModule: rd_ratio 1/16 rounded to a multiple of 8, which equals
    # C // 16 for the bottleneck widths 256..2048.
    "seresnet50": _resnet(
        "TimmSEResNet50",
        *_R50,
        attention="se",
        attention_kwargs={"reduction_ratio": 16},
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " seresnet50",
        reference=_SE_PAPER,
    ),
    "timm_resnet50": _resnet(
        "TimmResNet50",
        *_R50,
        zero_init_last=True,
        weights_layout="timm",
        source=_TIMM + " resnet50",
        reference=_RESNET_PAPER,
    ),
}


def list_models(pattern=None):
    """Returns the names of the registered architectures.

    Args:
        pattern: str or `None`. A shell-style wildcard (`fnmatch`) the names
            must match, e.g. `"eca_*"`. `None` lists every model. Defaults
            to `None`.

    Returns:
        A list of registry keys, in registry order. Each one is accepted by
        `keras_eca.applications.build_model`.

    Example:

    >>> keras_eca.applications.list_models("sa_*")
    ['sa_resnet50', 'sa_resnet101', 'sa_resnet152']
    >>> "ecaresnet50d" in keras_eca.applications.list_models()
    True
    """
    return filter_names(MODELS, pattern)


def filter_names(names, pattern):
    """The names matching the shell-style wildcard `pattern` (all for
    `None`), in their order; shared by the model and weights tables."""
    if pattern is not None and not isinstance(pattern, str):
        raise ValueError(
            "`pattern` must be a string or None. "
            f"Received: pattern={pattern!r}"
        )
    if pattern is None:
        return list(names)
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def model_config(name):
    """Returns a copy of the registry row of the architecture `name`.

    Args:
        name: str. A registry key (see `list_models()`).

    Returns:
        A dict with the row's fields (see the `registry` module docstring).

    Example:

    >>> row = keras_eca.applications.model_config("eca_resnet50")
    >>> row["kernel_sizes"], row["feature_layers"]["P5"]
    ((3, 5, 5, 7), 'conv5_block3_out')
    """
    check_model_name(name)
    return copy.deepcopy(MODELS[name])


def check_model_name(name):
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(
            f"Unknown model {name!r}. Available: {list_models()}. "
            f"Received: architecture={name!r}"
        )
