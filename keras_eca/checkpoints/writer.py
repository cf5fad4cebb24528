"""`save_state_dict_pth`: `torch.save`-compatible files, numpy only.

The pickle is emitted opcode by opcode (protocol 2, as `torch.save`
writes it), since `pickle.Pickler` would have to import torch to name
`torch._utils._rebuild_tensor_v2` and the storage classes. Each tensor
gets its own storage holding a C-contiguous little-endian copy.
"""

import collections
import collections.abc
import os
import struct
import zipfile

import numpy as np

from keras_eca.checkpoints import torch_files

# numpy dtype name -> torch typed storage class name.
_STORAGE_NAMES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",  # ml_dtypes.bfloat16 arrays
    "complex64": "ComplexFloatStorage",
    "complex128": "ComplexDoubleStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}
_ZIP_PREFIX = "archive"
_ZIP_ALIGNMENT = 64  # torch aligns storage records to 64 bytes.
_ZIP_FORMAT_VERSION = b"3\n"
# Header id of the extra field that pads local headers (as torch does).
_PADDING_EXTRA_ID = 0x4246

# Pickle opcodes (protocol 2).
_PROTO_2 = b"\x80\x02"
_STOP = b"."
_MARK = b"("
_NONE = b"N"
_TRUE = b"\x88"
_FALSE = b"\x89"
_BININT1 = b"K"
_BININT2 = b"M"
_BININT = b"J"
_LONG1 = b"\x8a"
_LONG4 = b"\x8b"
_BINFLOAT = b"G"
_BINUNICODE = b"X"
_EMPTY_TUPLE = b")"
_TUPLE = b"t"
_EMPTY_LIST = b"]"
_APPENDS = b"e"
_EMPTY_DICT = b"}"
_SETITEMS = b"u"
_GLOBAL = b"c"
_REDUCE = b"R"
_BINPERSID = b"Q"


def _encode_long(value):
    """Two's complement little-endian bytes, as pickle's LONG1 wants."""
    if value == 0:
        return b""
    data = value.to_bytes((value.bit_length() >> 3) + 1, "little", signed=True)
    if value < 0 and len(data) > 1 and data[-1] == 0xFF and data[-2] & 0x80:
        data = data[:-1]
    return data


def _contiguous_strides(shape):
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


class _PickleWriter:
    """Emits one protocol-2 pickle and collects the tensors' storages."""

    def __init__(self, legacy):
        self._legacy = legacy
        self._out = bytearray()
        self._active = set()
        self.storages = []  # (key, raw little-endian bytes, numel)

    def dump(self, obj, where):
        self._out += _PROTO_2
        self._save(obj, where)
        self._out += _STOP
        return bytes(self._out)

    def _global(self, module, name):
        self._out += _GLOBAL + f"{module}\n{name}\n".encode("ascii")

    def _int(self, value):
        if 0 <= value < 0x100:
            self._out += _BININT1 + bytes([value])
        elif 0 <= value < 0x10000:
            self._out += _BININT2 + value.to_bytes(2, "little")
        elif -(2**31) <= value < 2**31:
            self._out += _BININT + value.to_bytes(4, "little", signed=True)
        else:
            data = _encode_long(value)
            if len(data) < 0x100:
                self._out += _LONG1 + bytes([len(data)]) + data
            else:
                self._out += _LONG4 + struct.pack("<i", len(data)) + data

    def _str(self, value):
        data = value.encode("utf-8", "surrogatepass")
        self._out += _BINUNICODE + struct.pack("<I", len(data)) + data

    def _tuple(self, items, where):
        if not items:
            self._out += _EMPTY_TUPLE
            return
        self._out += _MARK
        for i, item in enumerate(items):
            self._save(item, f"{where}[{i}]")
        self._out += _TUPLE

    def _save(self, obj, where):
        if obj is None:
            self._out += _NONE
        elif obj is True or obj is False:
            self._out += _TRUE if obj else _FALSE
        elif type(obj) is int:
            self._int(obj)
        elif type(obj) is float:
            self._out += _BINFLOAT + struct.pack(">d", obj)
        elif type(obj) is str:
            self._str(obj)
        elif isinstance(obj, (np.ndarray, np.generic)):
            self._tensor(obj, where)
        elif isinstance(obj, (collections.abc.Mapping, list, tuple)):
            if id(obj) in self._active:
                raise ValueError(f"Cannot save {where}: it contains itself.")
            self._active.add(id(obj))
            if isinstance(obj, collections.abc.Mapping):
                self._mapping(obj, where)
            elif isinstance(obj, list):
                self._out += _EMPTY_LIST
                if obj:
                    self._out += _MARK
                    for i, item in enumerate(obj):
                        self._save(item, f"{where}[{i}]")
                    self._out += _APPENDS
            else:
                self._tuple(obj, where)
            self._active.discard(id(obj))
        else:
            raise TypeError(
                f"Cannot save {where}: values must be numpy arrays, numpy "
                "scalars, None, bool, int, float, str, or mappings, lists "
                f"and tuples of those; received {type(obj).__name__}: "
                f"{obj!r:.80}"
            )

    def _mapping(self, mapping, where):
        if isinstance(mapping, collections.OrderedDict):
            self._global("collections", "OrderedDict")
            self._out += _EMPTY_TUPLE + _REDUCE
        else:
            self._out += _EMPTY_DICT
        if not mapping:
            return
        self._out += _MARK
        for key, value in mapping.items():
            if type(key) not in (str, int):
                raise TypeError(
                    f"Cannot save {where}: keys must be str or int, "
                    f"received {type(key).__name__}: {key!r:.80}"
                )
            self._save(key, where)
            self._save(value, f"{where}[{key!r}]")
        self._out += _SETITEMS

    def _tensor(self, value, where):
        array = np.asarray(value)
        storage_name = _STORAGE_NAMES.get(array.dtype.name)
        if storage_name is None or array.dtype.kind not in "fcuibV":
            raise ValueError(
                f"Cannot save {where}: dtype {array.dtype} has no torch "
                f"storage type; supported: {sorted(_STORAGE_NAMES)}."
            )
        data = array if array.flags.c_contiguous else array.copy(order="C")
        if array.dtype.name == "bfloat16":
            data = data.view(np.uint16)
        if data.dtype.byteorder not in ("<", "|") and not (
            data.dtype.isnative and np.little_endian
        ):
            data = data.astype(data.dtype.newbyteorder("<"))
        key = str(len(self.storages))
        self.storages.append((key, data.tobytes(), array.size))
        self._global("torch._utils", "_rebuild_tensor_v2")
        self._out += _MARK
        # The storage, as a persistent id.
        self._out += _MARK
        self._str("storage")
        self._global("torch", storage_name)
        self._str(key)
        self._str("cpu")
        self._int(array.size)
        if self._legacy:
            self._out += _NONE  # view_metadata
        self._out += _TUPLE + _BINPERSID
        self._int(0)  # storage_offset
        self._tuple(tuple(int(n) for n in array.shape), where)
        self._tuple(_contiguous_strides(array.shape), where)
        self._out += _FALSE  # requires_grad
        self._global("collections", "OrderedDict")  # backward_hooks
        self._out += _EMPTY_TUPLE + _REDUCE
        self._out += _TUPLE + _REDUCE


