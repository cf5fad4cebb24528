"""The weights table agrees with the model registry and with its sources."""

import re

import pytest

import keras
from keras_eca import applications
from keras_eca import layers
from keras_eca.applications import registry
from keras_eca.applications import weights
from keras_eca.applications.weights_cache import sha256_prefix
from tests.applications.registry_data_test import stage_of


# Resize 256, crop 224, bilinear: torchvision's recipe, and the defaults
# without a table entry.
IMAGENET_DEFAULTS = {
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "input_size": 224,
    "crop_pct": 0.875,
    "interpolation": "bilinear",
    "test_input_size": 224,
    "test_crop_pct": 0.875,
}

KEYS = weights.list_weights()
HASH_FIELD = re.compile(r"[0-9a-f]{64}")

# Released checkpoints of reference-eca-sa.md §1.6 / §3.5 and the timm ECA /
# SE / plain ResNets of ecosystem.md §1.4 whose architecture is registered.
EXPECTED_KEYS = {
    "eca_resnet18.official_in1k",
    "eca_resnet34.official_in1k",
    "eca_resnet50.official_in1k",
    "eca_resnet101.official_in1k",
    "eca_resnet152.official_in1k",
    "eca_mobilenet_v2.official_in1k",
    "sa_resnet50.official_in1k",
    "sa_resnet101.official_in1k",
    "ecaresnet26t.ra2_in1k",
    "ecaresnet50d.miil_in1k",
    "ecaresnet50t.ra2_in1k",
    "ecaresnet50t.a1_in1k",
    "ecaresnet50t.a2_in1k",
    "ecaresnet50t.a3_in1k",
    "ecaresnetlight.miil_in1k",
    "ecaresnet101d.miil_in1k",
    "ecaresnet269d.ra2_in1k",
    "seresnet50.ra2_in1k",
    "timm_resnet50.a1_in1k",
    "resnet18.tv_in1k",
    "resnet34.tv_in1k",
    "resnet50.tv_in1k",
    "resnet101.tv_in1k",
    "resnet152.tv_in1k",
    "mobilenet_v2.tv_in1k",
}
# torchvision's published accuracy (IMAGENET1K_V1; ResNet-50: timm's).
TORCHVISION_ACCURACY = {
    "resnet18": (69.758, 89.078),
    "resnet34": (73.314, 91.420),
    "resnet50": (76.156, 92.86),
    "resnet101": (77.374, 93.546),
    "resnet152": (78.312, 94.046),
    "mobilenet_v2": (71.878, 90.286),
}
GDRIVE_IDS = {
    "eca_resnet18": "1LMRFRTyzVifGBi2MUpTuYEWW44S8mwyl",
    "eca_resnet34": "15LV5Jkea3GPzvLP5__H7Gg88oNQUxBDE",
    "eca_resnet50": "1670rce333c_lyMWFzBlNZoVUvtxbCF_U",
    "eca_resnet101": "1b5FQ8yDFnZ_UhvWT9txmjI_LjbKkgnvC",
    "eca_resnet152": "1_bYnaOg9ptsILC_iC7uQ5Izv-u2rjYG5",
    "eca_mobilenet_v2": "1FxzeXPg1SJQZzVVH4HRjMeq_SVMfidUm",
}
# timm model name of the Keras architectures that differ from it.
TIMM_NAMES = {"timm_resnet50": "resnet50"}


def test_table_holds_exactly_the_released_checkpoints():
    assert set(KEYS) == EXPECTED_KEYS
    assert not [key for key in KEYS if "pruned" in key]


@pytest.mark.parametrize("key", KEYS)
def test_entry_fields(key):
    entry = weights.WEIGHTS[key]
    architecture, tag = key.split(".", 1)
    assert entry["architecture"] == architecture
    assert entry["tag"] == tag
    assert architecture in registry.MODELS
    assert entry["weights_layout"] in ("official", "timm")
    assert entry["file_format"] in ("pth", "safetensors")
    assert entry["hash_source"] in weights.HASH_SOURCES
    preprocessing = entry["preprocessing"]
    assert set(preprocessing) == set(weights.PREPROCESSING_FIELDS)
    assert preprocessing["mean"] == (0.485, 0.456, 0.406)
    assert preprocessing["std"] == (0.229, 0.224, 0.225)
    for size in ("input_size", "test_input_size"):
        assert isinstance(preprocessing[size], int)
        assert preprocessing[size] >= 160
    for crop in ("crop_pct", "test_crop_pct"):
        assert 0.8 < preprocessing[crop] <= 1.0
    assert preprocessing["interpolation"] in ("bilinear", "bicubic")
    assert 60 < entry["top1"] < 90
    assert entry["top5"] is None or entry["top1"] < entry["top5"] < 100
    if entry["test_top1"] is not None:
        assert entry["test_top1"] >= entry["top1"] - 0.01
    assert entry["source"]


