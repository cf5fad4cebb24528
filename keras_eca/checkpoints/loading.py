"""`load_checkpoint`: PyTorch and safetensors checkpoints -> numpy arrays."""

import collections.abc
import numbers
import os

from keras_eca.checkpoints import safetensors_file
from keras_eca.checkpoints import state_dict as state_dict_lib
from keras_eca.checkpoints import torch_files
from keras_eca.checkpoints import unpickler

_ZIP_MAGIC = b"PK\x03\x04"
_TAR_MAGIC_OFFSET = 257


def _sniff(head):
    """Tells the format from the first bytes: zip, safetensors, tar, other."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if safetensors_file.looks_like_safetensors(head):
        return "safetensors"
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    return "pickle"


def load_checkpoint(path, key=None, max_bytes=None):
    """Reads a PyTorch or safetensors checkpoint into numpy arrays.

    torch is never imported, and PyTorch pickles are read with a
    restricted unpickler that only rebuilds tensors and plain containers
    (see `keras_eca.checkpoints.unpickler.ALLOWED_GLOBALS`): a file that
    asks for any other global is refused before anything runs.

    The format is told from the content, whatever the extension:

    - safetensors (`.safetensors`), read with numpy by the format's own
      rules (`keras_eca.checkpoints.safetensors_file`);
    - a `torch.save` zip archive (torch >= 1.6; `.pth`, `.pt`, `.bin`,
      `.pth.tar`);
    - a legacy `torch.save` file (torch < 1.6, e.g. the official 2019
      ECA-Net `.pth.tar` files, or `_use_new_zipfile_serialization=False`).

    Tensors come back as C-contiguous arrays with their own data, in
    their dtype (float32/64/16, int64/32/16/8, uint8, bool, complex),
    except bfloat16, which is widened to float32 (exactly, by bit
    shifting, so no `ml_dtypes` is needed). The state_dict is found as
    in `extract_state_dict`.

    Hostile files cost bounded time and memory: pickles run in a bounded
    interpreter (`keras_eca.checkpoints.pickle_machine`: nesting depth,
    object count, hashing work), zip records must be stored uncompressed
    as torch.save writes them, and the tensors of a PyTorch file may
    produce at most `max_bytes` (tensors with overlapping strides could
    otherwise turn a 1 kB file into gigabytes).

    Args:
        path: the checkpoint file, `str` or `os.PathLike`.
        key: optional name of the checkpoint entry that holds the
            state_dict, e.g. `"state_dict_ema"`; `None` to search.
        max_bytes: int or `None`. The most bytes the tensors of a PyTorch
            file may produce. `None` (the default) allows 4 x the file's
            size + 64 MiB, at most 32 GiB, which every honest file meets
            (its tensors are views of the storages it holds); pass more
            for a trusted file of deliberately expanded tensors.

    Returns:
        A dict from parameter name (without a `"module."` prefix shared by
        all names) to numpy array; scalars such as `num_batches_tracked`
        are 0-d arrays.

    Raises:
        UnsafeCheckpointError: if the pickle references a global outside
            the allowlist (nothing is executed).
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is truncated, corrupt, of an unknown
            format, holds no tensors, or exceeds a bound
            (`CheckpointTooLargeError` for the byte budget).

    Example:

    >>> import os, tempfile
    >>> from keras_eca import checkpoints
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "model_best.pth.tar")
    >>> checkpoints.save_state_dict_pth(
    ...     {"epoch": 5, "state_dict": {"module.bn.weight": np.ones(2)}},
    ...     path,
    ...     legacy=True,
    ... )
    >>> checkpoints.load_checkpoint(path)
    {'bn.weight': array([1., 1.])}
    >>> folder.cleanup()
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "`path` must be a str or os.PathLike, received "
            f"{type(path).__name__}"
        )
    if max_bytes is not None and (
        isinstance(max_bytes, bool)
        or not isinstance(max_bytes, numbers.Integral)
        or max_bytes <= 0
    ):
        raise ValueError(
            "`max_bytes` must be None or a positive integer. Received: "
            f"max_bytes={max_bytes!r}"
        )
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`path` {path!r} is not an existing checkpoint file."
        )
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(512)
    if size == 0:
        raise ValueError(f"Cannot read {path!r}: the file is empty.")
    kind = _sniff(head)
    if kind == "safetensors":
        tensors = safetensors_file.SafetensorsFile(path).load()
        return state_dict_lib.find_state_dict(tensors, key, repr(path))
    if kind == "tar":
        raise ValueError(
            f"Cannot read {path!r}: it is a tar archive, the checkpoint "
            "format of torch < 0.4, which is not supported. Re-save it with "
            "a newer torch: torch.save(torch.load(path), new_path)."
        )
    reader = (
        torch_files.TorchZipCheckpoint
        if kind == "zip"
        else torch_files.TorchLegacyCheckpoint
    )
    max_bytes = None if max_bytes is None else int(max_bytes)
    with reader(path, max_bytes=max_bytes) as checkpoint_file:
        checkpoint = checkpoint_file.load()
        if not isinstance(checkpoint, collections.abc.Mapping):
            held = (
                "single tensor"
                if isinstance(checkpoint, unpickler.LazyTensor)
                else type(checkpoint).__name__
            )
            raise ValueError(
                f"Cannot read {path!r}: it holds a {held}, not a state_dict "
                "or a dict holding one."
            )
        return state_dict_lib.find_state_dict(checkpoint, key, repr(path))
