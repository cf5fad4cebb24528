"""Reference fixtures of tests/data/reference: weights rule "init v2", I/O.

See tests/data/reference/README.md for the rule and the fixture format.
"""

import json
import math
import pathlib
import zlib

import numpy as np

TESTS_DIR = pathlib.Path(__file__).resolve().parent
REFERENCE_DIR = TESTS_DIR / "data" / "reference"

# fixture -> registry key of the architecture it reproduces.
MODEL_FIXTURES = {
    "official_eca_mobilenet_v2": "eca_mobilenet_v2",
    "official_eca_resnet18": "eca_resnet18",
    "official_eca_resnet50": "eca_resnet50",
    "official_sa_resnet50": "sa_resnet50",
    "timm_ecaresnet26t": "ecaresnet26t",
    "timm_ecaresnet50d": "ecaresnet50d",
    "timm_resnet50": "timm_resnet50",
    "timm_seresnet50": "seresnet50",
}

# Relative tolerance of the README: 1e-4 * max|reference|.
RELATIVE_TOLERANCE = 1e-4


def init_value(name, shape):
    """The value rule "init v2" gives the state_dict entry `name`."""
    shape = tuple(int(s) for s in shape)
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    if name.endswith("running_var"):
        value = rng.uniform(0.5, 1.5, size=shape)
    elif name.endswith("running_mean"):
        value = rng.standard_normal(shape) * 0.1
    elif len(shape) >= 2:
        value = rng.standard_normal(shape) * math.sqrt(
            1.0 / math.prod(shape[1:])
        )
    elif name.endswith("weight"):
        value = rng.uniform(0.5, 1.5, size=shape)
    else:
        value = rng.standard_normal(shape) * 0.1
    return np.asarray(value, dtype=np.float64).astype(np.float32)


def load_metadata(fixture):
    with open(REFERENCE_DIR / f"{fixture}.json") as f:
        return json.load(f)


def load_arrays(fixture):
    with np.load(REFERENCE_DIR / f"{fixture}.npz") as data:
        return {key: data[key] for key in data.files}


def state_dict_entries(metadata):
    """`[(key, shape)]` of the fixture's state_dict, in PyTorch order."""
    return [(key, tuple(shape)) for key, shape, _ in metadata["state_dict"]]


def fixture_state_dict(metadata):
    """The exact state_dict that produced the fixture."""
    return {
        key: init_value(key, shape)
        for key, shape in state_dict_entries(metadata)
    }


def nchw_to_nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def max_relative_difference(actual, reference):
    """`max|actual - reference| / max|reference|`."""
    return float(
        np.max(np.abs(actual - reference)) / np.max(np.abs(reference))
    )


def load_fixture(name):
    """Returns `(metadata, arrays, state_dict)` of the fixture `name`."""
    metadata = load_metadata(name)
    return metadata, load_arrays(name), fixture_state_dict(metadata)
