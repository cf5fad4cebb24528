"""`feature_extractor`: the stride 4-32 feature maps, keyed P2..P5."""

import numpy as np
import pytest

import keras
from keras_eca import applications

STRIDES = {"P2": 4, "P3": 8, "P4": 16, "P5": 32}


@pytest.mark.parametrize(
    "name", ["eca_resnet18", "ecaresnet26t", "eca_mobilenet_v2"]
)
def test_feature_extractor_from_name(name):
    row = applications.model_config(name)
    extractor = applications.feature_extractor(name, input_shape=(64, 64, 3))
    assert extractor.name == f"{name}_features"
    outputs = extractor(np.zeros((1, 64, 64, 3), "float32"))
    assert sorted(outputs) == sorted(STRIDES)
    for level, stride in STRIDES.items():
        channels = row["feature_channels"][level]
        assert outputs[level].shape == (1, 64 // stride, 64 // stride, channels)


def test_feature_extractor_from_model():
    model = applications.build_model(
        "resnet50", include_top=False, input_shape=(64, 64, 3), name="custom"
    )
    # Not a registry name: the ResNet naming scheme gives the last blocks.
    assert applications.feature_layer_names(model) == {
        "P2": "conv2_block3_out",
        "P3": "conv3_block4_out",
        "P4": "conv4_block6_out",
        "P5": "conv5_block3_out",
    }
    extractor = applications.feature_extractor(model)
    assert extractor.output["P4"].shape == (None, 4, 4, 1024)
    mobilenet = applications.build_model(
        "mobilenet_v2", attention="se", name="other", input_shape=(64, 64, 3)
    )
    names = applications.feature_layer_names(mobilenet)
    assert names["P5"] == "head_relu"
    extractor = applications.feature_extractor(
        model, layer_names={"C3": "conv3_block4_out"}
    )
    assert list(extractor.output) == ["C3"]


def test_feature_extractor_errors():
    model = applications.build_model("resnet18", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="only apply"):
        applications.feature_extractor(model, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"no layers named \['nope'\]"):
        applications.feature_extractor(model, layer_names={"P2": "nope"})
    with pytest.raises(ValueError, match="Received: model_or_name=3"):
        applications.feature_extractor(3)
    inputs = keras.Input((8, 8, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="Pass `layer_names`"):
        applications.feature_extractor(other)
