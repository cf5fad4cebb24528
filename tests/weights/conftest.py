"""Fixtures of the download and cache tests: the mirror's files and a
temporary `KERAS_HOME` (the real ~/.keras is never used)."""

import types

import pytest

from keras_eca.applications import weights_cache
from tests.weights import helpers
from tests.weights.mirror import SMALL


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

