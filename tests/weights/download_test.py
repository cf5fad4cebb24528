"""Downloads, offline: a `file://` mirror stands in for the hosts.

The mirror (`tests/weights/mirror.py`) serves the eca_resnet18 reference
fixture as `.pth.tar` and `.safetensors`; temporary table entries point
at it. `KERAS_HOME` is a temporary folder, so the real ~/.keras is never
used.
"""

import hashlib
import os
import shlex
import warnings

import pytest

from keras_eca import checkpoints
from keras_eca.applications import weights
from tests.weights import helpers
from tests.weights.mirror import SMALL
from tests.weights.mirror import TOL
from tests.weights.mirror import build
from tests.weights.mirror import cached
from tests.weights.mirror import forbid_network
from tests.weights.mirror import serve_gdrive
from tests.weights.mirror import serve_hub
from tests.weights.mirror import serve_url
from tests.weights.mirror import sha256



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
        "eca_resnet18.url_in1k.weights.json",
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
        "eca_resnet18.drive_in1k.weights.json",
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
        "eca_resnet18.mirror_in1k.weights.json",
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
