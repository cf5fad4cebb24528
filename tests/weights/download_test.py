"""Downloads, offline: a `file://` mirror stands in for the hosts.

The mirror serves the eca_resnet18 reference fixture (rule "init v2") as
an official training checkpoint (`.pth.tar`, legacy format, `module.`
prefixes) and as `.safetensors`; temporary table entries point at it.
`KERAS_HOME` is a temporary folder, so the real ~/.keras is never used.
"""

import hashlib
import json
import os
import shlex
import types
import urllib.request
import warnings

import pytest

import keras
from keras_eca import applications
from keras_eca import checkpoints
from keras_eca.applications import weights
from keras_eca.applications import weights_cache
from tests import reference_fixtures as fixture_utils
from tests.weights import helpers

SMALL = "official_eca_resnet18"
TOL = fixture_utils.RELATIVE_TOLERANCE
GDRIVE_ID = "TESTID0123"
HUB_REPO = "testorg/eca_resnet18.mirror_in1k"


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    pth = helpers.write_checkpoint(
        SMALL, "own_legacy", folder / "eca_resnet18_k3577.pth.tar"
    )
    safetensors = helpers.write_checkpoint(
        SMALL, "safetensors", folder / "model.safetensors"
    )
    return types.SimpleNamespace(pth=pth, safetensors=safetensors)


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    mirror = tmp_path / "mirror"
    (mirror / "gdrive").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("KERAS_ECA_HUB_URL", mirror.as_uri() + "/hub/")
    monkeypatch.setenv("KERAS_ECA_GDRIVE_URL", mirror.as_uri() + "/gdrive")
    monkeypatch.setattr(weights_cache, "_WARNED", set())
    return types.SimpleNamespace(
        home=home, mirror=mirror, cache=home / "keras_eca", mp=monkeypatch
    )


def register(env, tag, **fields):
    entry = weights.weights_config("eca_resnet18.official_in1k")
    entry.update(tag=tag, **fields)
    key = f"eca_resnet18.{tag}"
    env.mp.setitem(weights.WEIGHTS, key, entry)
    return key


def serve_url(env, data, sha=None, name="eca_resnet18_k3577.pth.tar"):
    """A plain URL entry with a pinned sha256 (default: the real one)."""
    path = env.mirror / name
    path.write_bytes(data)
    register(
        env,
        "url_in1k",
        host="url",
        url=path.as_uri(),
        sha256=sha or hashlib.sha256(data).hexdigest(),
        hash_source="pinned",
    )
    return path


def serve_gdrive(env, data):
    path = env.mirror / "gdrive" / (
        f"download?id={GDRIVE_ID}&export=download&confirm=t"
    )
    path.write_bytes(data)
    register(env, "drive_in1k", gdrive_id=GDRIVE_ID)
    return path


def serve_hub(env, data, oid=None, listing=True):
    folder = env.mirror / "hub" / HUB_REPO / "resolve" / "main"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(data)
    if listing:
        tree = env.mirror / "hub" / "api" / "models" / HUB_REPO / "tree"
        tree.mkdir(parents=True)
        oid = oid or hashlib.sha256(data).hexdigest()
        (tree / "main").write_text(
            json.dumps(
                [
                    {"type": "file", "path": ".gitattributes", "size": 1519},
                    {
                        "type": "file",
                        "path": "model.safetensors",
                        "size": len(data),
                        "lfs": {
                            "oid": oid,
                            "size": len(data),
                            "pointerSize": 135,
                        },
                    },
                ]
            )
        )
    register(
        env,
        "mirror_in1k",
        host="hub",
        url=f"https://huggingface.co/{HUB_REPO}/resolve/main/model.safetensors",
        hub_repo=HUB_REPO,
        hub_file="model.safetensors",
        file_name="model.safetensors",
        file_format="safetensors",
        hash_source="hub",
    )
    return folder / "model.safetensors"


def build(weights_name, **kwargs):
    kwargs.setdefault("input_shape", (96, 96, 3))
    kwargs.setdefault("classifier_activation", None)
    return applications.build_model(
        "eca_resnet18", weights=weights_name, **kwargs
    )


def cached(env):
    return sorted(os.listdir(env.cache)) if env.cache.exists() else []


