"""The architectures against the original PyTorch models, number for number.

Every model fixture of tests/data/reference holds the outputs of the
official ECA-Net / SA-Net code or timm, with weights from the rule
"init v2". The same state_dict, loaded through `load_state_dict`, must
reproduce the logits, the pooled features and the four stage outputs.
"""

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import conversion
from keras_eca import layers
from tests import reference_fixtures as fixture_utils

MODEL_FIXTURES = sorted(fixture_utils.MODEL_FIXTURES)
# Layer fixtures: attention name, constructor kwargs and channels.
LAYER_FIXTURES = {
    "layer_official_eca_k3_c64": ("eca", {"kernel_size": 3}, 64),
    "layer_official_eca_k5_c64": ("eca", {"kernel_size": 5}, 64),
    "layer_official_sa_c256_g64": ("sa", {"groups": 64}, 256),
    "layer_official_sa_c512_g64": ("sa", {"groups": 64}, 512),
    "layer_timm_ceca_c256": ("ceca", {"min_kernel_size": 3}, 256),
    "layer_timm_eca_c256": ("eca", {"min_kernel_size": 3}, 256),
}


def test_every_fixture_is_covered():
    names = sorted(p.stem for p in fixture_utils.REFERENCE_DIR.glob("*.json"))
    assert names == sorted(MODEL_FIXTURES + list(LAYER_FIXTURES))


def num_trainable(model_or_layer):
    return int(
        sum(np.prod(w.shape) for w in model_or_layer.trainable_weights)
    )


@pytest.mark.parametrize("fixture", sorted(LAYER_FIXTURES))
def test_layer_fixture_param_counts(fixture):
    name, kwargs, channels = LAYER_FIXTURES[fixture]
    layer = layers.get_attention(name, **kwargs)
    layer.build((None, 7, 7, channels))
    metadata = fixture_utils.load_metadata(fixture)
    assert num_trainable(layer) == metadata["num_params"]


@pytest.mark.parametrize("fixture", MODEL_FIXTURES)
def test_reproduces_reference_outputs(fixture):
    architecture = fixture_utils.MODEL_FIXTURES[fixture]
    metadata = fixture_utils.load_metadata(fixture)
    arrays = fixture_utils.load_arrays(fixture)
    model = applications.build_model(
        architecture, input_shape=(96, 96, 3), classifier_activation=None
    )
    assert num_trainable(model) == metadata["num_params"]

    layout = conversion.load_state_dict(
        model, fixture_utils.fixture_state_dict(metadata)
    )
    expected_layout = "timm" if fixture.startswith("timm_") else "official"
    if architecture == "timm_resnet50":
        # Same keys as torchvision's resnet50, so they read as "official".
        expected_layout = "official"
    assert layout == expected_layout

    row = applications.model_config(architecture)
    outputs = {
        "logits": model.output,
        "features": model.get_layer("avg_pool").output,
    }
    if row["family"] == "resnet":
        for i, level in enumerate(("P2", "P3", "P4", "P5"), start=1):
            layer_name = row["feature_layers"][level]
            outputs[f"stage_outputs_{i}"] = model.get_layer(layer_name).output
    probe = keras.Model(model.input, outputs)
    x = fixture_utils.nchw_to_nhwc(arrays["input_nchw"])
    results = probe(x, training=False)
    assert sorted(results) == sorted(k for k in arrays if k != "input_nchw")
    for key, value in results.items():
        value = keras.ops.convert_to_numpy(value)
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)  # NHWC -> NCHW
        reference = arrays[key]
        assert value.shape == reference.shape, key
        difference = fixture_utils.max_relative_difference(value, reference)
        assert difference <= fixture_utils.RELATIVE_TOLERANCE, (
            f"{key}: max|diff| / max|ref| = {difference:.2e}"
        )


# float16 keeps about 3 decimal digits and bfloat16 about 2: measured
# max|diff| / max|ref| of the logits is ~6e-4 and ~5e-3 on every fixture.
MIXED_TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}


@pytest.mark.parametrize("policy", sorted(MIXED_TOLERANCE))
@pytest.mark.parametrize("fixture", MODEL_FIXTURES)
def test_reference_logits_under_mixed_precision(fixture, policy):
    keras.config.set_dtype_policy(policy)
    metadata = fixture_utils.load_metadata(fixture)
    arrays = fixture_utils.load_arrays(fixture)
    model = applications.build_model(
        fixture_utils.MODEL_FIXTURES[fixture],
        input_shape=(96, 96, 3),
        classifier_activation=None,
    )
    conversion.load_state_dict(
        model, fixture_utils.fixture_state_dict(metadata)
    )
    x = fixture_utils.nchw_to_nhwc(arrays["input_nchw"])
    logits = model(x, training=False)
    assert logits.dtype == "float32"
    difference = fixture_utils.max_relative_difference(
        keras.ops.convert_to_numpy(logits), arrays["logits"]
    )
    assert difference <= MIXED_TOLERANCE[policy], f"{difference:.2e}"
