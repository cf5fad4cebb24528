"""The weights cache: verified, self-healing, private (offline: the
`file://` mirror of `tests/weights/mirror.py` stands in for the hosts)."""

import errno
import json
import os
import stat
import tempfile
import urllib.request
import warnings

import pytest

import keras
from keras_eca.applications import weights
from keras_eca.applications import weights_cache
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

URL_KEY = "eca_resnet18.url_in1k"
RAW = {
    "url": "eca_resnet18.url_in1k.pth.tar",
    "gdrive": "eca_resnet18.drive_in1k.pth.tar",
    "hub": "eca_resnet18.mirror_in1k.safetensors",
}
TAGS = {"url": "url_in1k", "gdrive": "drive_in1k", "hub": "mirror_in1k"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
OTHER_UID = 12345


def serve(env, files, host):
    """Serves the fixture from `host`; returns the mirror's file."""
    if host == "hub":
        return serve_hub(env, files.safetensors.read_bytes())
    if host == "gdrive":
        return serve_gdrive(env, files.pth.read_bytes())
    return serve_url(env, files.pth.read_bytes())


def record(env, key=URL_KEY):
    return json.loads((env.cache / f"{key}.weights.json").read_text())


def flip_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def cache_warnings(caught, text):
    return [w for w in caught if text in str(w.message)]


def planted_weights(path):
    """Random-init weights of the right model, saved where an attacker
    would put them."""
    model = build(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(path)
    return path


# --- Verified ---------------------------------------------------------------


def test_record_describes_the_converted_file(env, files):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    assert record(env) == {
        "key": URL_KEY,
        "converter_version": weights_cache.CONVERTER_VERSION,
        "source": {
            "file": f"{URL_KEY}.pth.tar",
            "sha256": sha256(files.pth),
            "verified_by": "pinned",
        },
        "weights": {
            "file": f"{URL_KEY}.weights.h5",
            "sha256": sha256(env.cache / f"{URL_KEY}.weights.h5"),
        },
    }
    # A private folder, created 0700; its files 0600.
    assert stat.S_IMODE(os.lstat(env.cache).st_mode) == 0o700
    for name in cached(env):
        assert stat.S_IMODE(os.lstat(env.cache / name).st_mode) == 0o600


@pytest.mark.parametrize(
    "damage", ["truncated", "empty", "garbage", "flipped", "unloadable"]
)
def test_bad_converted_file_is_rebuilt_offline(env, files, damage, capsys):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    converted = env.cache / f"{URL_KEY}.weights.h5"
    data = converted.read_bytes()
    if damage == "truncated":
        converted.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        converted.write_bytes(b"")
    elif damage == "garbage":
        converted.write_bytes(os.urandom(4096))
    elif damage == "flipped":
        flip_byte(converted, len(data) // 2)
    else:  # Recorded as it is, but not HDF5: it does not load.
        converted.write_bytes(b"not HDF5")
        kept = record(env)
        kept["weights"]["sha256"] = sha256(converted)
        (env.cache / f"{URL_KEY}.weights.json").write_text(json.dumps(kept))
    forbid_network(env)
    capsys.readouterr()
    with pytest.warns(UserWarning, match=f"cached weights {converted}"):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert "converting" in capsys.readouterr().out
    # Rebuilt from the verified checkpoint, and recorded again.
    assert sha256(converted) == record(env)["weights"]["sha256"]
    model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert "converting" not in capsys.readouterr().out


def test_bad_converted_file_that_cannot_be_rebuilt_is_named(env, files):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    converted = env.cache / f"{URL_KEY}.weights.h5"
    converted.write_bytes(b"\0" * 100)
    os.remove(env.cache / f"{URL_KEY}.pth.tar")
    forbid_network(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError) as info:
            build("url_in1k")
    message = str(info.value)
    assert f"The cached weights {converted} could not be used" in message
    assert "Cannot download" in message
    assert not converted.exists()


@pytest.mark.parametrize("mismatch", ["converter", "no record", "pin"])
def test_record_mismatch_means_rebuild(env, files, mismatch, capsys):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    if mismatch == "converter":
        env.mp.setattr(
            weights_cache,
            "CONVERTER_VERSION",
            weights_cache.CONVERTER_VERSION + 1,
        )
        text = "converter version"
    elif mismatch == "no record":
        os.remove(env.cache / f"{URL_KEY}.weights.json")
        text = "no valid record"
    else:
        # The table pins another checkpoint (a new release): the old
        # conversion and the old checkpoint go, the new one is downloaded.
        other = helpers.write_checkpoint(
            SMALL, "own", env.mirror / "other.pth.tar"
        )
        os.replace(other, env.mirror / "eca_resnet18_k3577.pth.tar")
        weights.WEIGHTS[URL_KEY]["sha256"] = sha256(
            env.mirror / "eca_resnet18_k3577.pth.tar"
        )
        text = "not the pinned"
    capsys.readouterr()
    with pytest.warns(UserWarning, match=text):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert "converting" in capsys.readouterr().out
    assert record(env)["converter_version"] == weights_cache.CONVERTER_VERSION
    assert record(env)["source"]["sha256"] == sha256(
        env.cache / f"{URL_KEY}.pth.tar"
    )


@pytest.mark.parametrize("host", ["url", "gdrive", "hub"])
def test_changed_cached_checkpoint_is_not_converted(env, files, host):
    serve(env, files, host)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        build(TAGS[host])
    key = f"eca_resnet18.{TAGS[host]}"
    raw = env.cache / RAW[host]
    good = sha256(raw)
    os.remove(env.cache / f"{key}.weights.h5")
    flip_byte(raw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(TAGS[host])
    assert cache_warnings(caught, f"cached checkpoint {raw} cannot be used")
    assert helpers.logits_difference(model, SMALL) <= TOL
    # Downloaded again: the flipped bit did not become the weights.
    assert sha256(raw) == good == record(env, key)["source"]["sha256"]


def test_changed_cached_checkpoint_offline_is_refused(env, files):
    mirror_file = serve(env, files, "gdrive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        build("drive_in1k")
    raw = env.cache / RAW["gdrive"]
    os.remove(env.cache / "eca_resnet18.drive_in1k.weights.h5")
    flip_byte(raw)
    mirror_file.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="Cannot download"):
            build("drive_in1k")
    assert not raw.exists()


def test_hub_checkpoint_without_record_is_checked_against_the_hub(env, files):
    serve(env, files, "hub")
    build("mirror_in1k")
    os.remove(env.cache / "eca_resnet18.mirror_in1k.weights.h5")
    os.remove(env.cache / "eca_resnet18.mirror_in1k.weights.json")
    asked = []
    real = urllib.request.urlopen
    env.mp.setattr(
        urllib.request,
        "urlopen",
        lambda url, **kw: asked.append(url) or real(url, **kw),
    )
    env.mp.setattr(
        keras.utils,
        "get_file",
        lambda *a, **k: pytest.fail("the verified file is downloaded again"),
    )
    model = build("mirror_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert [u for u in asked if "/api/models/" in u]
    assert record(env, "eca_resnet18.mirror_in1k")["source"][
        "verified_by"
    ] == "hub"


# --- Private ----------------------------------------------------------------


def test_keras_home_that_is_a_file_never_uses_a_shared_folder(
    env, files, tmp_path
):
    shared = tmp_path / "shared_tmp"
    planted = planted_weights(
        shared / ".keras" / "keras_eca" / f"{URL_KEY}.weights.h5"
    )
    before = sorted(p.name for p in shared.rglob("*"))
    env.mp.setattr(tempfile, "tempdir", str(shared))
    env.home.parent.mkdir(parents=True, exist_ok=True)
    env.home.write_text("not a folder")
    serve_url(env, files.pth.read_bytes())
    with pytest.warns(UserWarning, match="cannot be created.*KERAS_HOME"):
        model = build("url_in1k")
    # The conversion of the real checkpoint, not the planted weights.
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert sorted(p.name for p in shared.rglob("*")) == before
    assert planted.exists()
    with pytest.raises(ValueError, match="cannot be created.*KERAS_HOME"):
        weights.cache_dir()


def test_unwritable_keras_home_keeps_nothing(env, files):
    real = os.makedirs

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(env.home)):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, *args, **kwargs)

    env.mp.setattr(os, "makedirs", refuse)
    serve_url(env, files.pth.read_bytes())
    with pytest.warns(UserWarning, match="without being kept"):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert not env.home.exists()


def _other_owner(folder):
    if not IS_ROOT:
        pytest.skip("chown to another user needs root")
    os.chown(folder, OTHER_UID, OTHER_UID)


@pytest.mark.parametrize(
    "problem, match",
    [
        ("other owner", "owned by another user"),
        ("symlink", "symbolic link"),
        ("file", "not a folder"),
    ],
)
def test_cache_folder_that_is_not_private_is_refused(
    env, files, tmp_path, problem, match
):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")  # A complete cache...
    if problem == "symlink":
        os.replace(env.cache, tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", env.cache)
    elif problem == "file":
        os.replace(env.cache, tmp_path / "elsewhere")
        env.cache.write_text("")
    else:
        _other_owner(env.cache)
    forbid_network(env)
    with pytest.raises(ValueError) as info:
        build("url_in1k")  # ...that is not trusted.
    message = str(info.value)
    assert f"The weights cache {env.cache} is not a private folder" in message
    assert match in message and "KERAS_HOME" in message
    with pytest.raises(ValueError, match=match):
        weights.cache_dir()


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o775])
def test_own_cache_folder_writable_by_others_is_made_private(
    env, files, mode
):
    # As earlier versions made it under umask 002.
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    env.cache.chmod(mode)
    forbid_network(env)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build("url_in1k")
    assert cache_warnings(caught, "is now private (0700)")
    assert stat.S_IMODE(os.lstat(env.cache).st_mode) == 0o700
    assert helpers.logits_difference(model, SMALL) <= TOL


def test_cached_files_of_another_user_are_rebuilt(env, files):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    for name in cached(env):
        _other_owner(env.cache / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build("url_in1k")
    assert cache_warnings(caught, "owned by another user")
    assert helpers.logits_difference(model, SMALL) <= TOL
    for name in cached(env):
        assert os.lstat(env.cache / name).st_uid == os.getuid()


# --- Read-only --------------------------------------------------------------


@pytest.fixture
def read_only(env):
    """Makes the cache read-only: modes 0555 / 0444 and, as root (who may
    write anyway), `os.access` answering as for another user."""

    def make():
        for path in env.cache.iterdir():
            path.chmod(0o444)
        env.cache.chmod(0o555)
        real = os.access

        def access(path, mode, **kwargs):
            inside = os.path.realpath(path).startswith(str(env.cache))
            if inside and mode & os.W_OK:
                return False
            return real(path, mode, **kwargs)

        env.mp.setattr(os, "access", access)
        return snapshot()

    def snapshot():
        return {
            name: (os.stat(path).st_mtime_ns, sha256(path))
            for name in cached(env)
            for path in [env.cache / name]
        }

    make.snapshot = snapshot
    yield make
    env.cache.chmod(0o700)


def test_read_only_cache_is_read(env, files, read_only):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    before = read_only()
    forbid_network(env)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert read_only.snapshot() == before


def test_read_only_cache_converts_without_writing(env, files, read_only):
    serve_url(env, files.pth.read_bytes())
    build("url_in1k")
    os.remove(env.cache / f"{URL_KEY}.weights.h5")
    before = read_only()
    forbid_network(env)
    with pytest.warns(UserWarning, match="is read-only.*without being kept"):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert read_only.snapshot() == before


def test_empty_read_only_cache_downloads_to_a_private_folder(
    env, files, read_only, tmp_path
):
    env.cache.mkdir(parents=True, mode=0o700)
    read_only()
    shared = tmp_path / "tmp"
    shared.mkdir()
    env.mp.setattr(tempfile, "tempdir", str(shared))
    made = []
    real = tempfile.mkdtemp
    env.mp.setattr(
        tempfile,
        "mkdtemp",
        lambda *a, **k: made.append(real(*a, **k)) or made[-1],
    )
    serve_url(env, files.pth.read_bytes())
    with pytest.warns(UserWarning, match="downloaded, converted and loaded"):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert cached(env) == []
    assert made and all(os.path.dirname(m) == str(shared) for m in made)
    assert list(shared.iterdir()) == []


# --- Full disk, atomic writes -------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_still_returns_the_model(env, files, capsys):
    serve_gdrive(env, files.pth.read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "save_weights", _no_space)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = build("drive_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    full = cache_warnings(caught, "could not be written")
    assert len(full) == 1
    assert str(env.cache) in str(full[0].message)
    assert os.strerror(errno.ENOSPC) in str(full[0].message)
    # The verified checkpoint and its record stay; nothing half-written.
    assert cached(env) == [
        "eca_resnet18.drive_in1k.pth.tar",
        "eca_resnet18.drive_in1k.weights.json",
    ]
    assert record(env, "eca_resnet18.drive_in1k")["weights"] is None
    # With space again, the next load converts offline and caches.
    forbid_network(env)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build("drive_in1k")
    assert not cache_warnings(caught, "verified")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert "converting" in capsys.readouterr().out
    assert "eca_resnet18.drive_in1k.weights.h5" in cached(env)


def test_failed_record_write_leaves_nothing(env, files):
    serve_url(env, files.pth.read_bytes())
    env.mp.setattr(weights_cache.json, "dump", _no_space)
    with pytest.warns(UserWarning, match="could not be written"):
        model = build("url_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert cached(env) == []


# --- Warnings and mirrors -----------------------------------------------------


def test_unverified_warning_is_per_file(env, files, tmp_path):
    serve_gdrive(env, files.pth.read_bytes())
    first = sha256(files.pth)
    with pytest.warns(UserWarning, match=f"could not be verified.*{first}"):
        build("drive_in1k")
    # Another file under the same key (the same weights, saved otherwise).
    other = helpers.write_checkpoint(SMALL, "own", tmp_path / "other.pth.tar")
    second = sha256(other)
    assert second != first
    for name in ("pth.tar", "weights.h5"):
        os.remove(env.cache / f"eca_resnet18.drive_in1k.{name}")
    serve_gdrive(env, other.read_bytes())
    with pytest.warns(UserWarning) as caught:
        build("drive_in1k")
    message = " ".join(str(w.message) for w in caught)
    assert f"its sha256 is {second}" in message
    assert f"differs from the file accepted before (sha256 {first})" in message
    # The same file again: warned about already.
    for name in cached(env):
        os.remove(env.cache / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build("drive_in1k")
    assert not cache_warnings(caught, "could not be verified")


def test_pinned_sha256_takes_precedence_over_the_mirror(env, files):
    data = files.safetensors.read_bytes()
    serve_hub(env, data, oid="f" * 64)  # The mirror publishes a wrong hash.
    key = "eca_resnet18.mirror_in1k"
    weights.WEIGHTS[key]["sha256"] = sha256(files.safetensors)

    real = urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        if "/api/models/" in str(getattr(url, "full_url", url)):
            raise AssertionError("a pinned sha256 needs no published one")
        return real(url, *args, **kwargs)

    env.mp.setattr(urllib.request, "urlopen", urlopen)
    model = build("mirror_in1k")
    assert helpers.logits_difference(model, SMALL) <= TOL
    assert record(env, key)["source"]["verified_by"] == "pinned"


def test_wrong_pin_is_not_overridden_by_the_mirror(env, files):
    serve_hub(env, files.safetensors.read_bytes())  # The right hash.
    weights.WEIGHTS["eca_resnet18.mirror_in1k"]["sha256"] = "e" * 64
    with pytest.raises(ValueError, match=f"expected {'e' * 64}"):
        build("mirror_in1k")
    assert cached(env) == []

