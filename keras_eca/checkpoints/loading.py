"""`load_checkpoint`: PyTorch and safetensors checkpoints -> numpy arrays."""

import collections.abc
import json
import math
import os

import numpy as np

from keras_eca.checkpoints import state_dict as state_dict_lib
from keras_eca.checkpoints import torch_files
from keras_eca.checkpoints import unpickler

_ZIP_MAGIC = b"PK\x03\x04"
_TAR_MAGIC_OFFSET = 257
# safetensors dtype -> (numpy dtype, conversion of the raw array).
_SAFETENSORS_DTYPES = {
    "F64": ("<f8", None),
    "F32": ("<f4", None),
    "F16": ("<f2", None),
    "BF16": ("<u2", unpickler.bfloat16_to_float32),
    "I64": ("<i8", None),
    "I32": ("<i4", None),
    "I16": ("<i2", None),
    "I8": ("i1", None),
    "U64": ("<u8", None),
    "U32": ("<u4", None),
    "U16": ("<u2", None),
    "U8": ("u1", None),
    "BOOL": ("u1", unpickler.bytes_to_bool),
    "C64": ("<c8", None),
}


def _sniff(head, size):
    """Tells the format from the first bytes: zip, safetensors, tar, other."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if len(head) >= 9:
        header_size = int.from_bytes(head[:8], "little")
        if 2 <= header_size <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    return "pickle"


def _read_safetensors_header(path):
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        header_size = int.from_bytes(file.read(8), "little")
        try:
            header = json.loads(file.read(header_size))
        except (ValueError, RecursionError) as error:
            raise ValueError(
                f"Cannot read {path!r}: its safetensors header is not valid "
                f"JSON ({error})."
            ) from error
    if not isinstance(header, dict):
        raise ValueError(
            f"Cannot read {path!r}: its safetensors header is a "
            f"{type(header).__name__}, not a JSON object."
        )
    return header, 8 + header_size, size


def _read_safetensors_numpy(path, header, data_start, size):
    """Reads a safetensors file with numpy only (used for BF16 tensors)."""
    tensors = {}
    with open(path, "rb") as file:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                raw_dtype, convert = _SAFETENSORS_DTYPES[info["dtype"]]
                shape = [int(n) for n in info["shape"]]
                begin, end = (int(n) for n in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"Cannot read {path!r}: the safetensors entry {name!r} is "
                    f"malformed or has an unsupported dtype: {info!r:.120}."
                ) from error
            nbytes = math.prod(shape) * np.dtype(raw_dtype).itemsize
            if min(shape, default=0) < 0 or not (
                0 <= begin <= end <= size - data_start and end - begin == nbytes
            ):
                raise ValueError(
                    f"Cannot read {path!r}: the safetensors entry {name!r} "
                    f"(shape {shape}, bytes {begin}..{end}) does not fit the "
                    "file; it is truncated or corrupt."
                )
            file.seek(data_start + begin)
            array = np.frombuffer(file.read(nbytes), dtype=raw_dtype)
            array = array.astype(array.dtype.newbyteorder("=")).reshape(shape)
            tensors[name] = array if convert is None else convert(array)
    return tensors


def _load_safetensors(path):
    header, data_start, size = _read_safetensors_header(path)
    dtypes = {
        info.get("dtype") if isinstance(info, dict) else None
        for name, info in header.items()
        if name != "__metadata__"
    }
    unsupported = sorted(map(str, dtypes - set(_SAFETENSORS_DTYPES)))
    if unsupported:
        raise ValueError(
            f"Cannot read {path!r}: unsupported or missing safetensors "
            f"dtypes {unsupported}; supported: {sorted(_SAFETENSORS_DTYPES)}."
        )
    if "BF16" in dtypes:
        # safetensors.numpy needs ml_dtypes for BF16; numpy-only instead.
        return _read_safetensors_numpy(path, header, data_start, size)
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            f"Reading the safetensors file {path!r} needs the `safetensors` "
            "package: pip install safetensors"
        ) from error
    try:
        tensors = load_file(path)
    except Exception as error:
        raise ValueError(
            f"Cannot read {path!r}: it is not a valid safetensors file "
            f"({type(error).__name__}: {error})."
        ) from error
    return {
        name: array if array.flags.writeable else array.copy()
        for name, array in tensors.items()
    }


def load_checkpoint(path, key=None):
    """Reads a PyTorch or safetensors checkpoint into numpy arrays.

    torch is never imported, and PyTorch pickles are read with a
    restricted unpickler that only rebuilds tensors and plain containers
    (see `keras_eca.checkpoints.unpickler.ALLOWED_GLOBALS`): a file that
    asks for any other global is refused before anything runs.

    The format is told from the content, whatever the extension:

    - safetensors (`.safetensors`), read with `safetensors.numpy`;
    - a `torch.save` zip archive (torch >= 1.6; `.pth`, `.pt`, `.bin`,
      `.pth.tar`);
    - a legacy `torch.save` file (torch < 1.6, e.g. the official 2019
      ECA-Net `.pth.tar` files, or `_use_new_zipfile_serialization=False`).

    Tensors come back as C-contiguous arrays with their own data, in
    their dtype (float32/64/16, int64/32/16/8, uint8, bool, complex),
    except bfloat16, which is widened to float32 (exactly, by bit
    shifting, so no `ml_dtypes` is needed). The state_dict is found as
    in `extract_state_dict`.

    Args:
        path: the checkpoint file, `str` or `os.PathLike`.
        key: optional name of the checkpoint entry that holds the
            state_dict, e.g. `"state_dict_ema"`; `None` to search.

    Returns:
        A dict from parameter name (without a `"module."` prefix shared by
        all names) to numpy array; scalars such as `num_batches_tracked`
        are 0-d arrays.

    Raises:
        UnsafeCheckpointError: if the pickle references a global outside
            the allowlist (nothing is executed).
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is truncated, corrupt, of an unknown
            format, or holds no tensors.

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
            f"{type(path).__name__}: {path!r:.80}"
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
    kind = _sniff(head, size)
    if kind == "safetensors":
        return state_dict_lib.find_state_dict(
            _load_safetensors(path), key, repr(path)
        )
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
    with reader(path) as checkpoint_file:
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
