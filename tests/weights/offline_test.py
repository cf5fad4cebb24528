"""Offline: `WeightsDownloadError` says what to do, and a file placed where
it says is verified and used. The network is replaced by one that fails
as an unreachable host does; `KERAS_HOME` is a temporary folder."""

import hashlib
import os
import urllib.error
import urllib.request
import warnings

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import checkpoints
from keras_eca.applications import WeightsDownloadError
from keras_eca.applications import weights
from keras_eca.applications import weights_cache
from tests.weights import helpers
from tests.weights.mirror import SMALL
from tests.weights.mirror import TOL
from tests.weights.mirror import build
from tests.weights.mirror import cached
from tests.weights.mirror import register
from tests.weights.mirror import sha256

SIZE = 64


def offline(env):
    """Every request fails as without a network (what `urllib` and
    `keras.utils.get_file` raise when the host cannot be resolved)."""

    def urlopen(url, *args, **kwargs):
        raise urllib.error.URLError(
            OSError(-3, "Temporary failure in name resolution")
        )

    def get_file(*args, origin=None, **kwargs):
        raise Exception(
            f"URL fetch failure on {origin}: None -- [Errno -3] Temporary "
            "failure in name resolution"
        )

    env.mp.setattr(urllib.request, "urlopen", urlopen)
    env.mp.setattr(keras.utils, "get_file", get_file)


def outputs(model, seed=0):
    x = np.random.default_rng(seed).standard_normal((2, SIZE, SIZE, 3))
    return keras.ops.convert_to_numpy(model(x.astype("float32")))


def source_model(architecture, seed=0):
    """A model with random weights, standing in for the released ones."""
    model = applications.build_model(
        architecture,
        input_shape=(SIZE, SIZE, 3),
        classifier_activation=None,
    )
    return helpers.randomized(model, seed)


def write_torch_file(model, path):
    """`model`'s weights as a torchvision-layout file (`.safetensors` or a
    `torch.save` `.pth`)."""
    state_dict = helpers.torch_state_dict(model)
    if str(path).endswith(".safetensors"):
        from safetensors.numpy import save_file

        save_file(state_dict, str(path))
    else:
        checkpoints.save_state_dict_pth(state_dict, path)
    return path


@pytest.mark.parametrize(
    "key, cached_name",
    [
        ("resnet18.tv_in1k", "resnet18.tv_in1k.safetensors"),
        ("eca_resnet18.official_in1k", "eca_resnet18.official_in1k.pth.tar"),
        ("mobilenet_v2.tv_in1k", "mobilenet_v2.tv_in1k.pth"),
    ],
)
def test_offline_error_says_what_to_do(env, key, cached_name):
    offline(env)
    architecture = weights.WEIGHTS[key]["architecture"]
    with pytest.raises(WeightsDownloadError) as info:
        applications.build_model(
            architecture, weights=key, input_shape=(SIZE, SIZE, 3)
        )
    error = info.value
    assert isinstance(error, ValueError)  # what was raised before
    message = str(error)
    url = weights.download_url(key)
    path = str(env.cache / cached_name)
    assert error.key == key and error.url == url and error.cache_path == path
    assert path == weights.checkpoint_path(key)
    assert f"Cannot download the weights {key!r} from {url}" in message
    assert "name resolution" in message
    assert "pass the file as `weights=`" in message
    assert f"weights='/path/to/{weights.WEIGHTS[key]['file_name']}'" in message
    assert f"place it at {path} (file name {cached_name!r}" in message
    assert "verifies it" in message
    assert cached(env) == []  # no staging folder left behind


def test_offline_messages_say_how_a_placed_file_is_verified(env):
    offline(env)
    expected = {
        "resnet18.tv_in1k": "against the sha256 the hub publishes",
        "eca_resnet18.official_in1k": "no sha256 is published for it",
        "mobilenet_v2.tv_in1k": "sha256 must start with b0353104",
    }
    for key, how in expected.items():
        architecture = weights.WEIGHTS[key]["architecture"]
        with pytest.raises(WeightsDownloadError, match=how):
            applications.build_model(
                architecture,
                weights=key,
                include_top=False,
                input_shape=(SIZE, SIZE, 3),
            )


