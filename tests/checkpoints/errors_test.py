"""Clear errors for corrupt, truncated, unknown and tensor-less files."""

import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from keras_eca import checkpoints
from tests.checkpoints import helpers


def _saved(tmp_path, obj, fmt="zip", name="model.pth"):
    path = tmp_path / name
    torch.save(
        obj, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )
    return path


def _weights():
    return {
        "conv.weight": torch.randn(8, 4),
        "bn.num_batches_tracked": torch.tensor(3),
    }


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "broken.pth"
    helpers.rewrite_zip(_saved(tmp_path, _weights()), path, drop=["/data.pkl"])

    with pytest.raises(
        ValueError, match=r"broken\.pth.*no '<prefix>/data\.pkl'"
    ):
        checkpoints.load_checkpoint(path)


def test_zip_storage_shorter_than_declared(tmp_path):
    path = tmp_path / "short.pth"
    helpers.rewrite_zip(
        _saved(tmp_path, _weights()),
        path,
        replace={"/data/0": lambda d: d[:-4]},
    )

    with pytest.raises(
        ValueError, match=r"short\.pth.*holds 124 bytes.*128 bytes"
    ):
        checkpoints.load_checkpoint(path)


def test_zip_storage_record_missing(tmp_path):
    path = tmp_path / "missing.pth"
    helpers.rewrite_zip(_saved(tmp_path, _weights()), path, drop=["/data/1"])

    with pytest.raises(
        ValueError, match=r"missing\.pth.*no record '.*/data/1'"
    ):
        checkpoints.load_checkpoint(path)


def test_zip_truncated_pickle(tmp_path):
    path = tmp_path / "cut_pickle.pth"
    helpers.rewrite_zip(
        _saved(tmp_path, _weights()),
        path,
        replace={"/data.pkl": lambda d: d[:40]},
    )

    with pytest.raises(
        ValueError, match=r"cut_pickle\.pth.*truncated or corrupt"
    ):
        checkpoints.load_checkpoint(path)


def test_truncated_zip_archive(tmp_path):
    path = tmp_path / "cut.pth"
    data = _saved(tmp_path, _weights()).read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ValueError, match=r"cut\.pth.*zip"):
        checkpoints.load_checkpoint(path)


def test_big_endian_zip(tmp_path):
    path = tmp_path / "big.pth"
    swap = {"/byteorder": b"big"}
    for key, dtype in enumerate(["<f4", "<i8"]):
        swap[f"/data/{key}"] = lambda d, t=dtype: (
            np.frombuffer(d, t).byteswap().tobytes()
        )
    weights = _weights()
    helpers.rewrite_zip(_saved(tmp_path, weights), path, replace=swap)

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), weights)


def test_legacy_storage_truncated(tmp_path):
    path = tmp_path / "cut.pth.tar"
    data = _saved(tmp_path, _weights(), "legacy").read_bytes()
    path.write_bytes(data[:-5])

    with pytest.raises(ValueError, match=r"cut\.pth\.tar.*truncated"):
        checkpoints.load_checkpoint(path)


def test_legacy_pickle_truncated(tmp_path):
    path = tmp_path / "cut.pth.tar"
    data = _saved(tmp_path, _weights(), "legacy").read_bytes()
    path.write_bytes(data[:200])

    with pytest.raises(
        ValueError, match=r"cut\.pth\.tar.*truncated or corrupt"
    ):
        checkpoints.load_checkpoint(path)