@pytest.mark.parametrize("key", KEYS)
def test_every_url_is_verified_or_marked(key):
    entry = weights.WEIGHTS[key]
    if entry["url"] is None:
        assert entry["hash_source"] == "manual"
        return
    if entry["sha256"] is not None:
        assert HASH_FIELD.fullmatch(entry["sha256"])
        assert entry["hash_source"] == "pinned"
    else:
        assert entry["hash_source"] in ("hub", "prefix", "unpublished")
    if entry["hash_source"] == "hub":
        assert entry["host"] == "hub"
    if entry["hash_source"] == "prefix":
        assert re.fullmatch(r"[0-9a-f]{8,64}", sha256_prefix(entry))


@pytest.mark.parametrize("key", KEYS)
def test_urls_sources_and_licenses(key):
    entry = weights.WEIGHTS[key]
    architecture = entry["architecture"]
    if entry["host"] == "gdrive":
        drive_id = GDRIVE_IDS[architecture]
        assert entry["url"] == (
            "https://drive.usercontent.google.com/download?id="
            f"{drive_id}&export=download&confirm=t"
        )
        assert entry["license"] == "MIT"
        assert entry["weights_layout"] == "official"
        name = entry["file_name"]
        assert re.fullmatch(
            r"eca_(resnet\d+_k\d{4}|mobilenetv2_k13)\.pth\.tar", name
        )
        if architecture != "eca_mobilenet_v2":
            digits = tuple(int(d) for d in name.split("_k")[1][:4])
            assert digits == entry["kernel_sizes"]
    elif entry["host"] == "hub":
        timm_name = TIMM_NAMES.get(architecture, architecture)
        repo = f"timm/{timm_name}.{entry['tag']}"
        assert entry["hub_repo"] == repo
        assert entry["url"] == (
            f"https://huggingface.co/{repo}/resolve/main/model.safetensors"
        )
        assert entry["file_format"] == "safetensors"
        tv = entry["tag"] == "tv_in1k"
        assert entry["license"] == ("bsd-3-clause" if tv else "apache-2.0")
        layout = registry.MODELS[architecture]["weights_layout"]
        assert entry["weights_layout"] == ("official" if tv else layout)
    elif entry["host"] == "url":
        assert architecture == "mobilenet_v2"
        assert entry["url"] == (
            "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"
        )
        assert entry["hash_source"] == "prefix"
        assert entry["file_format"] == "pth"
        assert entry["license"] == "bsd-3-clause"
        assert entry["weights_layout"] == "official"
    else:
        assert architecture.startswith("sa_resnet")
        assert entry["license"] is None
        assert "no LICENSE" in entry["license_note"]
        message = entry["manual_download"]
        code = {"sa_resnet50": "474p", "sa_resnet101": "6nxm"}[architecture]
        assert "Baidu" in message and code in message
        assert "https://github.com/wofmanaf/SA-Net" in message
        assert "weights=" in message


@pytest.mark.parametrize("architecture", sorted(TORCHVISION_ACCURACY))
def test_torchvision_entries(architecture):
    """The plain backbones' weights: torchvision's, with its published
    accuracy and its ImageNet recipe (resize 256, crop 224, bilinear)."""
    key = f"{architecture}.tv_in1k"
    entry = weights.WEIGHTS[key]
    assert weights.default_weights(architecture) == key
    assert (entry["top1"], entry["top5"]) == TORCHVISION_ACCURACY[architecture]
    assert entry["preprocessing"] == IMAGENET_DEFAULTS
    assert entry["kernel_sizes"] is None
    assert entry["license"] == "bsd-3-clause"
    if architecture != "mobilenet_v2":
        assert entry["hub_repo"] == f"timm/{architecture}.tv_in1k"


