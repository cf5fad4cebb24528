"""A `file://` mirror of the download hosts, for the download and cache tests.

The mirror serves the eca_resnet18 reference fixture (rule "init v2") as
an official training checkpoint (`.pth.tar`, legacy format, `module.`
prefixes) and as `.safetensors`; temporary table entries point at it. The
`env` and `files` fixtures are in this folder's `conftest.py`.
"""

import hashlib
import json
import os
import urllib.request

import keras
from keras_eca import applications
from keras_eca.applications import weights
from tests import reference_fixtures as fixture_utils

SMALL = "official_eca_resnet18"
TOL = fixture_utils.RELATIVE_TOLERANCE
GDRIVE_ID = "TESTID0123"
HUB_REPO = "testorg/eca_resnet18.mirror_in1k"


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


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