def test_legacy_storage_size_mismatch(tmp_path):
    path = tmp_path / "mismatch.pth"
    checkpoints.save_state_dict_pth(
        {"w": np.zeros(3, "float32")}, path, legacy=True
    )
    data = path.read_bytes()
    header = struct.pack("<q", 3) + bytes(12)
    assert data.endswith(header)
    path.write_bytes(data[: -len(header)] + struct.pack("<q", 2) + bytes(12))

    with pytest.raises(
        ValueError, match=r"mismatch\.pth.*holds 2 elements.*declares 3"
    ):
        checkpoints.load_checkpoint(path)


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01garbage" * 20,
        b"just some text\n",
        pickle.dumps([1, 2, 3], protocol=2),
    ],
)
def test_unknown_format(tmp_path, content):
    path = tmp_path / "mystery.pth"
    path.write_bytes(content)

    with pytest.raises(ValueError, match=r"mystery\.pth.*neither a zip-format"):
        checkpoints.load_checkpoint(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")

    with pytest.raises(ValueError, match=r"empty\.pth.*empty"):
        checkpoints.load_checkpoint(path)


def test_old_tar_format(tmp_path):
    path = tmp_path / "torch03.pth"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("pickle")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))

    with pytest.raises(ValueError, match=r"torch03\.pth.*torch < 0\.4"):
        checkpoints.load_checkpoint(path)


def test_torchscript_archive(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)

    with pytest.raises(ValueError, match=r"scripted\.pt.*TorchScript"):
        checkpoints.load_checkpoint(path)


def test_pickled_whole_model_is_refused(tmp_path):
    path = _saved(tmp_path, {"model": torch.nn.Linear(2, 2)}, name="whole.pth")

    with pytest.raises(checkpoints.UnsafeCheckpointError, match=r"torch\.nn\."):
        checkpoints.load_checkpoint(path)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_checkpoint_without_tensors(tmp_path, fmt):
    path = _saved(
        tmp_path, {"epoch": 5, "arch": "eca_resnet50"}, fmt, "meta.pth"
    )
    with pytest.raises(ValueError, match=r"meta\.pth.*contains no tensors"):
        checkpoints.load_checkpoint(path)

    path = _saved(tmp_path, {"epoch": 5, "state_dict": {}}, fmt, "empty_sd.pth")
    with pytest.raises(ValueError, match=r"empty_sd\.pth.*contains no tensors"):
        checkpoints.load_checkpoint(path)


def test_single_tensor_and_list(tmp_path):
    path = _saved(tmp_path, torch.ones(2), name="tensor.pth")
    with pytest.raises(ValueError, match=r"tensor\.pth.*holds a single tensor"):
        checkpoints.load_checkpoint(path)

    path = _saved(tmp_path, [torch.ones(2)], name="list.pth")
    with pytest.raises(ValueError, match=r"list\.pth.*holds a list"):
        checkpoints.load_checkpoint(path)


def test_state_dict_under_unknown_key(tmp_path):
    path = _saved(
        tmp_path,
        {"weights": _weights(), "best_prec1": torch.tensor(70.0)},
        name="custom.pth",
    )
    with pytest.raises(
        ValueError, match=r"No state_dict found in .*custom\.pth.*key="
    ):
        checkpoints.load_checkpoint(path)

    loaded = checkpoints.load_checkpoint(path, key="weights")
    assert sorted(loaded) == ["bn.num_batches_tracked", "conv.weight"]

    with pytest.raises(
        ValueError, match=r"`key='nope'` is not in .*custom\.pth"
    ):
        checkpoints.load_checkpoint(path, key="nope")
    with pytest.raises(
        ValueError, match=r"`key='best_prec1'` .* holds a tensor, not"
    ):
        checkpoints.load_checkpoint(path, key="best_prec1")


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        checkpoints.load_checkpoint(tmp_path / "nowhere.pth")
    with pytest.raises(TypeError, match="`path` must be a str.*list"):
        checkpoints.load_checkpoint(["model.pth"])
    with pytest.raises(
        TypeError, match="`checkpoint` must be a mapping.*tuple"
    ):
        checkpoints.extract_state_dict((1, 2))


def test_self_referencing_containers(tmp_path):
    # A list holding itself 200 times: no checkpoint is recursive.
    looped = b"\x80\x02}X\x01\x00\x00\x00a]q\x00(" + b"h\x00" * 200 + b"es."
    path = tmp_path / "loop.pth"
    helpers.rewrite_zip(
        _saved(tmp_path, _weights()), path, replace={"/data.pkl": looped}
    )

    with pytest.raises(
        ValueError, match=r"loop\.pth.*a recursive structure"
    ):
        checkpoints.load_checkpoint(path)
