"""save_state_dict_pth: files that torch.load(weights_only=True) reads."""

import collections
import zipfile

import ml_dtypes
import numpy as np
import pytest
import torch

from keras_eca import checkpoints
from tests.checkpoints import helpers


def _state_dict():
    rng = np.random.default_rng(1)
    return collections.OrderedDict(
        {
            "conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype("float32"),
            "bn1.num_batches_tracked": np.array(7, dtype=np.int64),
            "bn1.running_mean": rng.standard_normal(4),  # float64
            "half": rng.standard_normal(5).astype("float16"),
            "bf16": np.array([1.5, -0.0078125, 3e38], dtype=ml_dtypes.bfloat16),
            "strided": np.arange(30, dtype=np.int32).reshape(5, 6)[::2, ::-3],
            "big_endian": np.arange(4, dtype=">f4"),
            "i16": np.array([-2, 2], dtype=np.int16),
            "i8": np.array([-1], dtype=np.int8),
            "u8": np.array([255], dtype=np.uint8),
            "bool": np.array([True, False]),
            "c128": np.array([1 - 1j]),
            "empty": np.zeros((0, 2), dtype=np.float32),
            "numpy_scalar": np.float32(0.25),
        }
    )


def _as_numpy(tensor):
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_torch_load_reads_it_exactly(tmp_path, fmt):
    state_dict = _state_dict()
    path = tmp_path / "written.pth"
    checkpoints.save_state_dict_pth(
        state_dict, path, legacy=helpers.LEGACY[fmt]
    )

    loaded = torch.load(path, weights_only=True)

    assert isinstance(loaded, collections.OrderedDict)
    assert list(loaded) == list(state_dict)
    for name, value in state_dict.items():
        value = np.asarray(value)
        got = _as_numpy(loaded[name])
        assert got.dtype == value.dtype.newbyteorder("="), name
        assert got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_round_trip_through_load_checkpoint(tmp_path, fmt):
    state_dict = _state_dict()
    path = tmp_path / "written.pth.tar"
    checkpoint = {
        "epoch": 5,
        "arch": "eca_resnet50",
        "state_dict": {"module." + k: v for k, v in state_dict.items()},
        "best_prec1": np.array(77.4, dtype=np.float32),
        "history": [1, -(2**70), 0.5, None, True, "x", ()],
    }
    checkpoints.save_state_dict_pth(
        checkpoint, path, legacy=helpers.LEGACY[fmt]
    )

    loaded = checkpoints.load_checkpoint(path)

    expected = {
        name: np.asarray(value).astype(
            np.float32
            if np.asarray(value).dtype == ml_dtypes.bfloat16
            else np.asarray(value).dtype.newbyteorder("=")
        )
        for name, value in state_dict.items()
    }
    helpers.assert_same_arrays(loaded, expected)
    other = torch.load(path, weights_only=True)
    assert other["history"] == [1, -(2**70), 0.5, None, True, "x", ()]
    assert other["epoch"] == 5 and other["arch"] == "eca_resnet50"


def test_zip_records_are_64_byte_aligned(tmp_path):
    path = tmp_path / "aligned.pth"
    checkpoints.save_state_dict_pth(_state_dict(), path)

    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert {info.filename.split("/")[0] for info in infos} == {"archive"}
    for info in infos:
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        assert start % 64 == 0, info.filename
    # mmap loading needs the alignment.
    loaded = torch.load(path, weights_only=True, mmap=True)
    np.testing.assert_array_equal(loaded["u8"].numpy(), [255])


def test_unsupported_values(tmp_path):
    path = tmp_path / "bad.pth"
    with pytest.raises(ValueError, match=r"state_dict\['w'\].*uint16"):
        checkpoints.save_state_dict_pth({"w": np.zeros(2, np.uint16)}, path)
    with pytest.raises(TypeError, match=r"state_dict\['s'\].*set"):
        checkpoints.save_state_dict_pth({"s": {1, 2}}, path)
    with pytest.raises(TypeError, match="keys must be str or int.*1.5"):
        checkpoints.save_state_dict_pth({1.5: np.zeros(1)}, path)
    with pytest.raises(TypeError, match="`state_dict` must be a mapping.*list"):
        checkpoints.save_state_dict_pth([np.zeros(1)], path)
    with pytest.raises(TypeError, match="`path` must be a str.*int"):
        checkpoints.save_state_dict_pth({"w": np.zeros(1)}, 3)
    looped = {"w": np.zeros(1)}
    looped["self"] = looped
    with pytest.raises(ValueError, match="contains itself"):
        checkpoints.save_state_dict_pth(looped, path)
