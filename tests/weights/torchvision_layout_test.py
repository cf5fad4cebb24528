"""torchvision's own checkpoints (the plain backbones' table weights) load
through `weights=<file>`.

torchvision is not installed, so its key layout comes from the reference
fixtures, which were made by the official ECA-Net code: its ResNet and
MobileNetV2 are torchvision's plus one `eca` module per block. Without
those modules, the fixture's `(key, shape)` list is torchvision's
state_dict. The checkpoints are written from a Keras model with random
weights, in that order, with `num_batches_tracked`, as `torch.save`
(torchvision's `.pth`) or `.safetensors` (timm's copies on the hub).
"""

import re

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import checkpoints
from tests import reference_fixtures as fixture_utils
from tests.weights import helpers

SIZE = 64
# The official ECA modules: `layerI.J.eca.conv.weight` in a ResNet block,
# `features.I.conv.K.conv.weight` after a MobileNetV2 block's projection.
_ECA_KEY = re.compile(r"(\.eca\.|^features\.\d+\.conv\.\d+\.conv\.)")


def torchvision_keys(fixture):
    metadata = fixture_utils.load_metadata(fixture)
    return [
        (key, tuple(shape))
        for key, shape in fixture_utils.state_dict_entries(metadata)
        if not _ECA_KEY.search(key)
    ]


def write_torchvision_file(model, fixture, path):
    """`model`'s weights under torchvision's keys, in torchvision's order;
    fails unless the converter's keys and shapes are exactly those."""
    converted = helpers.torch_state_dict(model)
    expected = torchvision_keys(fixture)
    assert sorted((k, v.shape) for k, v in converted.items()) == sorted(
        expected
    )
    state_dict = {key: converted[key] for key, _ in expected}
    if str(path).endswith(".safetensors"):
        from safetensors.numpy import save_file

        save_file(state_dict, str(path))
    else:
        import torch

        tensors = {
            key: torch.from_numpy(np.ascontiguousarray(value))
            for key, value in state_dict.items()
        }
        torch.save(tensors, str(path))
    return path


def outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize(
    "architecture, fixture, file_name",
    [
        (
            "mobilenet_v2",
            "official_eca_mobilenet_v2",
            "mobilenet_v2-b0353104.pth",
        ),
        ("resnet18", "official_eca_resnet18", "model.safetensors"),
    ],
)
def test_torchvision_checkpoint_loads_to_identical_outputs(
    tmp_path, architecture, fixture, file_name
):
    source = helpers.randomized(
        applications.build_model(
            architecture,
            input_shape=(SIZE, SIZE, 3),
            classifier_activation=None,
        )
    )
    path = write_torchvision_file(source, fixture, tmp_path / file_name)
    if file_name.endswith(".pth"):  # a real torch.save zip file
        assert checkpoints.load_checkpoint(path).keys() == (
            helpers.torch_state_dict(source).keys()
        )
    x = np.random.default_rng(0).standard_normal((2, SIZE, SIZE, 3))
    x = x.astype("float32")
    model = applications.build_model(
        architecture,
        weights=str(path),
        input_shape=(SIZE, SIZE, 3),
        classifier_activation=None,
    )
    np.testing.assert_array_equal(outputs(model, x), outputs(source, x))
    for got, want in zip(model.weights, source.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # Without the classifier, from the same file.
    features = applications.build_model(
        architecture,
        weights=str(path),
        include_top=False,
        pooling="avg",
        input_shape=(SIZE, SIZE, 3),
    )
    probe = keras.Model(source.input, source.get_layer("avg_pool").output)
    np.testing.assert_array_equal(outputs(features, x), outputs(probe, x))