def forbid_network(env):
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be used")

    env.mp.setattr(keras.utils, "get_file", refuse)
    env.mp.setattr(urllib.request, "urlopen", refuse)


def test_download_urls_follow_the_host_variables(monkeypatch):
    monkeypatch.delenv("KERAS_ECA_HUB_URL", raising=False)
    monkeypatch.delenv("KERAS_ECA_GDRIVE_URL", raising=False)
    for key in weights.list_weights():
        assert weights.download_url(key) == weights.WEIGHTS[key]["url"]
    monkeypatch.setenv("KERAS_ECA_HUB_URL", "http://mirror.local/hf/")
    monkeypatch.setenv("KERAS_ECA_GDRIVE_URL", "http://mirror.local/gd")
    assert weights.download_url("ecaresnet50d.miil_in1k") == (
        "http://mirror.local/hf/timm/ecaresnet50d.miil_in1k/resolve/main/"
        "model.safetensors"
    )
    assert weights.download_url("eca_resnet50.official_in1k") == (
        "http://mirror.local/gd/download?id=1670rce333c_lyMWFzBlNZoVUvtxbCF_U"
        "&export=download&confirm=t"
    )
    assert weights.download_url("sa_resnet50.official_in1k") is None


def test_cache_folder_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert weights.cache_dir() == str(tmp_path / "kh" / "keras_eca")
    assert weights.converted_path("ecaresnet50d.miil_in1k") == str(
        tmp_path / "kh" / "keras_eca" / "ecaresnet50d.miil_in1k.weights.h5"
    )


