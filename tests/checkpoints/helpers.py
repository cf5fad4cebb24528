"""Builders shared by the checkpoint tests: torch state_dicts, zip edits."""

import zipfile

import numpy as np
import torch

LEGACY = {"zip": False, "legacy": True}


class _ResNetLike(torch.nn.Module):
    """A few ResNet / ECA / BatchNorm modules, named like torchvision's."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.layer1 = torch.nn.Sequential(torch.nn.Module())
        self.layer1[0].conv1 = torch.nn.Conv2d(8, 8, 1, bias=False)
        self.layer1[0].bn1 = torch.nn.BatchNorm2d(8)
        self.layer1[0].eca = torch.nn.Module()
        self.layer1[0].eca.conv = torch.nn.Conv1d(
            1, 1, 3, padding=1, bias=False
        )
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.layer1[0].bn1(self.layer1[0].conv1(x))
        pooled = x.mean((2, 3))
        gate = self.layer1[0].eca.conv(pooled[:, None, :])[:, 0, :].sigmoid()
        return self.fc(pooled * gate)


def trained_model():
    """A `_ResNetLike` after one SGD step, and the optimizer."""
    torch.manual_seed(0)
    model = _ResNetLike()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4
    )
    model(torch.randn(2, 3, 8, 8)).square().mean().backward()
    optimizer.step()
    return model, optimizer


def state_dict_with_extras(model):
    """`model.state_dict()` plus a strided view, float16 and bfloat16."""
    state_dict = model.state_dict()
    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    state_dict["extra.strided"] = base.t()[1:7:2, ::2]  # shares `base`
    state_dict["extra.half"] = torch.randn(4, 3).half()
    state_dict["extra.bf16"] = torch.randn(2, 5).bfloat16()
    state_dict["extra.bf16_scalar"] = torch.tensor(-1.375, dtype=torch.bfloat16)
    return state_dict


def official_checkpoint(model, optimizer, state_dict):
    """Wraps a state_dict like the official ECA-Net training script."""
    return {
        "epoch": 5,
        "arch": "se_resnet50",
        "state_dict": {"module." + k: v for k, v in state_dict.items()},
        "best_prec1": torch.tensor(77.4),
        "optimizer": optimizer.state_dict(),
    }


def expected_array(tensor):
    """What `load_checkpoint` returns for `tensor` (bfloat16 -> float32)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.detach().contiguous().numpy()


def assert_same_arrays(loaded, expected):
    """Same names, dtypes, shapes and values; arrays own C-ordered data."""
    assert list(loaded) == list(expected)
    for name, value in expected.items():
        if isinstance(value, torch.Tensor):
            value = expected_array(value)
        got = loaded[name]
        assert isinstance(got, np.ndarray), name
        assert got.dtype == value.dtype, name
        assert got.shape == value.shape, name
        assert got.flags.c_contiguous, name
        np.testing.assert_array_equal(got, value, err_msg=name)


def rewrite_zip(source, target, replace=None, drop=()):
    """Copies a zip archive, replacing members (by suffix) or dropping them."""
    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if any(info.filename.endswith(s) for s in drop):
                continue
            data = old.read(info)
            for suffix, value in replace.items():
                if info.filename.endswith(suffix):
                    data = value(data) if callable(value) else value
            new.writestr(info.filename, data)
