"""`build_model(weights=...)`: names, local files, strictness, safety."""

import os
import pathlib
import shlex
import urllib.request

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import checkpoints
from keras_eca.applications import weights
from tests import reference_fixtures as fixture_utils
from tests.weights import helpers

SMALL = "official_eca_resnet18"
TOL = fixture_utils.RELATIVE_TOLERANCE


def build(architecture="eca_resnet18", **kwargs):
    kwargs.setdefault("input_shape", (96, 96, 3))
    return applications.build_model(architecture, **kwargs)


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """No test reads or writes the real ~/.keras."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def small_files(tmp_path_factory, files):
    """The eca_resnet18 fixture as .pth.tar, .weights.h5 and .keras."""
    folder = tmp_path_factory.mktemp("small")
    pth = files.pth
    model = applications.build_model(
        "eca_resnet18", weights=str(pth), input_shape=(96, 96, 3)
    )
    model.save_weights(folder / "eca_resnet18.weights.h5")
    model.save(folder / "eca_resnet18.keras")
    notop = applications.build_model(
        "eca_resnet18", weights=str(pth), include_top=False
    )
    notop.save_weights(folder / "notop.weights.h5")
    return {
        "pth": str(pth),
        "h5": str(folder / "eca_resnet18.weights.h5"),
        "keras": str(folder / "eca_resnet18.keras"),
        "notop": str(folder / "notop.weights.h5"),
    }


# --- Names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "architecture, value, message",
    [
        (
            "se_resnet18",
            "imagenet",
            r"not available for 'se_resnet18'.*'eca_resnet50'.*"
            r"Received: weights='imagenet'",
        ),
        (
            "ecaresnet50d",
            "ra2_in1k",
            r"Unknown weights 'ra2_in1k'.*\['miil_in1k'\].*"
            r"Received: weights='ra2_in1k'",
        ),
        (
            "ecaresnet50d",
            "ecaresnet50t.a1_in1k",
            r"belong to 'ecaresnet50t', not to 'ecaresnet50d'.*"
            r"Received: weights='ecaresnet50t.a1_in1k'",
        ),
        (
            "ecaresnet50d",
            "ecaresnet50d.nope",
            r"Unknown weights.*Received: weights='ecaresnet50d.nope'",
        ),
        (
            "sa_resnet50",
            "imagenet",
            r"only on Baidu Netdisk.*github.com/wofmanaf/SA-Net.*474p.*"
            r"weights='/path/to/sa_resnet50.pth.tar'.*no LICENSE.*"
            r"place it at .*keras_home/keras_eca/"
            r"sa_resnet50.official_in1k.pth.tar.*"
            r"Received: weights='imagenet'",
        ),
        (
            "sa_resnet101",
            "official_in1k",
            r"Baidu.*6nxm.*Received: weights='official_in1k'",
        ),
        (
            "eca_resnet18",
            "no/such/file.pth",
            r"one of the tags \['official_in1k'\].*"
            r"Received: weights='no/such/file.pth'",
        ),
    ],
)
def test_bad_weights_names(architecture, value, message, no_network):
    with pytest.raises(ValueError, match=message):
        build(architecture, weights=value)


@pytest.mark.parametrize(
    "value", ["imagenet", "miil_in1k", "ecaresnet50d.miil_in1k"]
)
def test_pretrained_names_need_1000_classes_and_3_channels(value):
    with pytest.raises(ValueError, match=r"`classes` must be 1000.*classes=10"):
        build("ecaresnet50d", weights=value, classes=10)
    with pytest.raises(ValueError, match=r"3 channels.*\(96, 96, 1\)"):
        build("ecaresnet50d", weights=value, input_shape=(96, 96, 1))
    with pytest.raises(ValueError, match="classifier_activation='relu'"):
        build("ecaresnet50d", weights=value, classifier_activation="relu")


def test_resolve_weights_names():
    request = weights.resolve_weights("ecaresnet50t", "imagenet", True)
    assert (request.kind, request.key) == ("table", "ecaresnet50t.ra2_in1k")
    request = weights.resolve_weights("ecaresnet50t", "a3_in1k", False)
    assert request.key == "ecaresnet50t.a3_in1k"
    request = weights.resolve_weights("resnet50", "resnet50.tv_in1k", True)
    assert request.key == "resnet50.tv_in1k"
    assert weights.resolve_weights("resnet50", None, True) is None


def test_unsupported_file_extension(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match=r"\.weights\.h5.*weights=.*model\.h5"):
        build(weights=str(path))
    empty = tmp_path / "model.weights.h5"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a valid `.weights.h5`"):
        build(weights=str(empty))


def test_kernel_size_mismatch_names_the_layer_and_the_fix(small_files):
    with pytest.raises(ValueError) as info:
        build(kernel_sizes="adaptive", weights=small_files["pth"])
    message = str(info.value)
    assert "eca_resnet18_k3577.pth.tar" in message
    assert (
        "layer3.0.eca.conv.weight has kernel size 7 but the model's "
        "conv4_block1_attn has 5" in message
    )
    assert "pass kernel_sizes=[3, 5, 7, 7]" in message


def test_k3557_checkpoint_into_adaptive_eca_resnet50(tmp_path):
    path = helpers.write_checkpoint(
        "official_eca_resnet50", "own_legacy", tmp_path / "k3557.pth.tar"
    )
    with pytest.raises(ValueError) as info:
        applications.build_model(
            "eca_resnet50", kernel_sizes="adaptive", weights=str(path)
        )
    message = str(info.value)
    assert (
        "layer1.0.eca.conv.weight has kernel size 3 but the model's "
        "conv2_block1_attn has 5" in message
    )
    assert "pass kernel_sizes=[3, 5, 5, 7]" in message


# --- Local files -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["pth", "h5", "keras"])
def test_local_files_with_and_without_top(small_files, kind):
    path = small_files[kind]
    model = build(weights=path, classifier_activation=None)
    assert helpers.logits_difference(model, SMALL) <= TOL
    notop = build(weights=path, include_top=False, pooling="avg")
    assert "predictions" not in [layer.name for layer in notop.layers]
    assert helpers.logits_difference(notop, SMALL, "features") <= TOL
    # Path objects work too.
    model = build(weights=pathlib.Path(path), classifier_activation=None)
    assert helpers.logits_difference(model, SMALL) <= TOL


def test_notop_weights_file(small_files):
    notop = build(
        weights=small_files["notop"], include_top=False, pooling="avg"
    )
    assert helpers.logits_difference(notop, SMALL, "features") <= TOL
    with pytest.raises(ValueError, match="no classifier.*include_top=False"):
        build(weights=small_files["notop"])


@pytest.mark.parametrize("kind", ["pth", "h5", "keras"])
def test_local_files_are_strict(small_files, kind):
    path = small_files[kind]
    # Other architecture: extra ECA layers in the file.
    with pytest.raises(ValueError, match="resnet18"):
        build("resnet18", weights=path)
    # Other classifier.
    with pytest.raises(ValueError, match=r"10"):
        build(weights=path, classes=10)


def test_keras_file_reports_differences_by_layer_name(small_files):
    with pytest.raises(ValueError) as info:
        build(weights=small_files["keras"], kernel_sizes=(3, 5, 5, 7))
    message = str(info.value)
    assert "layers are matched by name" in message
    assert (
        "conv4_block1_attn: EfficientChannelAttention [(7,)] in the file, "
        "EfficientChannelAttention [(5,)] in the model" in message
    )
    with pytest.raises(ValueError) as info:
        build("resnet18", weights=small_files["keras"], include_top=False)
    assert "Layers of the file not in the model: ['conv2_block1_attn'" in str(
        info.value
    )


def test_fine_tuned_checkpoint_with_other_classes(tmp_path):
    _, _, _, state_dict = helpers.fixture(SMALL)
    state_dict = dict(state_dict)
    rng = np.random.default_rng(0)
    state_dict["fc.weight"] = rng.standard_normal((10, 512)).astype("float32")
    state_dict["fc.bias"] = np.zeros(10, "float32")
    path = tmp_path / "finetuned.pth"
    checkpoints.save_state_dict_pth(state_dict, path)
    model = build(weights=str(path), classes=10)
    np.testing.assert_array_equal(
        model.get_layer("predictions").kernel.numpy(), state_dict["fc.weight"].T
    )


def test_pretrained_weights_under_mixed_precision(small_files):
    keras.config.set_dtype_policy("mixed_float16")
    model = build(weights=small_files["h5"], classifier_activation=None)
    assert all(w.dtype == "float32" for w in model.weights)
    assert helpers.logits_difference(model, SMALL) <= 5e-3


# --- Safety ----------------------------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pth_is_refused_and_nothing_runs(tmp_path, legacy):
    import torch

    marker = tmp_path / "pwned"
    _, _, _, state_dict = helpers.fixture(SMALL)
    content = {
        "state_dict": {k: torch.from_numpy(v) for k, v in state_dict.items()},
        "hook": _Payload(marker),
    }
    path = tmp_path / "evil.pth"
    torch.save(content, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(checkpoints.UnsafeCheckpointError) as info:
        build(weights=str(path))
    assert "system" in info.value.global_name
    assert not marker.exists()