def test_pinned_download_is_verified_converted_and_cached(env, files, capsys):
    mirror_file = serve_url(env, files.pth.read_bytes())
    model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    out = capsys.readouterr().out
    assert "Downloading data from file://" in out
    assert "converting eca_resnet18.url_in1k.pth.tar" in out
    assert cached(env) == [
        "eca_resnet18.url_in1k.pth.tar",
        "eca_resnet18.url_in1k.weights.h5",
    ]
    assert sha256(env.cache / "eca_resnet18.url_in1k.pth.tar") == sha256(
        files.pth
    )

    # Second load: from the converted file, offline, no conversion.
    mirror_file.unlink()
    forbid_network(env)
    model = build("eca_resnet18.url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    features = build("url_in1k", include_top=False, pooling="avg")
    assert helpers.logits_difference(features, SMALL, "features") <= TOL
    assert "converting" not in capsys.readouterr().out


def test_hash_mismatch_deletes_the_download(env, files):
    wrong = "0" * 64
    mirror_file = serve_url(env, files.pth.read_bytes(), sha=wrong)
    with pytest.raises(ValueError) as info:
        build("url_in1k")
    message = str(info.value)
    assert mirror_file.as_uri() in message
    assert f"expected {wrong}" in message
    assert f"sha256 is {sha256(files.pth)}" in message
    assert cached(env) == []


@pytest.mark.parametrize("host", ["url", "gdrive", "hub"])
def test_truncated_download_is_deleted(env, files, host):
    source = files.safetensors if host == "hub" else files.pth
    data = source.read_bytes()
    truncated = data[: len(data) // 2]
    if host == "url":
        serve_url(env, truncated, sha=hashlib.sha256(data).hexdigest())
        tag, match = "url_in1k", "corrupt or was changed"
    elif host == "gdrive":
        serve_gdrive(env, truncated)
        tag, match = "drive_in1k", "could not be loaded, so it was deleted"
    else:
        serve_hub(env, truncated, oid=hashlib.sha256(data).hexdigest())
        tag, match = "mirror_in1k", "corrupt or was changed"
    with pytest.raises(ValueError, match=match):
        build(tag)
    assert cached(env) == []


def test_unverified_download_is_kept_with_its_sha256(env, files, capsys):
    mirror_file = serve_gdrive(env, files.pth.read_bytes())
    digest = sha256(files.pth)
    with pytest.warns(UserWarning, match=f"could not be verified.*{digest}"):
        model = build("drive_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert cached(env) == [
        "eca_resnet18.drive_in1k.pth.tar",
        "eca_resnet18.drive_in1k.weights.h5",
    ]
    # The converted file goes; the kept checkpoint is converted again,
    # offline and without a second warning.
    mirror_file.unlink()
    forbid_network(env)
    os.remove(env.cache / "eca_resnet18.drive_in1k.weights.h5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build("drive_in1k")
    assert not [w for w in caught if "verified" in str(w.message)]
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert "converting" in capsys.readouterr().out


def test_web_page_instead_of_checkpoint(env):
    serve_gdrive(env, b"<!DOCTYPE html><html><title>Quota exceeded</title>")
    with pytest.raises(ValueError, match="returned a web page.*deleted"):
        build("drive_in1k")
    assert cached(env) == []


def test_hub_download_is_checked_against_the_published_hash(env, files):
    serve_hub(env, files.safetensors.read_bytes())
    model = build("mirror_in1k", include_top=False, pooling="avg")
    assert helpers.logits_difference(model, SMALL, "features") <= TOL
    assert cached(env) == [
        "eca_resnet18.mirror_in1k.safetensors",
        "eca_resnet18.mirror_in1k.weights.h5",
    ]
    # The converted file holds the whole model, classifier included.
    forbid_network(env)
    model = build("mirror_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL


def test_hub_hash_mismatch(env, files):
    data = files.safetensors.read_bytes()
    serve_hub(env, data, oid="f" * 64)
    with pytest.raises(ValueError) as info:
        build("mirror_in1k")
    message = str(info.value)
    assert "f" * 64 in message and hashlib.sha256(data).hexdigest() in message
    assert "/hub/testorg/eca_resnet18.mirror_in1k/resolve/main/" in message
    assert cached(env) == []


def test_hub_without_published_hash_is_refused(env, files):
    serve_hub(env, files.safetensors.read_bytes(), listing=False)
    with pytest.raises(ValueError, match="cannot be verified"):
        build("mirror_in1k")
    assert cached(env) == []


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_malicious_download_is_refused_and_deleted(env, tmp_path):
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save(
        {"state_dict": {"fc.bias": torch.zeros(2)}, "x": _Payload(marker)},
        evil,
        _use_new_zipfile_serialization=False,
    )
    serve_gdrive(env, evil.read_bytes())
    with pytest.raises(checkpoints.UnsafeCheckpointError):
        build("drive_in1k")
    assert not marker.exists()
    assert cached(env) == []


def test_wrong_checkpoint_is_deleted(env, tmp_path):
    other = helpers.write_checkpoint(
        "official_eca_mobilenet_v2", "own_legacy", tmp_path / "other.pth.tar"
    )
    serve_gdrive(env, other.read_bytes())
    match = "(?s)could not be loaded.*Missing tensors"
    with pytest.raises(ValueError, match=match):
        build("drive_in1k")
    assert cached(env) == []


def test_kernel_size_override_fails_before_downloading(env, files):
    serve_url(env, files.pth.read_bytes())
    forbid_network(env)
    with pytest.raises(ValueError) as info:
        build("url_in1k", kernel_sizes="adaptive")
    message = str(info.value)
    assert "ECA kernel sizes [3, 5, 7, 7] per stage" in message
    assert "has [3, 5, 5, 5]" in message
    assert "`kernel_sizes` must be None" in message
    assert cached(env) == []


def test_same_kernel_sizes_given_explicitly(env, files):
    serve_url(env, files.pth.read_bytes())
    model = build("url_in1k", kernel_sizes=(3, 5, 7, 7))
    assert helpers.logits_difference(model, SMALL) <= TOL


def test_stale_staging_folders_are_removed(env, files):
    env.cache.mkdir(parents=True)
    stale = env.cache / ".download-killed"
    stale.mkdir()
    (stale / "half.pth.tar").write_bytes(b"half")
    os.utime(stale, (0, 0))
    fresh = env.cache / ".download-running"
    fresh.mkdir()
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    assert not stale.exists() and fresh.exists()


def test_other_attention_fails_before_downloading(env, files):
    serve_url(env, files.pth.read_bytes())
    forbid_network(env)
    with pytest.raises(ValueError) as info:
        build("url_in1k", attention="se")
    message = str(info.value)
    assert "'eca_resnet18.url_in1k' do not fit model 'eca_resnet18'" in message
    assert "conv2_block1_attn: EfficientChannelAttention" in message
    assert cached(env) == []
