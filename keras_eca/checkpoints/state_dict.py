"""Finding the state_dict inside a loaded checkpoint object."""

import collections.abc
import itertools

import numpy as np

from keras_eca.checkpoints import unpickler
from keras_eca.checkpoints.errors import CheckpointTooLargeError
from keras_eca.checkpoints.errors import describe

# Where training scripts keep the weights, in the order they are tried:
# - "state_dict": official ECA-Net and SA-Net, timm training checkpoints;
# - "model_state_dict": the PyTorch "saving a general checkpoint" recipe;
# - "model": torchvision reference scripts, DeiT and many other repos;
# - "model_state": fvcore-style checkpointers;
# - "state_dict_ema", "model_ema": EMA weights, used only when none of the
#   above holds tensors (pass `key=` to prefer them).
STATE_DICT_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "model_state",
    "state_dict_ema",
    "model_ema",
)
DATA_PARALLEL_PREFIX = "module."
# How deep wrappers such as {"model": {"state_dict": ...}} are searched.
_MAX_DEPTH = 3


def _is_torch_tensor(value):
    module = type(value).__module__ or ""
    return (module == "torch" or module.startswith("torch.")) and hasattr(
        value, "detach"
    )


def _is_tensor(value):
    return isinstance(value, (np.ndarray, unpickler.LazyTensor)) or (
        _is_torch_tensor(value)
    )


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, unpickler.LazyTensor):
        return value.to_numpy()
    # A torch.Tensor, e.g. from `torch.load`; torch is never imported.
    tensor = value.detach().cpu().resolve_conj().resolve_neg()
    if str(tensor.dtype) == "torch.bfloat16":
        tensor = tensor.float()
    return np.array(tensor.numpy(), copy=True, order="C")


class _Search:
    """Finds the state_dict, visiting each mapping once per depth.

    A pickle can make many entries share one large mapping; without the
    caches the search would rescan it for each reference.
    """

    def __init__(self):
        self._direct = {}
        self._located = {}

    def has_tensors(self, mapping):
        found = self._direct.get(id(mapping))
        if found is None:
            found = any(_is_tensor(value) for value in mapping.values())
            self._direct[id(mapping)] = found
        return found

    def locate(self, mapping, depth=0):
        """Returns the mapping holding the weights, or `None`."""
        key = (id(mapping), depth)
        if key not in self._located:
            self._located[key] = self._locate(mapping, depth)
        return self._located[key]

    def _locate(self, mapping, depth):
        for name in STATE_DICT_KEYS:
            value = mapping.get(name)
            if isinstance(value, collections.abc.Mapping) and (
                depth < _MAX_DEPTH
            ):
                found = self.locate(value, depth + 1)
                if found is not None:
                    return found
        nested = any(
            isinstance(value, collections.abc.Mapping)
            and self.has_tensors(value)
            for value in mapping.values()
        )
        if self.has_tensors(mapping) and not nested:
            return mapping
        return None


def _contains_tensors(value, depth=0, seen=None):
    # `seen`: a pickle can make containers share (or contain) themselves.
    seen = set() if seen is None else seen
    if _is_tensor(value):
        return True
    if depth >= 2 * _MAX_DEPTH or id(value) in seen:
        return False
    if isinstance(value, collections.abc.Mapping):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return False
    seen.add(id(value))
    return any(_contains_tensors(item, depth + 1, seen) for item in items)


def _describe_type(value):
    return "tensor" if _is_tensor(value) else type(value).__name__


def _describe_keys(mapping):
    keys = [describe(k, 60) for k in itertools.islice(mapping, 12)]
    more = ", ..." if len(mapping) > 12 else ""
    return "[" + ", ".join(keys) + more + "]"


