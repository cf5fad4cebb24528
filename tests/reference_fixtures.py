"""Reference outputs of the official/timm PyTorch code (tests/data/reference).

See tests/data/reference/README.md: every fixture's weights follow the
deterministic rule "init v2", reproduced here from its specification.
"""

import json
import math
import pathlib
import zlib

import numpy as np

REFERENCE_DIR = pathlib.Path(__file__).parent / "data" / "reference"


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
        value = rng.standard_normal(shape) * math.sqrt(1.0 / math.prod(shape[1:]))
    elif name.endswith("weight"):
        value = rng.uniform(0.5, 1.5, size=shape)
    else:
        value = rng.standard_normal(shape) * 0.1
    return np.asarray(value, dtype=np.float64).astype(np.float32)


def load_fixture(name):
    """Returns `(metadata dict, arrays dict, state_dict)` of fixture `name`."""
    meta = json.loads((REFERENCE_DIR / f"{name}.json").read_text())
    with np.load(REFERENCE_DIR / f"{name}.npz") as data:
        arrays = {key: data[key] for key in data.files}
    state_dict = {key: init_value(key, shape) for key, shape, _ in meta["state_dict"]}
    return meta, arrays, state_dict


def nchw_to_nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|."""
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