def test_sa_net_manual_download_names_the_cache_path(env):
    offline(env)
    with pytest.raises(WeightsDownloadError) as info:
        applications.SAResNet50()  # weights="imagenet" by default
    message = str(info.value)
    path = str(env.cache / "sa_resnet50.official_in1k.pth.tar")
    assert "only on Baidu Netdisk" in message and "474p" in message
    assert "weights='/path/to/sa_resnet50.pth.tar'" in message
    assert f"place it at {path}" in message
    assert message.endswith("Received: weights='imagenet'")
    assert info.value.url is None and info.value.cache_path == path


def test_download_error_is_kept_by_a_failed_rebuild(env, files):
    """A broken cached conversion that cannot be rebuilt offline still
    raises `WeightsDownloadError`, naming the broken file."""
    key = register(env, "drive_in1k", gdrive_id="NOWHERE")
    env.cache.mkdir(parents=True, mode=0o700)
    (env.cache / f"{key}.weights.h5").write_bytes(b"\0" * 100)
    offline(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(WeightsDownloadError) as info:
            build("drive_in1k")
    message = str(info.value)
    assert f"The cached weights {env.cache / (key + '.weights.h5')}" in message
    assert f"place it at {env.cache / (key + '.pth.tar')}" in message


# --- A file placed in the cache ---------------------------------------------


def test_placed_hub_file_is_used_offline(env):
    """Where the error says: converted, kept, and used from then on."""
    offline(env)
    source = source_model("resnet18")
    placed = env.cache / "resnet18.tv_in1k.safetensors"
    env.cache.mkdir(parents=True, mode=0o700)
    write_torch_file(source, placed)
    digest = sha256(placed)
    with pytest.warns(UserWarning, match=f"could not be verified.*{digest}"):
        model = applications.ResNet18(
            input_shape=(SIZE, SIZE, 3), classifier_activation=None
        )
    np.testing.assert_allclose(
        outputs(model), outputs(source), rtol=1e-5, atol=1e-5
    )
    assert cached(env) == [
        "resnet18.tv_in1k.safetensors",
        "resnet18.tv_in1k.weights.h5",
        "resnet18.tv_in1k.weights.json",
    ]
    # Next time from the conversion, without a warning; features too.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        features = applications.ResNet18(
            include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3)
        )
    expected = keras.Model(source.input, source.get_layer("avg_pool").output)
    np.testing.assert_allclose(
        outputs(features), outputs(expected), rtol=1e-5, atol=1e-5
    )


def test_placed_official_checkpoint_is_used_offline(env, files):
    """Google Drive weights (no published sha256): the official training
    checkpoint, placed by hand, loads if it loads strictly."""
    offline(env)
    env.cache.mkdir(parents=True, mode=0o700)
    placed = env.cache / "eca_resnet18.official_in1k.pth.tar"
    placed.write_bytes(files.pth.read_bytes())
    with pytest.warns(UserWarning, match="no sha256 is published"):
        model = applications.ECAResNet18(
            input_shape=(96, 96, 3), classifier_activation=None
        )
    assert helpers.logits_difference(model, SMALL) <= TOL
    key = "eca_resnet18.official_in1k"
    record = weights_cache._read_record(str(env.cache), key)
    assert record["source"] == {
        "file": placed.name,
        "sha256": sha256(placed),
        "verified_by": "unpublished",
    }


