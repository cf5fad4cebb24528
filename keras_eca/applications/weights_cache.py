"""Pretrained weights: downloads, verification and the cache.

Downloads go through `keras.utils.get_file` into `$KERAS_HOME/keras_eca`
(default `~/.keras/keras_eca`): the file lands in a temporary folder inside
the cache, is verified and converted, and only then moved into place with
`os.replace`, next to its converted Keras weights
`<architecture>.<tag>.weights.h5`. Later loads read the converted file
and never touch the network. The environment variables
`KERAS_ECA_HUB_URL` (default `https://huggingface.co`) and
`KERAS_ECA_GDRIVE_URL` (default `https://drive.usercontent.google.com`)
change the hosts, e.g. to a mirror.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import warnings

import keras

from keras_eca import checkpoints
from keras_eca.applications.weights import DEFAULT_GDRIVE_URL
from keras_eca.applications.weights import DEFAULT_HUB_URL
from keras_eca.applications.weights import GDRIVE_URL_ENV
from keras_eca.applications.weights import HUB_URL_ENV
from keras_eca.applications.weights import WEIGHTS

CACHE_SUBDIR = "keras_eca"
_HTML_PREFIXES = (b"<!doctype html", b"<html")
_STAGING_PREFIX = ".download-"
_STALE_SECONDS = 24 * 3600

# Sessions warn once per unverified file.
_WARNED = set()


def cache_dir():
    """The folder of downloaded and converted weights (created if needed).

    `$KERAS_HOME/keras_eca`, or `~/.keras/keras_eca` without `KERAS_HOME`
    (read at each call); a temporary folder if that is not writable.

    Returns:
        The folder's path.
    """
    root = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    path = os.path.join(root, CACHE_SUBDIR)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        path = os.path.join(tempfile.gettempdir(), ".keras", CACHE_SUBDIR)
        os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
        path = os.path.join(tempfile.gettempdir(), ".keras", CACHE_SUBDIR)
        os.makedirs(path, exist_ok=True)
    return path


def _base_url(variable, default):
    return (os.environ.get(variable) or default).rstrip("/")


def download_url(key):
    """The URL `key` is downloaded from, after the host overrides.

    Args:
        key: str. A table key.

    Returns:
        The URL, or `None` for weights that must be downloaded by hand.
    """
    entry = WEIGHTS[key]
    if entry["host"] == "hub":
        hub = _base_url(HUB_URL_ENV, DEFAULT_HUB_URL)
        return f"{hub}/{entry['hub_repo']}/resolve/main/{entry['hub_file']}"
    if entry["host"] == "gdrive":
        drive = _base_url(GDRIVE_URL_ENV, DEFAULT_GDRIVE_URL)
        return (
            f"{drive}/download?id={entry['gdrive_id']}"
            "&export=download&confirm=t"
        )
    return entry["url"]


def _hub_sha256(entry):
    """The sha256 the hub publishes for the entry's file (its LFS oid)."""
    hub = _base_url(HUB_URL_ENV, DEFAULT_HUB_URL)
    url = f"{hub}/api/models/{entry['hub_repo']}/tree/main"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            listing = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ValueError(
            f"Cannot get the published sha256 of {entry['hub_file']} from "
            f"{url} ({error}), so the download cannot be verified."
        ) from error
    for item in listing if isinstance(listing, list) else []:
        if isinstance(item, dict) and item.get("path") == entry["hub_file"]:
            oid = (item.get("lfs") or {}).get("oid")
            if isinstance(oid, str) and re.fullmatch(r"[0-9a-f]{64}", oid):
                return oid
    raise ValueError(
        f"{url} publishes no sha256 (LFS oid) for {entry['hub_file']}, so "
        "the download cannot be verified."
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_name(key, entry):
    ext = ".pth.tar" if entry["file_name"].endswith(".pth.tar") else (
        os.path.splitext(entry["file_name"])[1]
    )
    return key + ext


def converted_path(key):
    """Where the converted Keras weights of `key` are cached.

    Args:
        key: str. A table key.

    Returns:
        `<cache_dir()>/<architecture>.<tag>.weights.h5` (it may not exist).
    """
    return os.path.join(cache_dir(), f"{key}.weights.h5")


def fetch_and_convert(key, model, convert):
    """Downloads (or reuses) the checkpoint of `key`, converts it into
    `model` with `convert(model, path, layout=...)` and caches the
    converted weights; nothing unverified stays."""
    entry = WEIGHTS[key]
    cache = cache_dir()
    raw = os.path.join(cache, _raw_name(key, entry))
    if (
        os.path.isfile(raw)
        and entry["sha256"]
        and _sha256(raw) != entry["sha256"]
    ):
        os.remove(raw)
    _remove_stale_downloads(cache)
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache)
    try:
        if os.path.isfile(raw):
            # Verified (or, without a published hash, converted) before.
            try:
                convert(model, raw, layout=entry["weights_layout"])
            except Exception:
                os.remove(raw)
                raise
        else:
            fetched, digest = _download(key, entry, staging)
            _convert_download(model, fetched, digest, entry, key, convert)
            os.replace(fetched, raw)
        staged = os.path.join(staging, f"{key}.weights.h5")
        model.save_weights(staged)
        os.replace(staged, converted_path(key))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_downloads(cache):
    """Removes staging folders a killed process left (older than a day;
    younger ones may belong to a download running in another process)."""
    now = time.time()
    for name in os.listdir(cache):
        path = os.path.join(cache, name)
        if name.startswith(_STAGING_PREFIX) and os.path.isdir(path):
            if now - os.path.getmtime(path) > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)