def find_state_dict(checkpoint, key, source):
    """Returns the state_dict of `checkpoint` as numpy arrays.

    Args:
        checkpoint: a mapping (see `extract_state_dict`).
        key: optional name of the entry holding the state_dict.
        source: description of the checkpoint for error messages.

    Returns:
        A dict from parameter name to numpy array.

    Raises:
        ValueError: if no state_dict with tensors is found.
    """
    if key is not None:
        if key not in checkpoint:
            raise ValueError(
                f"`key={describe(key)}` is not in {source}; its keys are "
                f"{_describe_keys(checkpoint)}."
            )
        found = checkpoint[key]
        if not isinstance(found, collections.abc.Mapping):
            raise ValueError(
                f"`key={key!r}` of {source} holds a {_describe_type(found)}, "
                "not a state_dict mapping."
            )
        where = f"{source}[{key!r}]"
    else:
        found = _Search().locate(checkpoint)
        where = source
        if found is None:
            if not _contains_tensors(checkpoint):
                raise ValueError(
                    f"{source} contains no tensors (keys: "
                    f"{_describe_keys(checkpoint)}), so there are no weights "
                    "to load."
                )
            raise ValueError(
                f"No state_dict found in {source}: expected a mapping of "
                "tensors, or one under a key among "
                f"{list(STATE_DICT_KEYS)}; its keys are "
                f"{_describe_keys(checkpoint)}. Pass `key=` to choose the "
                "entry that holds the weights."
            )
    tensors = {}
    for name, value in found.items():
        if not _is_tensor(value):
            continue
        if not isinstance(name, str):
            raise ValueError(
                f"The state_dict in {where} has a non-string key "
                f"{describe(name)}."
            )
        try:
            tensors[name] = _to_numpy(value)
        except unpickler.CorruptTensorError as error:
            raise ValueError(
                f"Cannot read tensor {describe(name)} of {where}: {error}; "
                "the file is corrupt."
            ) from error
        except ValueError as error:
            kind = (
                CheckpointTooLargeError
                if isinstance(error, CheckpointTooLargeError)
                else ValueError
            )
            raise kind(
                f"Cannot read tensor {describe(name)} of {where}: {error}."
            ) from error
    if not tensors:
        raise ValueError(
            f"The state_dict in {where} contains no tensors (keys: "
            f"{_describe_keys(found)})."
        )
    if all(name.startswith(DATA_PARALLEL_PREFIX) for name in tensors):
        tensors = {
            name[len(DATA_PARALLEL_PREFIX) :]: value
            for name, value in tensors.items()
        }
    return tensors


def extract_state_dict(checkpoint, key=None):
    """Finds the state_dict in a checkpoint and returns it as numpy arrays.

    A training checkpoint is usually a dict that holds the state_dict next
    to other entries: `{"epoch", "arch", "state_dict", "best_prec1",
    "optimizer"}` (official ECA-Net), `{"epoch", "state_dict", "best_acc",
    "optimizer"}` (SA-Net). A bare mapping of tensors (timm,
    torchvision weights) is itself the state_dict. Unless `key` is given,
    the entries `"state_dict"`, `"model_state_dict"`, `"model"`,
    `"model_state"`, `"state_dict_ema"` and `"model_ema"` are tried in this
    order (also one level down, as in `{"model": {"state_dict": ...}}`),
    and the first mapping holding tensors wins; otherwise `checkpoint`
    itself is the state_dict if it holds tensors and no nested mapping of
    tensors. Only tensor entries are kept (scalars such as
    `num_batches_tracked` become 0-d arrays), and a leading `"module."`
    (from `nn.DataParallel`) is stripped when every name has it.

    Tensors may be numpy arrays, the tensors read by `load_checkpoint`, or
    `torch.Tensor`s (e.g. from `torch.load`; bfloat16 becomes float32);
    torch is never imported.

    Args:
        checkpoint: the loaded checkpoint, a mapping.
        key: optional name of the entry that holds the state_dict, e.g.
            `"state_dict_ema"`; `None` to search as described above.

    Returns:
        A dict from parameter name to numpy array.

    Raises:
        TypeError: if `checkpoint` is not a mapping.
        ValueError: if no state_dict with tensors is found, or `key` is
            missing.

    Example:

    >>> from keras_eca import checkpoints
    >>> checkpoint = {
    ...     "epoch": 5,
    ...     "state_dict": {"module.fc.bias": np.zeros(2, "float32")},
    ...     "best_prec1": np.array(77.4),
    ... }
    >>> checkpoints.extract_state_dict(checkpoint)
    {'fc.bias': array([0., 0.], dtype=float32)}
    """
    if not isinstance(checkpoint, collections.abc.Mapping):
        raise TypeError(
            "`checkpoint` must be a mapping (a state_dict, or a dict that "
            f"holds one), received {type(checkpoint).__name__}: "
            f"{describe(checkpoint)}"
        )
    return find_state_dict(checkpoint, key, "the checkpoint")