def test_placed_manual_checkpoint_is_used(env, files):
    """SA-Net's way (manual download), on the small ECA-ResNet-18."""
    offline(env)
    key = register(
        env,
        "manual_in1k",
        url=None,
        host="manual",
        hash_source="manual",
        manual_download="Download it by hand.",
    )
    with pytest.raises(WeightsDownloadError, match="Download it by hand"):
        build("manual_in1k")
    env.cache.mkdir(parents=True, mode=0o700)
    (env.cache / f"{key}.pth.tar").write_bytes(files.pth.read_bytes())
    with pytest.warns(UserWarning, match="could not be verified"):
        model = build("manual_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert f"{key}.weights.h5" in cached(env)


def test_placed_file_that_does_not_load_is_removed(env, tmp_path):
    offline(env)
    other = helpers.write_checkpoint(
        "official_eca_mobilenet_v2", "own_legacy", tmp_path / "x.pth.tar"
    )
    env.cache.mkdir(parents=True, mode=0o700)
    placed = env.cache / "eca_resnet18.official_in1k.pth.tar"
    placed.write_bytes(other.read_bytes())
    with pytest.raises(ValueError) as info:
        applications.ECAResNet18(input_shape=(SIZE, SIZE, 3))
    message = str(info.value)
    assert f"The checkpoint {placed} in the weights cache is not" in message
    assert "so it was removed" in message and "Missing tensors" in message
    assert cached(env) == []


def test_placed_file_with_the_wrong_prefix_is_removed(env, tmp_path):
    offline(env)
    env.cache.mkdir(parents=True, mode=0o700)
    placed = env.cache / "mobilenet_v2.tv_in1k.pth"
    write_torch_file(source_model("mobilenet_v2"), placed)
    digest = sha256(placed)
    assert not digest.startswith("b0353104")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsDownloadError):
            applications.MobileNetV2(input_shape=(SIZE, SIZE, 3))
    (warning,) = [w for w in caught if "cannot be used" in str(w.message)]
    assert f"its sha256 is {digest}" in str(warning.message)
    assert "a sha256 starting with b0353104" in str(warning.message)
    assert cached(env) == []


# --- torchvision's sha256 prefix ----------------------------------------------


def test_torchvision_prefix_of_the_table():
    entry = weights.WEIGHTS["mobilenet_v2.tv_in1k"]
    assert entry["hash_source"] == "prefix" and entry["sha256"] is None
    assert weights_cache.sha256_prefix(entry) == "b0353104"
    assert entry["url"].rsplit("/", 1)[1] == entry["file_name"]
    with pytest.raises(ValueError, match="file_name='model.pth'"):
        weights_cache.sha256_prefix({"file_name": "model.pth"})
    with pytest.raises(ValueError, match="file_name='model-12ab.pth'"):
        weights_cache.sha256_prefix({"file_name": "model-12ab.pth"})


def serve_prefixed(env, data, prefix):
    """A torchvision-style entry for mobilenet_v2 whose file name carries
    `prefix`, served from the mirror."""
    name = f"mobilenet_v2-{prefix}.pth"
    path = env.mirror / name
    path.write_bytes(data)
    entry = weights.weights_config("mobilenet_v2.tv_in1k")
    entry.update(tag="mirror_in1k", url=path.as_uri(), file_name=name)
    key = "mobilenet_v2.mirror_in1k"
    env.mp.setitem(weights.WEIGHTS, key, entry)
    return key


def test_download_matching_the_prefix_is_kept(env, tmp_path):
    source = source_model("mobilenet_v2")
    data = write_torch_file(source, tmp_path / "tv.pth").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    key = serve_prefixed(env, data, digest[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # verified: no warning
        model = applications.build_model(
            "mobilenet_v2",
            weights=key,
            input_shape=(SIZE, SIZE, 3),
            classifier_activation=None,
        )
    np.testing.assert_allclose(
        outputs(model), outputs(source), rtol=1e-5, atol=1e-5
    )
    record = weights_cache._read_record(str(env.cache), key)
    assert record["source"]["verified_by"] == "prefix"
    assert record["source"]["sha256"] == digest


def test_download_with_the_wrong_prefix_leaves_nothing(env, tmp_path):
    data = write_torch_file(
        source_model("mobilenet_v2"), tmp_path / "tv.pth"
    ).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    key = serve_prefixed(env, data, wrong)
    with pytest.raises(ValueError) as info:
        applications.build_model(
            "mobilenet_v2", weights=key, input_shape=(SIZE, SIZE, 3)
        )
    assert not isinstance(info.value, WeightsDownloadError)
    message = str(info.value)
    assert f"its sha256 is {digest}, expected one starting with {wrong}" in (
        message
    )
    assert "It was deleted" in message
    assert cached(env) == []
    assert not os.path.exists(weights.converted_path(key))
