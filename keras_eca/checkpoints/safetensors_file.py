"""Reading `.safetensors` files with numpy, by the format's own rules.

One reader for every dtype (the `safetensors` package needs `ml_dtypes`
for bfloat16, which is widened to float32 here instead). It refuses what
the `safetensors` library refuses (its `SafeTensors::read_metadata` and
`validate`): a header over 100 MB or past the end of the file, a header
that is not a JSON object, `__metadata__` that is not a string -> string
map, a shape that is not a list of non-negative integers, data offsets
that are not `[begin, end]` integers, tensors whose bytes do not tile the
data area exactly (gaps or overlaps), and a data area whose size differs
from the sum of its tensors'. JSON constants (`NaN`, `Infinity`) and
repeated names, which the library's parser takes silently, are refused
too.
"""

import json
import math
import os

import numpy as np

from keras_eca.checkpoints.errors import describe
from keras_eca.checkpoints.unpickler import MAX_EXTENT
from keras_eca.checkpoints.unpickler import MAX_NDIM
from keras_eca.checkpoints.unpickler import bfloat16_to_float32
from keras_eca.checkpoints.unpickler import bytes_to_bool

# The safetensors library's MAX_HEADER_SIZE.
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"


# safetensors dtype -> (little-endian numpy dtype, conversion of the raw array).
DTYPES = {
    "F64": ("<f8", None),
    "F32": ("<f4", None),
    "F16": ("<f2", None),
    "BF16": ("<u2", bfloat16_to_float32),
    "I64": ("<i8", None),
    "I32": ("<i4", None),
    "I16": ("<i2", None),
    "I8": ("i1", None),
    "U64": ("<u8", None),
    "U32": ("<u4", None),
    "U16": ("<u2", None),
    "U8": ("u1", None),
    "BOOL": ("u1", bytes_to_bool),
    "C64": ("<c8", None),
}


def looks_like_safetensors(head):
    """Tells a safetensors file (8-byte size, then `{`) from a pickle
    (which starts with the PROTO opcode) by its first bytes."""
    return len(head) >= 9 and head[8:9] == b"{" and head[:1] != b"\x80"


def _refuse_constant(name):
    raise ValueError(f"the JSON constant {name} is not allowed")


def _unique_object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the name {describe(key)} appears twice")
        result[key] = value
    return result


def _is_index(value):
    return type(value) is int and 0 <= value < 2**64


class SafetensorsFile:
    """A validated safetensors header; tensors are read by `load`.

    Args:
        path: the file.

    Raises:
        ValueError: naming the file, if anything breaks the format's rules.
    """

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        with open(path, "rb") as file:
            self.header = self._read_header(file)
        self.entries = self._validate(self.header)

    def _error(self, problem):
        return ValueError(
            f"Cannot read {self.path!r}: it is not a valid safetensors file "
            f"({problem})."
        )

    def _read_header(self, file):
        prefix = file.read(8)
        if len(prefix) < 8:
            raise self._error("it is shorter than its 8-byte header size")
        header_size = int.from_bytes(prefix, "little")
        if header_size > MAX_HEADER_BYTES:
            raise self._error(
                f"its header of {header_size} bytes is larger than "
                f"{MAX_HEADER_BYTES}"
            )
        if 8 + header_size > self.size:
            raise self._error(
                f"its header of {header_size} bytes reaches past the end of "
                f"the {self.size}-byte file"
            )
        self.data_start = 8 + header_size
        try:
            text = file.read(header_size).decode("utf-8")
            if not text.startswith("{"):
                raise ValueError("it does not start with '{'")
            header = json.loads(
                text,
                object_pairs_hook=_unique_object,
                parse_constant=_refuse_constant,
            )
        except (ValueError, RecursionError) as error:
            raise self._error(
                f"its header is not valid JSON: {describe(str(error), 200)}"
            ) from error
        if not isinstance(header, dict):
            raise self._error("its header is not a JSON object")
        return header

    def _validate(self, header):
        metadata = header.get(METADATA_KEY, {})
        if not isinstance(metadata, dict) or not all(
            isinstance(value, str) for value in metadata.values()
        ):
            raise self._error(
                f"{METADATA_KEY!r} must map strings to strings, got "
                f"{describe(metadata)}"
            )
        entries = []
        for name, info in header.items():
            if name == METADATA_KEY:
                continue
            entries.append(self._entry(name, info))
        entries.sort(key=lambda entry: entry[3])
        position = 0
        for name, _, _, begin, end in entries:
            if begin != position:
                raise self._error(
                    f"tensor {describe(name)} starts at byte {begin} of the "
                    f"data, not at {position}: tensors overlap or leave gaps"
                )
            position = end
        if self.data_start + position != self.size:
            raise self._error(
                f"its tensors hold {position} bytes but the file has "
                f"{self.size - self.data_start} after the header"
            )
        return entries

    def _entry(self, name, info):
        if not isinstance(info, dict):
            raise self._error(
                f"the entry {describe(name)} is {describe(info)}, not an "
                "object"
            )
        dtype = info.get("dtype")
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise self._error(
                f"the entry {describe(name)} has the unsupported or missing "
                f"dtype {describe(dtype)}; supported: {sorted(DTYPES)}"
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(map(_is_index, shape))
        ):
            raise self._error(
                f"the shape of {describe(name)} must be a list of at most "
                f"{MAX_NDIM} non-negative integers, got {describe(shape)}"
            )
        itemsize = np.dtype(DTYPES[dtype][0]).itemsize
        if math.prod(max(n, 1) for n in shape) * 16 > MAX_EXTENT:
            raise self._error(
                f"the shape of {describe(name)}, {describe(shape)}, is too "
                "large for any array"
            )
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(map(_is_index, offsets))
            and offsets[0] <= offsets[1]
        ):
            raise self._error(
                f"the data_offsets of {describe(name)} must be [begin, end] "
                f"integers with begin <= end, got {describe(offsets)}"
            )
        begin, end = offsets
        nbytes = math.prod(shape) * itemsize
        if end - begin != nbytes:
            raise self._error(
                f"tensor {describe(name)} of dtype {dtype} and shape "
                f"{describe(shape)} "
                f"needs {nbytes} bytes but its data_offsets give "
                f"{end - begin}"
            )
        return name, dtype, tuple(shape), begin, end

    def load(self):
        """Reads every tensor.

        Returns:
            A dict from name to a C-contiguous, writeable numpy array in
            native byte order (bfloat16 as float32, BOOL as bool), in the
            header's order.
        """
        tensors = {}
        with open(self.path, "rb") as file:
            for name, dtype, shape, begin, end in self.entries:
                raw_dtype, convert = DTYPES[dtype]
                file.seek(self.data_start + begin)
                data = file.read(end - begin)
                if len(data) != end - begin:
                    raise self._error(f"the file ends inside {describe(name)}")
                array = np.frombuffer(data, dtype=raw_dtype)
                array = array.astype(array.dtype.newbyteorder("="))
                array = array.reshape(shape)
                tensors[name] = array if convert is None else convert(array)
        order = [name for name in self.header if name != METADATA_KEY]
        return {name: tensors[name] for name in order}
