"""Pretrained weights: downloads, verification and the cache.

The cache is `$KERAS_HOME/keras_eca` (default `~/.keras/keras_eca`). Per
table key it holds:

- `<key>.pth.tar` / `<key>.safetensors`: the downloaded checkpoint;
- `<key>.weights.h5`: its conversion to Keras weights, what loads read;
- `<key>.weights.json`: the record of both: the checkpoint's sha256 and
  what verified it, the converter version (`CONVERTER_VERSION`) and the
  sha256 of the `.weights.h5`.

Nothing in it is trusted blindly:

- The folder must be private: a folder, not a symbolic link, owned by the
  current user (or root), that no one else may write to; it is created
  with mode 0700. Any other folder raises a `ValueError` (another user
  could have planted weights in it); there is no fallback to a shared
  temporary folder. Its files must be regular files of the same owners
  that no one else may write to.
- A converted file is used only if its record matches it: the same key
  and converter version, the table's pinned sha256 (if any) as its
  source, and its own sha256. Otherwise, or if it does not load, it is
  removed and rebuilt; only if that fails is there a `ValueError` naming
  it.
- The cached checkpoint is checked before every conversion: against the
  table's pinned sha256, else the sha256 recorded when it was accepted,
  else the hub's published sha256, else the sha256 prefix in the file name
  (torchvision's files, `hash_source="prefix"`). One that differs is
  removed and downloaded again.

A checkpoint downloaded by hand may be placed in the cache under the name
the cache gives it, `checkpoint_path(key)` (`<key>.pth.tar`, `<key>.pth`
or `<key>.safetensors`): the next load checks it as above and converts and
keeps it. When no sha256 can be had for it (none is published: the
official ECA-Net and SA-Net files; or the hub cannot be reached), it is
used if it loads strictly, with a warning that prints its sha256. When the
weights are neither in the cache nor downloadable (no network; SA-Net's
manual downloads), `WeightsDownloadError` (a `ValueError`) names the URL
and says both ways out: pass a local file as `weights=`, or place it at
`checkpoint_path(key)`.

Downloads go through `keras.utils.get_file` into a staging folder inside
the cache, are verified and converted, and only then moved into place
with `os.replace`, the record last, so nothing half-written ever remains
and a record that does not match its files only means a rebuild. A
read-only cache is read from; what would have to be written is then built
in a private temporary folder and not kept, with a warning, as when the
cache cannot be created. A cache that cannot be written (a full disk)
does not fail the load: the weights are loaded, with a warning.

`KERAS_ECA_HUB_URL` (default `https://huggingface.co`) and
`KERAS_ECA_GDRIVE_URL` (default `https://drive.usercontent.google.com`)
change the hosts, e.g. to a mirror. The hub's published sha256 is then
read from the mirror too; a `sha256` pinned in the table takes precedence
over it (and the hub is not asked).
"""

import hashlib
import json
import os
import re
import shutil
import stat
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
from keras_eca.applications.weights import WeightsDownloadError

CACHE_SUBDIR = "keras_eca"
# Bump when `keras_eca.conversion` makes other weights from the same
# checkpoint: cached conversions of other versions are then rebuilt.
CONVERTER_VERSION = 1
_HTML_PREFIXES = (b"<!doctype html", b"<html")
_STAGING_PREFIX = ".download-"
_STALE_SECONDS = 24 * 3600
_TEMPORARY_PREFIX = "keras_eca-"

# Sessions warn once per unverified file: `(key, sha256)`.
_WARNED = set()


def cache_dir():
    """The folder of downloaded and converted weights (created if needed).

    `$KERAS_HOME/keras_eca`, or `~/.keras/keras_eca` without `KERAS_HOME`
    (read at each call), created with mode 0700.

    Returns:
        The folder's path.

    Raises:
        ValueError: if the folder cannot be created (`KERAS_HOME` is a
            file, or not writable) or is not private: a symbolic link, not
            a folder, owned by another user or writable by others.
    """
    cache = _open_cache()
    if not cache.exists:
        raise ValueError(
            f"The weights cache {cache.folder} {cache.problem}. "
            f"{_keras_home_hint()}"
        )
    return cache.folder


def _cache_path():
    root = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    return os.path.join(root, CACHE_SUBDIR)


