"""load_checkpoint on .safetensors files."""

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