def _pickle_plain(value):
    return _PickleWriter(legacy=True).dump(value, "header")


def _write_zip(path, pickle_bytes, storages):
    records = [("data.pkl", pickle_bytes), ("byteorder", b"little")]
    records += [(f"data/{key}", data) for key, data, _ in storages]
    records.append(("version", _ZIP_FORMAT_VERSION))
    with (
        open(path, "wb") as file,
        zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive,
    ):
        for name, data in records:
            info = zipfile.ZipInfo(f"{_ZIP_PREFIX}/{name}")
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            # Pad the local header so that the record's data starts at
            # a multiple of 64 bytes, as in archives written by torch.
            zip64_extra = 20 if len(data) * 1.05 > zipfile.ZIP64_LIMIT else 0
            header_end = (
                file.tell()
                + 30
                + len(info.filename.encode("ascii"))
                + 4
                + zip64_extra
            )
            padding = -header_end % _ZIP_ALIGNMENT
            info.extra = struct.pack("<HH", _PADDING_EXTRA_ID, padding) + bytes(
                padding
            )
            archive.writestr(info, data)


def _write_legacy(path, pickle_bytes, storages):
    sys_info = {
        "protocol_version": torch_files.LEGACY_PROTOCOL_VERSION,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    with open(path, "wb") as file:
        file.write(_pickle_plain(torch_files.LEGACY_MAGIC_NUMBER))
        file.write(_pickle_plain(torch_files.LEGACY_PROTOCOL_VERSION))
        file.write(_pickle_plain(sys_info))
        file.write(pickle_bytes)
        file.write(_pickle_plain([key for key, _, _ in storages]))
        for _, data, numel in storages:
            file.write(struct.pack("<q", numel))
            file.write(data)


def save_state_dict_pth(state_dict, path, legacy=False):
    """Writes a state_dict as a `.pth` file that `torch.load` reads.

    numpy only: no torch is needed to write the file, which
    `torch.load(path, weights_only=True)` reads back exactly (as does
    `load_checkpoint`). With `legacy=False` the file is a `torch.save` zip
    archive (torch >= 1.6); with `legacy=True` it is in the legacy format
    of torch < 1.6 (`_use_new_zipfile_serialization=False`), like the
    official 2019 ECA-Net checkpoints.

    Arrays and numpy scalars become tensors (float32/64/16, int64/32/16/8,
    uint8, bool, complex64/128, and `ml_dtypes.bfloat16`, which becomes a
    bfloat16 tensor). Values may also be None, bool, int, float, str, or
    (nested) mappings, lists and tuples of those, so a whole training
    checkpoint such as `{"epoch": 5, "state_dict": {...}}` can be written.
    An `OrderedDict` stays one; other mappings become dicts.

    Args:
        state_dict: mapping from parameter name to array (or a checkpoint
            dict holding one, see above).
        path: the file to write, `str` or `os.PathLike`.
        legacy: `True` for the legacy format, `False` (default) for the
            zip format.

    Raises:
        TypeError: if `state_dict` is not a mapping, `path` is not a path,
            or a value has an unsupported type.
        ValueError: if an array has a dtype without a torch storage type,
            or a container contains itself.

    Example:

    >>> import os, tempfile
    >>> from keras_eca import checkpoints
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "weights.pth")
    >>> checkpoints.save_state_dict_pth(
    ...     {"fc.weight": np.eye(2, dtype="float32")}, path
    ... )
    >>> checkpoints.load_checkpoint(path)["fc.weight"]
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    >>> folder.cleanup()
    """
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(
            "`state_dict` must be a mapping from name to array, received "
            f"{type(state_dict).__name__}: {state_dict!r:.80}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "`path` must be a str or os.PathLike, received "
            f"{type(path).__name__}: {path!r:.80}"
        )
    writer = _PickleWriter(legacy=bool(legacy))
    pickle_bytes = writer.dump(state_dict, "state_dict")
    write = _write_legacy if legacy else _write_zip
    write(os.fspath(path), pickle_bytes, writer.storages)
