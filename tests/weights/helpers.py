"""Checkpoint writers and output checks shared by the weights tests."""

import functools

import numpy as np

import keras
from keras_eca import applications
from keras_eca import checkpoints
from tests import reference_fixtures as fixture_utils

# Official training-script wrappings (BangguWu/ECANet main.py and
# wofmanaf/SA-Net main.py save_checkpoint).
OFFICIAL_FIXTURES = (
    "official_eca_mobilenet_v2",
    "official_eca_resnet18",
    "official_eca_resnet50",
    "official_sa_resnet50",
)


@functools.lru_cache(maxsize=None)
def fixture(name):
    """`(architecture, metadata, arrays, state_dict)`, read once."""
    metadata, arrays, state_dict = fixture_utils.load_fixture(name)
    return fixture_utils.MODEL_FIXTURES[name], metadata, arrays, state_dict


def official_checkpoint(name, state_dict, optimizer_state):
    """The dict the official ECA-Net / SA-Net `main.py` saves."""
    wrapped = {
        "epoch": 100,
        "arch": "se_resnet50" if "eca" in name else "sa_resnet50",
        "state_dict": {"module." + k: v for k, v in state_dict.items()},
        "best_prec1" if "eca" in name else "best_acc": np.array(
            77.42, dtype=np.float32
        ),
        "optimizer": {
            "state": optimizer_state,
            "param_groups": [
                {
                    "lr": 0.0001,
                    "momentum": 0.9,
                    "dampening": 0,
                    "weight_decay": 0.0001,
                    "nesterov": False,
                    "params": list(range(len(optimizer_state))),
                }
            ],
        },
    }
    if "eca" not in name:
        del wrapped["arch"]
    return wrapped


def _momentum_buffers(state_dict, limit=4):
    """A few SGD momentum buffers (tensors the loader must skip)."""
    trainable = [
        value
        for key, value in state_dict.items()
        if not key.endswith(("running_mean", "running_var", "tracked"))
    ]
    return {
        i: {"momentum_buffer": np.full_like(value, 0.5)}
        for i, value in enumerate(trainable[:limit])
    }


def write_checkpoint(fixture_name, writer, path):
    """Writes the fixture's state_dict with `writer`; returns the path.

    Writers: `"torch"` (`torch.save`, zip), `"torch_legacy"` (`torch.save`
    legacy format), `"own"` (`save_state_dict_pth`, zip), `"own_legacy"`
    (`save_state_dict_pth(legacy=True)`), `"safetensors"`. The legacy
    writers wrap official fixtures like the official training scripts.
    """
    _, _, _, state_dict = fixture(fixture_name)
    official = fixture_name in OFFICIAL_FIXTURES
    legacy = writer.endswith("legacy")
    if writer == "safetensors":
        from safetensors.numpy import save_file

        save_file(dict(state_dict), str(path))
        return path
    content = state_dict
    if legacy and official:
        content = official_checkpoint(
            fixture_name, state_dict, _momentum_buffers(state_dict)
        )
    if writer.startswith("torch"):
        import torch

        def to_torch(value):
            if isinstance(value, np.ndarray):
                return torch.from_numpy(value.copy())
            if isinstance(value, dict):
                return {k: to_torch(v) for k, v in value.items()}
            if isinstance(value, list):
                return [to_torch(v) for v in value]
            return value

        torch.save(
            to_torch(content),
            str(path),
            _use_new_zipfile_serialization=not legacy,
        )
    else:
        checkpoints.save_state_dict_pth(content, path, legacy=legacy)
    return path


def probe_outputs(model, architecture):
    """`{array name: output tensor}` as the fixtures store them."""
    row = applications.model_config(architecture)
    outputs = {"logits": model.output}
    outputs["features"] = model.get_layer("avg_pool").output
    if row["family"] == "resnet":
        for i, level in enumerate(("P2", "P3", "P4", "P5"), start=1):
            layer = model.get_layer(row["feature_layers"][level])
            outputs[f"stage_outputs_{i}"] = layer.output
    return keras.Model(model.input, outputs)


def max_differences(model, fixture_name):
    """`{array: max|diff| / max|ref|}` of `model` against the fixture."""
    architecture, _, arrays, _ = fixture(fixture_name)
    probe = probe_outputs(model, architecture)
    x = fixture_utils.nchw_to_nhwc(arrays["input_nchw"])
    results = probe(x, training=False)
    differences = {}
    for key, value in results.items():
        value = keras.ops.convert_to_numpy(value)
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        assert value.shape == arrays[key].shape, key
        differences[key] = fixture_utils.max_relative_difference(
            value, arrays[key]
        )
    return differences


def logits_difference(model, fixture_name, key="logits"):
    """max|diff| / max|ref| of the model's output against `key`."""
    _, _, arrays, _ = fixture(fixture_name)
    x = fixture_utils.nchw_to_nhwc(arrays["input_nchw"])
    value = keras.ops.convert_to_numpy(model(x, training=False))
    return fixture_utils.max_relative_difference(value, arrays[key])


def torch_state_dict(model, layout="official"):
    """The PyTorch state_dict (NumPy arrays) that `keras_eca.conversion`
    would load into `model` as its current weights: the converter's own
    names, each Keras value put back into PyTorch's shape by inverting the
    converter's tensor function (a permutation / reshape) on an index
    array. BatchNorms get `num_batches_tracked`, as PyTorch saves them."""
    from keras_eca.conversion import naming
    from keras_eca.conversion import tensors

    prefixes = naming.torch_prefixes(model, layout)
    state_dict = {}
    for layer in model.layers:
        prefix = prefixes.get(layer.name)
        if prefix is None:
            continue
        for entry in tensors.layer_tensors(layer, prefix):
            size = int(np.prod(entry.torch_shape))
            where = entry.convert(np.arange(size).reshape(entry.torch_shape))
            value = np.empty(size, dtype="float32")
            value[np.asarray(where).ravel()] = keras.ops.convert_to_numpy(
                entry.variable
            ).ravel()
            state_dict[entry.key] = value.reshape(entry.torch_shape)
        if isinstance(layer, keras.layers.BatchNormalization):
            state_dict[f"{prefix}.num_batches_tracked"] = np.array(
                1000, dtype=np.int64
            )
    return state_dict


def randomized(model, seed=0):
    """Gives every weight of `model` random values a trained network could
    hold (positive BatchNorm variances), so that a wrong mapping shows."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * 0.1
        variable.assign(value.astype(variable.dtype))
    return model