def _keras_home_hint():
    home = os.environ.get("KERAS_HOME")
    now = f"now {home!r}" if home else "unset, so ~/.keras is used"
    return (
        f"Set KERAS_HOME ({now}) to a writable folder of your own: the "
        f"cache is $KERAS_HOME/{CACHE_SUBDIR}."
    )


class _Cache:
    """The cache folder as found: `exists` (it can be read), `problem`
    (why it cannot be written, `None` if it can)."""

    def __init__(self, folder, exists, problem=None):
        self.folder = folder
        self.exists = exists
        self.problem = problem

    @property
    def writable(self):
        return self.exists and self.problem is None


def _open_cache():
    """Creates the cache folder if it can and checks that it is private."""
    folder = _cache_path()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as error:
        if not os.path.lexists(folder):
            return _Cache(folder, False, f"cannot be created ({error})")
    _tighten_own_folder(folder)
    problem = _untrusted(folder, folder=True)
    if problem is not None:
        raise ValueError(
            f"The weights cache {folder} is not a private folder of the "
            f"current user: {problem}. Another user could have planted "
            "weights in it, so it is not used. Make it a folder of yours "
            f"that only you can write to (`chmod 700 {folder}`) or remove "
            f"it. Or: {_keras_home_hint()}"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return _Cache(folder, True, "is read-only")
    return _Cache(folder, True)


def _tighten_own_folder(folder):
    """Makes a cache folder of ours that others may write to private.

    Earlier versions created it with the umask's mode (0775 under the
    common umask 002). Tightening it is safe: every file in it is checked
    on its own (owner, mode, recorded sha256) before it is trusted.
    """
    if not hasattr(os, "getuid"):
        return
    try:
        info = os.lstat(folder)
        if (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid()
            and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            os.chmod(folder, 0o700)
            warnings.warn(
                f"keras_eca: the weights cache {folder} was writable by "
                f"other users (mode {stat.filemode(info.st_mode)}); it is "
                "now private (0700), and files in it that others could "
                "have written are rebuilt.",
                stacklevel=4,
            )
    except OSError:
        pass  # then _untrusted says what is wrong


def _untrusted(path, folder=False):
    """Why `path` may not be ours (another user could have written it), or
    `None`. Checked with `os.lstat`: links are not followed."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"it cannot be read ({error})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if folder and not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if not folder and not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if not hasattr(os, "getuid"):  # Windows: no POSIX owners and modes.
        return None
    if info.st_uid not in (os.getuid(), 0):
        return (
            f"it is owned by another user (uid {info.st_uid}; you are "
            f"{os.getuid()})"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            "other users may write to it (mode "
            f"{stat.filemode(info.st_mode)})"
        )
    return None


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


def _hub_sha256(key, entry):
    """The sha256 the hub publishes for the entry's file (its LFS oid).

    Raises `WeightsDownloadError` when the hub cannot be reached, and
    `ValueError` when it publishes no sha256 for the file."""
    hub = _base_url(HUB_URL_ENV, DEFAULT_HUB_URL)
    url = f"{hub}/api/models/{entry['hub_repo']}/tree/main"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        if _not_found(error):  # The host answered: it has no listing.
            raise ValueError(
                f"Cannot get the published sha256 of {entry['hub_file']} "
                f"from {url} ({error}), so the download cannot be verified."
            ) from error
        raise _download_error(
            key,
            f"the sha256 the hub publishes for {entry['hub_file']}, which "
            f"the download must match, cannot be read from {url}: {error}",
        ) from error
    try:
        listing = json.loads(data.decode("utf-8"))
    except ValueError as error:
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


def _not_found(error):
    """Whether a failed request reached its host, which answered that the
    resource is not there (HTTP 404 / 410, or a missing `file://` file)."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in (404, 410)
    reason = getattr(error, "reason", error)
    return isinstance(reason, FileNotFoundError)


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


def checkpoint_path(key):
    """Where the cache keeps the checkpoint of `key`, as downloaded.

    A file downloaded by hand (from `download_url(key)`, or SA-Net's Baidu
    link) may be placed here: the next load of `key` verifies it (see the
    module docstring), converts it and keeps the conversion.

    Args:
        key: str. A table key.

    Returns:
        `<cache_dir()>/<key><extension>`, e.g.
        `~/.keras/keras_eca/resnet18.tv_in1k.safetensors` (it may not
        exist; the folder is neither created nor checked).
    """
    return os.path.join(_cache_path(), _raw_name(key, WEIGHTS[key]))


def has_checkpoint(key):
    """Whether the cache holds a checkpoint or a conversion of `key` (not
    yet checked: loading does that)."""
    paths = (checkpoint_path(key), converted_path(key))
    return any(os.path.lexists(path) for path in paths)


def sha256_prefix(entry):
    """The sha256 prefix a `hash_source="prefix"` entry's file must have:
    the hex digits after the last `-` of its file name, as torchvision
    checks (`mobilenet_v2-b0353104.pth` -> `"b0353104"`)."""
    match = re.search(r"-([0-9a-f]+)\.[^-]*$", entry["file_name"])
    if match is None or len(match.group(1)) < 8:
        raise ValueError(
            "A `hash_source='prefix'` entry needs a file name ending in "
            "'-<at least 8 hex digits>.<extension>'. Received: "
            f"file_name={entry['file_name']!r}"
        )
    return match.group(1)


def _how_verified(entry):
    """How a checkpoint placed in the cache is checked, for messages."""
    if entry["sha256"]:
        return f"its sha256 must be {entry['sha256']}"
    if entry["hash_source"] == "hub":
        return (
            "against the sha256 the hub publishes for it when the hub can be "
            "reached; else it is used if it loads strictly, with a warning "
            "that prints its sha256"
        )
    if entry["hash_source"] == "prefix":
        return (
            f"its sha256 must start with {sha256_prefix(entry)}, as "
            "torchvision checks"
        )
    return (
        "no sha256 is published for it: it is used if it loads strictly, "
        "with a warning that prints its sha256"
    )


def placement_hint(key):
    """Where a checkpoint downloaded by hand goes in the cache, and how it
    is checked there: a sentence for error messages."""
    entry = WEIGHTS[key]
    return (
        f"place it at {checkpoint_path(key)} (file name "
        f"{os.path.basename(checkpoint_path(key))!r} in the weights cache "
        f"$KERAS_HOME/{CACHE_SUBDIR}): the next load of weights={key!r} "
        f"verifies it ({_how_verified(entry)}), then converts and uses it"
    )


def _download_error(key, reason):
    """`WeightsDownloadError` for weights that could not be fetched."""
    entry = WEIGHTS[key]
    url = download_url(key)
    name = entry["file_name"]
    architecture = entry["architecture"]
    return WeightsDownloadError(
        f"Cannot download the weights {key!r} from {url} ({reason}). "
        f"Download that file ({name}) where the network can be reached, "
        "then either pass the file as `weights=` "
        f"(build_model({architecture!r}, weights='/path/to/{name}')), or "
        f"{placement_hint(key)}.",
        key=key,
        url=url,
        cache_path=checkpoint_path(key),
    )


def manual_download_error(key, weights):
    """`WeightsDownloadError` for weights that can only be downloaded by
    hand (SA-Net) and are not in the cache."""
    entry = WEIGHTS[key]
    return WeightsDownloadError(
        f"{entry['manual_download']} Or {placement_hint(key)}. "
        f"Received: weights={weights!r}",
        key=key,
        url=None,
        cache_path=checkpoint_path(key),
    )


def converted_path(key):
    """Where the converted Keras weights of `key` are cached.

    Args:
        key: str. A table key.

    Returns:
        `<cache_dir()>/<architecture>.<tag>.weights.h5` (it may not exist;
        the folder is neither created nor checked).
    """
    return os.path.join(_cache_path(), f"{key}.weights.h5")


def _record_path(folder, key):
    return os.path.join(folder, f"{key}.weights.json")


def load_cached(key, model, convert):
    """Loads the weights `key` into `model` from the cache, rebuilding them
    when they are missing or do not match their record.

    Args:
        key: str. A table key.
        model: the model of the table entry's architecture, with its
            classifier (1000 classes) and the registry's own attention.
        convert: callable `(model, path, layout=...)` that loads a
            checkpoint file into `model`, strictly.

    Raises:
        ValueError: if the weights cannot be downloaded, verified or
            converted (naming the cached file that could not be used, if
            one was there), or the cache folder is not private.
    """
    cache = _open_cache()
    loaded, problem = _load_converted(cache, key, model)
    if loaded:
        return
    path = converted_path(key)
    if problem is not None:
        warnings.warn(
            f"keras_eca: the cached weights {path} cannot be used: "
            f"{problem}. They are built again.",
            stacklevel=2,
        )
    try:
        _rebuild(cache, key, model, convert)
    except checkpoints.UnsafeCheckpointError:
        raise
    except Exception as error:
        if problem is None:
            raise
        message = (
            f"The cached weights {path} could not be used ({problem}), and "
            f"building them again failed: {error}"
        )
        if isinstance(error, WeightsDownloadError):
            raise WeightsDownloadError(
                message,
                key=error.key,
                url=error.url,
                cache_path=error.cache_path,
            ) from error
        raise ValueError(message) from error


def _load_converted(cache, key, model):
    """Loads the cached conversion of `key`. Returns `(loaded, problem)`:
    `problem` says why a cached file was not used (it is then removed)."""
    path = os.path.join(cache.folder, f"{key}.weights.h5")
    if not cache.exists or not os.path.lexists(path):
        return False, None
    problem = _untrusted(path) or _record_problem(
        key, path, _read_record(cache.folder, key)
    )
    if problem is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model.load_weights(path)
            return True, None
        except Exception as error:
            problem = f"it does not load ({type(error).__name__}: {error})"
    _discard(cache, path)
    return False, problem


def _read_record(folder, key):
    """The record `<key>.weights.json` as a dict, or `None` if it is
    missing, unreadable or not ours."""
    path = _record_path(folder, key)
    if not os.path.lexists(path) or _untrusted(path) is not None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    return record


def _recorded(record, part, field):
    value = (record or {}).get(part)
    return value.get(field) if isinstance(value, dict) else None


def _record_problem(key, path, record):
    """Why the converted file `path` does not match its record, or `None`."""
    name = os.path.basename(_record_path("", key))
    if record is None:
        return f"no valid record {name} says what it was made from"
    version = record.get("converter_version")
    if version != CONVERTER_VERSION:
        return (
            f"it was made by converter version {version!r}, this is "
            f"{CONVERTER_VERSION}"
        )
    pinned = WEIGHTS[key]["sha256"]
    source = _recorded(record, "source", "sha256")
    if pinned and source != pinned:
        return (
            f"it was made from a checkpoint with sha256 {source}, not the "
            f"pinned {pinned}"
        )
    expected = _recorded(record, "weights", "sha256")
    if expected is None:
        return f"{name} records no converted weights"
    actual = _sha256(path)
    if actual != expected:
        return (
            f"its sha256 is {actual}, but {name} records {expected}: it was "
            "changed or cut short"
        )
    return None


def _discard(cache, path):
    """Removes a cached file that cannot be used; `True` if it is gone."""
    if not cache.writable:
        return False
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def _rebuild(cache, key, model, convert):
    """Converts the verified cached checkpoint of `key` into `model`, or
    downloads, verifies and converts it, then caches the result."""
    entry = WEIGHTS[key]
    layout = entry["weights_layout"]
    raw = os.path.join(cache.folder, _raw_name(key, entry))
    record = _read_record(cache.folder, key) if cache.exists else None
    cached = _verified_checkpoint(cache, raw, entry, record)
    if cache.writable:
        _remove_stale_downloads(cache.folder)
    staging, keep = _staging(cache)
    try:
        fetched = None
        if cached is not None:
            digest, verified_by, unverified = cached
            try:
                convert(model, raw, layout=layout)
            except Exception as error:
                removed = _discard(cache, raw)
                if unverified is None or isinstance(
                    error, checkpoints.UnsafeCheckpointError
                ):
                    raise
                raise ValueError(
                    f"The checkpoint {raw} in the weights cache is not the "
                    f"weights {key!r}: it does not load"
                    + (", so it was removed" if removed else "")
                    + f". {error}"
                ) from error
            if unverified is not None:
                _warn_unverified(key, raw, digest, unverified, entry)
        else:
            fetched, digest = _download(key, entry, staging)
            verified_by = _convert_download(
                model, fetched, digest, entry, key, convert, record
            )
        if keep:
            _store(
                cache.folder, key, model, staging, fetched, digest, verified_by
            )
        else:
            done = "converted" if fetched is None else "downloaded, converted"
            warnings.warn(
                f"keras_eca: the weights cache {cache.folder} "
                f"{cache.problem}, so the weights {key!r} were {done} and "
                "loaded without being kept: the next load does it again. "
                + _keras_home_hint(),
                stacklevel=2,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verified_checkpoint(cache, raw, entry, record):
    """`(sha256, verified_by, unverified)` of the cached checkpoint if it
    matches the sha256 it must have, or if none can be had for it
    (`unverified` then says why, and it must load strictly); `None` if
    there is none or it cannot be used (a mismatch is removed)."""
    if not cache.exists or not os.path.lexists(raw):
        return None
    problem = _untrusted(raw)
    if problem is None:
        expected, verified_by, against = _expected_checkpoint(entry, record)
        digest = _sha256(raw)
        if expected is None:
            # None published (official ECA-Net, SA-Net) or the hub cannot
            # be reached: a file placed here by hand, used if it loads.
            return digest, verified_by, against
        if digest.startswith(expected):
            return digest, verified_by, None
        if len(expected) < len(digest):
            expected = f"a sha256 starting with {expected}"
        problem = f"its sha256 is {digest}, {against} is {expected}"
    removed = _discard(cache, raw)
    warnings.warn(
        f"keras_eca: the cached checkpoint {raw} cannot be used: {problem}. "
        + ("It was removed and " if removed else "It ")
        + "is downloaded again.",
        stacklevel=2,
    )
    return None


def _expected_checkpoint(entry, record):
    """`(sha256, verified_by, description)` the cached checkpoint must
    match (its start, for a prefix): pinned, else recorded when accepted,
    else the hub's, else the prefix in the file name. Without one:
    `(None, verified_by, why)`."""
    if entry["sha256"]:
        return entry["sha256"], "pinned", "the sha256 pinned in the table"
    recorded = _recorded(record, "source", "sha256")
    if isinstance(recorded, str) and re.fullmatch(r"[0-9a-f]{64}", recorded):
        verified_by = _recorded(record, "source", "verified_by")
        return recorded, verified_by, "the sha256 recorded when it was accepted"
    if entry["hash_source"] == "hub":
        key = f"{entry['architecture']}.{entry['tag']}"
        try:
            return _hub_sha256(key, entry), "hub", "the hub's published sha256"
        except WeightsDownloadError as error:
            return None, "unverified", (
                "the hub, whose published sha256 it must match, cannot be "
                f"reached ({error.__cause__ or error})"
            )
        except ValueError as error:
            return None, "unverified", str(error)
    if entry["hash_source"] == "prefix":
        return (
            sha256_prefix(entry),
            "prefix",
            f"the sha256 prefix in the file name {entry['file_name']}",
        )
    return None, entry["hash_source"], "no sha256 is published for it"


def _warn_unverified(key, path, digest, why, entry):
    """Warns, once per file and session, that `path` was accepted only
    because it loads strictly."""
    if (key, digest) in _WARNED:
        return
    _WARNED.add((key, digest))
    warnings.warn(
        f"The weights {key!r} in {path} could not be verified: {why}. The "
        "file loads strictly, so it was accepted; its sha256 is "
        f"{digest} (compare it with {entry['source']}, or pin it in "
        f"keras_eca.applications.weights.WEIGHTS[{key!r}]['sha256'] to "
        "verify it).",
        stacklevel=4,
    )


def _staging(cache):
    """A new private folder for a download: `(path, keep)`, inside the
    cache if it can be written (`keep`), else a temporary one."""
    if cache.writable:
        try:
            return (
                tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache.folder),
                True,
            )
        except OSError as error:
            cache.problem = f"cannot be written ({error})"
    return tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX), False


def _store(folder, key, model, staging, fetched, digest, verified_by):
    """Moves the checkpoint (if `fetched`), its conversion and their record
    into the cache; warns, without failing, when that cannot be written."""
    entry = WEIGHTS[key]
    converted = converted_path(key)
    staged = os.path.join(staging, os.path.basename(converted))
    record = {
        "key": key,
        "converter_version": CONVERTER_VERSION,
        "source": {
            "file": _raw_name(key, entry),
            "sha256": digest,
            "verified_by": verified_by,
        },
        "weights": None,
    }
    error = None
    try:
        model.save_weights(staged)
        os.chmod(staged, 0o600)
        record["weights"] = {
            "file": os.path.basename(converted),
            "sha256": _sha256(staged),
        }
    except OSError as save_error:
        error = save_error
    staged_record = _record_path(staging, key)
    try:
        descriptor = os.open(
            staged_record, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2)
        if fetched is not None:
            os.chmod(fetched, 0o600)
            os.replace(fetched, os.path.join(folder, _raw_name(key, entry)))
        if record["weights"] is not None:
            os.replace(staged, converted)
        os.replace(staged_record, _record_path(folder, key))
    except OSError as write_error:
        error = error or write_error
    if error is not None:
        warnings.warn(
            f"keras_eca: the weights {key!r} were loaded, but the cache "
            f"{folder} could not be written ({error}): the next load "
            "converts them again.",
            stacklevel=2,
        )


def _remove_stale_downloads(cache):
    """Removes staging folders a killed process left (older than a day;
    younger ones may belong to a download running in another process)."""
    now = time.time()
    for name in os.listdir(cache):
        path = os.path.join(cache, name)
        if name.startswith(_STAGING_PREFIX) and os.path.isdir(path):
            try:  # another process may be removing it too
                stale = now - os.path.getmtime(path) > _STALE_SECONDS
            except OSError:
                continue
            if stale:
                shutil.rmtree(path, ignore_errors=True)


def _download(key, entry, staging):
    """Downloads into `staging`; returns `(path, sha256)` once verified."""
    url = download_url(key)
    if url is None:
        raise manual_download_error(key, key)
    expected = entry["sha256"]
    if expected is None and entry["hash_source"] == "hub":
        expected = _hub_sha256(key, entry)
    prefix = None
    if expected is None and entry["hash_source"] == "prefix":
        prefix = sha256_prefix(entry)
    try:
        path = keras.utils.get_file(
            fname=_raw_name(key, entry),
            origin=url,
            cache_dir=staging,
            cache_subdir="",
        )
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise _download_error(key, reason) from error
    actual = _sha256(path)
    if expected is not None and actual != expected:
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} is "
            f"corrupt or was changed: its sha256 is {actual}, expected "
            f"{expected}. It was deleted; try again, or download it by hand "
            "and pass the file as `weights=`."
        )
    if prefix is not None and not actual.startswith(prefix):
        raise ValueError(
            f"The file downloaded from {url} for the weights {key!r} is "
            f"corrupt or was changed: its sha256 is {actual}, expected one "
            f"starting with {prefix} (the hex digits after the last '-' of "
            f"{entry['file_name']}, as torchvision checks). It was deleted; "
            "try again, or download it by hand and pass the file as "
            "`weights=`."
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


def _convert_download(model, path, digest, entry, key, convert, record):
    """Converts a download into `model`; returns what verified it
    (`"pinned"`, `"hub"`, `"prefix"` or `"unpublished"`)."""
    url = download_url(key)
    expected = entry["sha256"]
    if expected is None and entry["hash_source"] == "hub":
        expected = "the hub's published hash"
    elif expected is None and entry["hash_source"] == "prefix":
        expected = f"one starting with {sha256_prefix(entry)}"
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
    if entry["sha256"] is not None:
        return "pinned"
    if entry["hash_source"] != "unpublished":
        return entry["hash_source"]
    if (key, digest) not in _WARNED:
        _WARNED.add((key, digest))
        before = _recorded(record, "source", "sha256")
        changed = (
            f" It differs from the file accepted before (sha256 {before})."
            if isinstance(before, str) and before != digest
            else ""
        )
        warnings.warn(
            f"The weights {key!r} from {url} could not be verified: no "
            "sha256 is published for them. The file loads strictly, so "
            f"it was accepted; its sha256 is {digest} (pin it in "
            f"keras_eca.applications.weights.WEIGHTS[{key!r}]['sha256'] "
            f"to verify later downloads).{changed}",
            stacklevel=2,
        )
    return "unpublished"
