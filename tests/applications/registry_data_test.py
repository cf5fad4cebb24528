"""The registry rows agree with the models built from them."""

import inspect
import re
import urllib.request

import pytest

import keras
from keras_eca import applications
from keras_eca import layers
from keras_eca.applications import registry
from keras_eca.applications import weights

NAMES = applications.list_models()

# Per-stage ECA kernel sizes, written out as the sources state them: the
# released official checkpoints (k3577, k3357, k3557, ...), the official
# ECA-MobileNetV2 rule (k=1 for c < 96 else 3) and timm's adaptive rule
# with a minimum of 3 on the bottleneck widths 256, 512, 1024, 2048.
EXPECTED_KERNEL_SIZES = {
    "eca_resnet18": (3, 5, 7, 7),
    "eca_resnet34": (3, 3, 5, 7),
    "eca_resnet50": (3, 5, 5, 7),
    "eca_resnet101": (3, 3, 5, 7),
    "eca_resnet152": (3, 3, 5, 7),
    "eca_mobilenet_v2": (1, 1, 1, 1, 3, 3, 3),
    "ecaresnet26t": (5, 5, 5, 7),
    "ecaresnet50d": (5, 5, 5, 7),
    "ecaresnet50t": (5, 5, 5, 7),
    "ecaresnetlight": (5, 5, 5, 7),
    "ecaresnet101d": (5, 5, 5, 7),
    "ecaresnet200d": (5, 5, 5, 7),
    "ecaresnet269d": (5, 5, 5, 7),
}
MOBILENET_BLOCK_STAGES = (0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6)
FEATURE_STRIDES = {"P2": 4, "P3": 8, "P4": 16, "P5": 32}


def stage_of(layer_name):
    match = re.match(r"conv(\d)_block\d+_attn$", layer_name)
    if match:
        return int(match.group(1)) - 2
    block = int(re.match(r"block(\d+)_attn$", layer_name).group(1))
    return MOBILENET_BLOCK_STAGES[block - 1]


def attention_layers(model):
    return [layer for layer in model.layers if layer.name.endswith("_attn")]


def test_eca_rows_are_listed():
    eca_rows = [
        name for name in NAMES if registry.MODELS[name]["attention"] == "eca"
    ]
    assert sorted(eca_rows) == sorted(EXPECTED_KERNEL_SIZES)


@pytest.mark.parametrize("name", sorted(EXPECTED_KERNEL_SIZES))
def test_eca_kernel_sizes_per_stage(name):
    model = applications.build_model(
        name, include_top=False, input_shape=(32, 32, 3)
    )
    found = {}
    for layer in attention_layers(model):
        assert isinstance(layer, layers.EfficientChannelAttention)
        found.setdefault(stage_of(layer.name), set()).add(
            layer.kernel.shape[0]
        )
    sizes = tuple(found[stage].pop() for stage in sorted(found))
    assert all(not rest for rest in found.values())
    assert sizes == EXPECTED_KERNEL_SIZES[name]


@pytest.mark.parametrize("name", NAMES)
def test_feature_layers_exist_with_recorded_widths_and_strides(name):
    row = applications.model_config(name)
    model = applications.build_model(
        name, include_top=False, input_shape=(64, 64, 3)
    )
    assert model.output_shape[-1] == row["num_features"]
    assert sorted(row["feature_layers"]) == sorted(FEATURE_STRIDES)
    for level, layer_name in row["feature_layers"].items():
        shape = model.get_layer(layer_name).output.shape
        stride = FEATURE_STRIDES[level]
        size = 64 // stride
        channels = row["feature_channels"][level]
        assert shape == (None, size, size, channels), level


@pytest.mark.parametrize("name", NAMES)
def test_rows_are_complete(name):
    row = applications.model_config(name)
    common = {
        "family",
        "display_name",
        "attention",
        "attention_kwargs",
        "kernel_sizes",
        "dropout_rate",
        "num_features",
        "feature_layers",
        "feature_channels",
        "weights_layout",
        "source",
        "reference",
    }
    assert common <= set(row)
    assert row["family"] in ("resnet", "mobilenet_v2")
    assert row["weights_layout"] in ("official", "timm")
    if row["attention"] is not None:
        assert row["attention"] in layers.list_attention()
    if row["family"] == "resnet":
        assert row["zero_init_last"] == (row["weights_layout"] == "timm")
        assert row["block"] in ("basic", "bottleneck")
        assert row["stem"] in ("default", "deep", "tiered")
        assert len(row["depths"]) == len(row["widths"]) == 4