def test_default_weights_are_the_first_entry_of_each_architecture():
    seen = {}
    for key in KEYS:
        seen.setdefault(weights.WEIGHTS[key]["architecture"], key)
    for architecture in registry.MODELS:
        assert weights.default_weights(architecture) == seen.get(architecture)
    assert weights.default_weights("ecaresnet50t") == "ecaresnet50t.ra2_in1k"


def built_kernel_sizes(architecture):
    model = applications.build_model(
        architecture, include_top=False, input_shape=(32, 32, 3)
    )
    per_stage = {}
    for layer in model.layers:
        if isinstance(layer, layers.EfficientChannelAttention):
            per_stage.setdefault(stage_of(layer.name), set()).add(
                int(layer.kernel.shape[0])
            )
    keras.backend.clear_session()
    if not per_stage:
        return None
    assert all(len(sizes) == 1 for sizes in per_stage.values())
    return tuple(per_stage[s].pop() for s in sorted(per_stage))


ARCHITECTURES = sorted({weights.WEIGHTS[k]["architecture"] for k in KEYS})


@pytest.mark.parametrize(
    "architecture",
    [
        pytest.param(a, marks=pytest.mark.slow)
        if a
        in ("ecaresnet269d", "eca_resnet152", "ecaresnet101d", "resnet152")
        else a
        for a in ARCHITECTURES
    ],
)
def test_kernel_sizes_are_those_of_the_built_model(architecture):
    found = built_kernel_sizes(architecture)
    for key in weights.list_weights(architecture + ".*"):
        assert weights.WEIGHTS[key]["kernel_sizes"] == found, key


def test_list_weights_and_weights_config():
    assert weights.list_weights("sa_*") == [
        "sa_resnet50.official_in1k",
        "sa_resnet101.official_in1k",
    ]
    entry = weights.weights_config("ecaresnet50d.miil_in1k")
    entry["preprocessing"]["input_size"] = 1
    assert weights.WEIGHTS["ecaresnet50d.miil_in1k"]["preprocessing"][
        "input_size"
    ] == 224
    with pytest.raises(ValueError, match="Received: key='nope'"):
        weights.weights_config("nope")
    with pytest.raises(ValueError, match="Received: pattern=3"):
        weights.list_weights(3)


def test_module_docstring_says_why_pruned_models_are_missing():
    assert "pruned" in weights.__doc__


def test_preprocessing_for():
    """What `include_preprocessing=True` and the fine-tuning use."""
    own = weights.preprocessing_for("ecaresnet50t", "imagenet")
    assert own == weights.WEIGHTS["ecaresnet50t.ra2_in1k"]["preprocessing"]
    assert own["input_size"] == 256 and own["interpolation"] == "bicubic"
    # The default argument is "imagenet"; tags and keys too.
    assert weights.preprocessing_for("ecaresnet50t") == own
    a3 = weights.preprocessing_for("ecaresnet50t", "a3_in1k")
    assert a3["input_size"] == 160 and a3["test_input_size"] == 224
    assert weights.preprocessing_for(
        "ecaresnet50t", "ecaresnet50t.a3_in1k"
    ) == a3
    # Manual downloads have their entry too (nothing is downloaded).
    assert weights.preprocessing_for("sa_resnet50")["crop_pct"] == 0.875
    # No table entry: the ImageNet defaults.
    defaults = IMAGENET_DEFAULTS
    assert weights.preprocessing_for("se_resnet50", None) == defaults
    assert weights.preprocessing_for("ecaresnet50t", None) == defaults
    assert weights.preprocessing_for(
        "ecaresnet50t", "runs/x/model.keras"
    ) == defaults
    # A copy: changing it does not change the table.
    own["input_size"] = 1
    assert weights.WEIGHTS["ecaresnet50t.ra2_in1k"]["preprocessing"][
        "input_size"
    ] == 256
    with pytest.raises(ValueError, match="not available for 'se_resnet50'"):
        weights.preprocessing_for("se_resnet50")
    with pytest.raises(ValueError, match="Received: weights='nope_in1k'"):
        weights.preprocessing_for("ecaresnet50t", "nope_in1k")
    with pytest.raises(ValueError, match="Received: architecture='nope'"):
        weights.preprocessing_for("nope")
    with pytest.raises(ValueError, match="Received: weights=3"):
        weights.preprocessing_for("resnet18", 3)