def _download(key, entry, staging):
    """Downloads into `staging`; returns `(path, sha256)` once verified."""
    url = download_url(key)
    expected = entry["sha256"]
    if expected is None and entry["hash_source"] == "hub":
        expected = _hub_sha256(entry)
    try:
        path = keras.utils.get_file(
            fname=_raw_name(key, entry),
            origin=url,
            cache_dir=staging,
            cache_subdir="",
        )
    except Exception as error:
        raise ValueError(
            f"Cannot download the weights {key!r} from {url}: {error}"
        ) from error
    actual = _sha256(path)
    if expected is not None and actual != expected:
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} is "
            f"corrupt or was changed: its sha256 is {actual}, expected "
            f"{expected}. It was deleted; try again, or download it by hand "
            "and pass the file as `weights=`."
        )
    with open(path, "rb") as file:
        head = file.read(64).lstrip().lower()
    if head.startswith(_HTML_PREFIXES):
        raise ValueError(
            f"{url} returned a web page instead of the weights {key!r} "
            "(download quota exceeded, or the file moved). It was deleted. "
            f"Download {entry['file_name']} by hand from {entry['source']} "
            "and pass the file as `weights=`."
        )
    return path, actual


def _convert_download(model, path, digest, entry, key, convert):
    url = download_url(key)
    expected = entry["sha256"] or (
        "the hub's published hash" if entry["hash_source"] == "hub" else None
    )
    try:
        convert(model, path, layout=entry["weights_layout"])
    except checkpoints.UnsafeCheckpointError:
        raise
    except Exception as error:
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} could "
            f"not be loaded, so it was deleted (sha256 {digest}, expected "
            f"{expected or 'unknown: none is published'}). {error}"
        ) from error
    if entry["sha256"] is None and entry["hash_source"] == "unpublished":
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"The weights {key!r} from {url} could not be verified: no "
                "sha256 is published for them. The file loads strictly, so "
                f"it was kept; its sha256 is {digest} (pin it in "
                f"keras_eca.applications.weights.WEIGHTS[{key!r}]['sha256'] "
                "to verify later downloads).",
                stacklevel=2,
            )