def test_every_row_has_a_public_builder():
    for name in NAMES:
        display_name = registry.MODELS[name]["display_name"]
        builder = getattr(applications, display_name)
        assert display_name in applications.__all__
        assert f'"{name}"' in builder.__doc__
    display_names = [registry.MODELS[n]["display_name"] for n in NAMES]
    assert len(set(display_names)) == len(display_names)


def test_builders_default_to_imagenet_weights_where_released():
    """As `keras.applications`: `ECAResNet50()` is the pretrained network;
    architectures without released weights default to random ones."""
    with_weights = set()
    for name in NAMES:
        builder = getattr(applications, registry.MODELS[name]["display_name"])
        parameters = inspect.signature(builder).parameters
        doc = " ".join(builder.__doc__.split())
        released = weights.default_weights(name) is not None
        expected = "imagenet" if released else None
        assert parameters["weights"].default == expected, name
        assert parameters["include_preprocessing"].default is False, name
        if released:
            with_weights.add(name)
            assert f'`weights="imagenet"` by default' in doc
            assert f"the weights `{weights.default_weights(name)}`" in doc
        else:
            assert "`weights=None` by default" in doc
            assert "Defaults to `None`: no ImageNet weights" in doc
        assert "WeightsDownloadError" in doc
        assert "include_preprocessing: bool." in doc
    assert {"resnet18", "resnet50", "mobilenet_v2", "eca_resnet50"} <= (
        with_weights
    )
    assert not {"se_resnet50", "sa_resnet152", "ecaresnet200d"} & with_weights
    # The generic builder keeps random initialization.
    build = inspect.signature(applications.build_model).parameters
    assert build["weights"].default is None
    assert build["include_preprocessing"].default is False


def test_builders_without_released_weights_build_offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    model = applications.SEResNet18(input_shape=(32, 32, 3))
    assert model.output_shape == (None, 1000)


def test_a_builder_default_out_of_step_with_the_table_is_refused():
    from keras_eca.applications import models

    def SEResNet18(include_top=True, weights="imagenet"):  # noqa: N802
        return None

    with pytest.raises(AssertionError, match="weights=None, not 'imagenet'"):
        models._documented("se_resnet18")(SEResNet18)


def test_public_builder_passes_arguments():
    model = applications.ECAResNet18(
        include_top=False,
        weights=None,  # The default, "imagenet", would download.
        input_shape=(32, 32, 3),
        pooling="avg",
        kernel_sizes="adaptive",
    )
    assert model.name == "eca_resnet18"
    assert model.output_shape == (None, 512)
    assert model.get_layer("conv2_block1_attn").kernel.shape == (3,)
    assert model.get_layer("conv3_block1_attn").kernel.shape == (5,)
    model = applications.TimmSEResNet50(
        weights=None,
        input_shape=(32, 32, 3),
        classes=3,
        classifier_activation=None,
    )
    assert model.name == "seresnet50"
    assert model.output_shape == (None, 3)


def test_list_models_pattern():
    assert applications.list_models() == list(registry.MODELS)
    assert applications.list_models("sa_*") == [
        "sa_resnet50",
        "sa_resnet101",
        "sa_resnet152",
    ]
    assert applications.list_models("nothing*") == []
    with pytest.raises(ValueError, match="Received: pattern=3"):
        applications.list_models(3)


def test_model_config_is_a_copy():
    row = applications.model_config("eca_resnet50")
    row["feature_layers"]["P2"] = "changed"
    assert registry.MODELS["eca_resnet50"]["feature_layers"]["P2"] == (
        "conv2_block3_out"
    )
    with pytest.raises(ValueError, match="resnet51"):
        applications.model_config("resnet51")


@pytest.mark.parametrize(
    "name, last_bn, scale",
    [
        ("eca_resnet18", "conv2_block1_2_bn", 1.0),  # official: gamma = 1
        ("sa_resnet50", "conv2_block1_3_bn", 1.0),
        ("ecaresnet26t", "conv2_block1_3_bn", 0.0),  # timm: zero_init_last
        ("timm_resnet50", "conv5_block3_3_bn", 0.0),
    ],
)
def test_initialization_follows_the_source(name, last_bn, scale):
    model = applications.build_model(
        name, include_top=False, input_shape=(32, 32, 3)
    )
    gamma = model.get_layer(last_bn).gamma.numpy()
    assert (gamma == scale).all()
    assert (model.get_layer("conv2_block1_1_bn").gamma.numpy() == 1).all()
