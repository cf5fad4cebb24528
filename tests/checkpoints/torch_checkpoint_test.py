"""load_checkpoint on files written by torch.save, in both formats."""

import argparse
import collections

import numpy as np
import pytest
import torch

from keras_eca import checkpoints
from tests.checkpoints import helpers


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_official_eca_net_checkpoint(tmp_path, fmt):
    model, optimizer = helpers.trained_model()
    state_dict = helpers.state_dict_with_extras(model)
    checkpoint = helpers.official_checkpoint(model, optimizer, state_dict)
    assert optimizer.state_dict()["state"]  # momentum buffers were saved
    path = tmp_path / "eca_resnet50_k3557.pth.tar"
    torch.save(
        checkpoint, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )

    loaded = checkpoints.load_checkpoint(path)

    helpers.assert_same_arrays(loaded, state_dict)
    assert "layer1.0.eca.conv.weight" in loaded
    assert loaded["bn1.num_batches_tracked"].shape == ()
    assert loaded["bn1.num_batches_tracked"].dtype == np.int64
    assert loaded["bn1.num_batches_tracked"] == 1
    assert loaded["extra.bf16_scalar"].dtype == np.float32
    assert loaded["extra.bf16_scalar"] == -1.375


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_sa_net_checkpoint_and_str_path(tmp_path, fmt):
    model, optimizer = helpers.trained_model()
    checkpoint = {
        "epoch": 90,
        "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
        "best_acc": torch.tensor(77.7),
        "optimizer": optimizer.state_dict(),
    }
    path = str(tmp_path / "sa_resnet50.pth.tar")
    torch.save(
        checkpoint, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )

    helpers.assert_same_arrays(
        checkpoints.load_checkpoint(path), model.state_dict()
    )


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_bare_state_dict_keeps_names(tmp_path, fmt):
    model, _ = helpers.trained_model()
    state_dict = model.state_dict()  # an OrderedDict with `_metadata`
    path = tmp_path / "timm_model.pth"
    torch.save(
        state_dict, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), state_dict)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_views_of_one_storage(tmp_path, fmt):
    base = torch.arange(40, dtype=torch.float64)
    state_dict = {
        "slice": base[3:9].view(2, 3),
        "step": base[1::7],
        "transposed": base.view(5, 8).t(),
        "expanded": base[5:6].expand(3, 4),
        "scalar": base[17],
    }
    path = tmp_path / "views.pt"
    torch.save(
        state_dict, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), state_dict)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_all_dtypes_and_parameters(tmp_path, fmt):
    state_dict = {
        "f64": torch.randn(3, dtype=torch.float64),
        "i32": torch.tensor([-(2**31), 7], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "c64": torch.tensor([1 + 2j], dtype=torch.complex64),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.randn(2, 2)),
    }
    path = tmp_path / "dtypes.bin"
    torch.save(
        state_dict, path, _use_new_zipfile_serialization=not helpers.LEGACY[fmt]
    )

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), state_dict)


def test_ema_weights_on_request(tmp_path):
    weights = {"fc.weight": torch.ones(2, 2)}
    ema = {"fc.weight": torch.full((2, 2), 0.5)}
    path = tmp_path / "timm_train.pth.tar"
    torch.save({"epoch": 3, "state_dict": weights, "state_dict_ema": ema}, path)

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), weights)
    helpers.assert_same_arrays(
        checkpoints.load_checkpoint(path, key="state_dict_ema"), ema
    )


def test_nested_model_entry(tmp_path):
    weights = collections.OrderedDict(w=torch.ones(3))
    path = tmp_path / "nested.pth"
    torch.save({"model": {"state_dict": weights}, "step": 10}, path)

    helpers.assert_same_arrays(checkpoints.load_checkpoint(path), weights)


def test_extract_state_dict_from_torch_load(tmp_path):
    model, optimizer = helpers.trained_model()
    state_dict = helpers.state_dict_with_extras(model)
    checkpoint = helpers.official_checkpoint(model, optimizer, state_dict)

    helpers.assert_same_arrays(
        checkpoints.extract_state_dict(checkpoint), state_dict
    )


def test_only_module_prefix_shared_by_all_names_is_stripped(tmp_path):
    path = tmp_path / "mixed.pth"
    torch.save({"module.a": torch.ones(1), "b": torch.zeros(1)}, path)

    assert list(checkpoints.load_checkpoint(path)) == ["module.a", "b"]


def test_format_is_told_from_content_not_extension(tmp_path):
    path = tmp_path / "really_a_zip.safetensors"
    torch.save({"w": torch.ones(2)}, path)
    legacy_path = tmp_path / "really_legacy.pth"  # no ".tar"
    torch.save(
        {"w": torch.ones(2)}, legacy_path, _use_new_zipfile_serialization=False
    )

    for p in (path, legacy_path):
        np.testing.assert_array_equal(
            checkpoints.load_checkpoint(p)["w"], [1, 1]
        )


def test_training_args_namespace_is_refused(tmp_path):
    path = tmp_path / "with_args.pth.tar"
    torch.save(
        {
            "args": argparse.Namespace(lr=0.1),
            "state_dict": {"w": torch.ones(1)},
        },
        path,
    )

    with pytest.raises(
        checkpoints.UnsafeCheckpointError, match="argparse.Namespace"
    ):
        checkpoints.load_checkpoint(path)
