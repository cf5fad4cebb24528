"""load_checkpoint on .safetensors files."""

import json

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

from keras_eca import checkpoints
from tests.checkpoints import helpers


def test_numpy_safetensors(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv1.weight": rng.standard_normal((8, 3, 3, 3)).astype("float32"),
        "bn1.num_batches_tracked": np.array(3, dtype=np.int64),
        "bn1.running_var": rng.uniform(size=8).astype("float16"),
        "mask": np.array([True, False]),
    }
    path = tmp_path / "model.safetensors"
    safetensors.numpy.save_file(tensors, path)

    loaded = checkpoints.load_checkpoint(path)

    helpers.assert_same_arrays(
        dict(sorted(loaded.items())), dict(sorted(tensors.items()))
    )
    loaded["conv1.weight"][0, 0, 0, 0] = 1.0  # arrays are writeable copies


def test_module_prefix_is_stripped(tmp_path):
    path = tmp_path / "dp.safetensors"
    safetensors.numpy.save_file({"module.fc.bias": np.ones(2, "float32")}, path)

    assert list(checkpoints.load_checkpoint(path)) == ["fc.bias"]


def test_bfloat16_becomes_float32(tmp_path):
    tensors = {
        "w": torch.randn(3, 4).bfloat16(),
        "s": torch.tensor(2.5, dtype=torch.bfloat16),
        "f": torch.arange(3, dtype=torch.float32),
    }
    path = tmp_path / "bf16.bin"  # the extension does not matter
    safetensors.torch.save_file(tensors, path)

    loaded = checkpoints.load_checkpoint(path)

    helpers.assert_same_arrays(
        dict(sorted(loaded.items())), dict(sorted(tensors.items()))
    )


@pytest.mark.parametrize("bf16", [False, True])
def test_truncated_safetensors(tmp_path, bf16):
    path = tmp_path / "cut.safetensors"
    tensor = torch.ones(64, dtype=torch.bfloat16 if bf16 else torch.float32)
    safetensors.torch.save_file({"w": tensor}, path)
    path.write_bytes(path.read_bytes()[:-16])

    with pytest.raises(ValueError, match="cut.safetensors"):
        checkpoints.load_checkpoint(path)


def test_bad_safetensors_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10).to_bytes(8, "little") + b"{not json}" + bytes(8))

    with pytest.raises(ValueError, match="not valid JSON"):
        checkpoints.load_checkpoint(path)


def test_unsupported_safetensors_dtype(tmp_path):
    path = tmp_path / "fp8.safetensors"
    safetensors.torch.save_file(
        {"w": torch.zeros(4).to(torch.float8_e4m3fn)}, path
    )

    with pytest.raises(ValueError, match=r"fp8\.safetensors.*'F8_E4M3'"):
        checkpoints.load_checkpoint(path)


def _raw_safetensors(path, header, data):
    import struct

    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


_F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    "header, data, match",
    [
        ({"w": {**_F32, "shape": [2.0]}}, bytes(8), "non-negative integers"),
        ({"w": {**_F32, "shape": [-2]}}, bytes(8), "non-negative integers"),
        ({"w": {**_F32, "shape": [True, 2]}}, bytes(8), "non-negative"),
        ({"w": {**_F32, "data_offsets": [0]}}, bytes(8), "[begin, end]"),
        ({"w": {**_F32, "data_offsets": [8, 0]}}, bytes(8), "begin <= end"),
        ({"w": {**_F32, "data_offsets": [0, 12]}}, bytes(12), "needs 8"),
        ({"a": _F32, "b": _F32}, bytes(8), "overlap or leave gaps"),
        ({"w": {**_F32, "data_offsets": [4, 12]}}, bytes(12), "leave gaps"),
        ({"w": _F32}, bytes(12), "hold 8 bytes but the file has 12"),
        ({"__metadata__": ["x"], "w": _F32}, bytes(8), "strings to strings"),
        ({"__metadata__": {"a": 1}, "w": _F32}, bytes(8), "strings"),
        ({"w": "F32"}, bytes(8), "not an object"),
    ],
)
@pytest.mark.parametrize("dtype", ["F32", "BF16"])
def test_held_to_the_library_rules(tmp_path, header, data, match, dtype):
    # The library refuses each F32 file; the one reader refuses it for
    # every dtype (bfloat16 had a laxer path of its own).
    path = _raw_safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(Exception):
        safetensors.numpy.load_file(path)
    if dtype == "BF16":
        header = json.loads(json.dumps(header))  # unshared copies
        for info in header.values():
            if isinstance(info, dict) and "dtype" in info:
                info["dtype"] = "BF16"
                info["shape"] = [n * 2 if type(n) is int and n > 0 else n
                                 for n in info["shape"]]
        path = _raw_safetensors(tmp_path / "bad_bf16.safetensors", header, data)

    with pytest.raises(ValueError, match=match.replace("[", r"\[")) as info:
        checkpoints.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_repeated_names_and_json_constants_are_refused(tmp_path):
    text = (
        b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
        b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    )
    path = tmp_path / "twice.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(4))
    with pytest.raises(ValueError, match="appears twice"):
        checkpoints.load_checkpoint(path)
    path.write_bytes(
        len(text).to_bytes(8, "little") + text.replace(b"[1]", b"[NaN]")
        + bytes(4)
    )
    with pytest.raises(ValueError, match="JSON constant NaN"):
        checkpoints.load_checkpoint(path)


def test_header_size_is_bounded(tmp_path):
    path = tmp_path / "huge_header.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{" + bytes(100))
    with pytest.raises(ValueError, match="past the end|larger than"):
        checkpoints.load_checkpoint(path)
