"""Restricted unpickling of PyTorch checkpoint pickles, without torch.

A PyTorch checkpoint pickle rebuilds tensors by calling globals such as
`torch._utils._rebuild_tensor_v2`. `RestrictedUnpickler.find_class` never
imports anything: it maps the few globals in `ALLOWED_GLOBALS` to inert
stand-ins defined here, and refuses every other one with
`UnsafeCheckpointError` before it is looked up.

The stand-ins are pure data builders. Calling one only type-checks its
arguments and records them (`LazyTensor`) or builds a plain container; they
accept no keyword arguments, are not classes (so `NEWOBJ` cannot
instantiate them), and, like the storages and tensors handed out, refuse
`BUILD` (`__setstate__`), so a pickle cannot rewrite their fields either.
The containers they build are plain Python ones (`BUILD` on an
`OrderedDict` only sets data attributes, such as a state_dict's
`_metadata`). Tensor bytes are read only later, when `LazyTensor.to_numpy` is called, and
every offset, size and stride is checked against the storage then.
"""

import collections
import math
import pickle

import numpy as np

from keras_eca.checkpoints.errors import UnsafeCheckpointError

# numpy 1.x allows at most 32 dimensions (numpy 2: 64).
_MAX_NDIM = 32
# A tensor whose strides overlap (e.g. `expand`) can hold more elements
# than its storage; such a tensor is materialized only up to this size.
_MAX_OVERLAPPING_ELEMENTS = 2**28


class CorruptTensorError(ValueError):
    """A tensor does not fit its storage (raised when it is read)."""


class _Inert:
    """Base of every object handed to a pickle: its state cannot be set."""

    __slots__ = ()

    def __setstate__(self, state):
        raise ValueError(
            f"the pickle tries to set the state of {type(self).__name__} "
            "(a BUILD opcode), which no PyTorch checkpoint does"
        )


def bfloat16_to_float32(bits):
    """Widens bfloat16 bit patterns (uint16) to float32, exactly."""
    # bfloat16 is the upper half of a float32: shifting the 16 bits into
    # the high half of a uint32 gives the same value, exactly.
    # (In place, so that 0-d arrays stay arrays.)
    wide = bits.astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


def bytes_to_bool(raw):
    """Reads bool bytes (any non-zero byte is True)."""
    return raw.astype(bool)


class StorageType(_Inert):
    """Stand-in for a typed storage class such as `torch.FloatStorage`.

    Not callable: a pickle can only pass it along, in a persistent id.

    Args:
        name: the torch class name, e.g. `"FloatStorage"`.
        raw_dtype: numpy dtype of the stored elements, byte order aside.
        convert: optional function from the raw array to the returned one.
    """

    __slots__ = ("convert", "name", "raw_dtype")

    def __init__(self, name, raw_dtype, convert=None):
        self.name = name
        self.raw_dtype = np.dtype(raw_dtype)
        self.convert = convert

    @property
    def itemsize(self):
        return self.raw_dtype.itemsize

    def __repr__(self):
        return f"torch.{self.name}"


# bfloat16 is returned as float32 (exact); bool is stored as one byte.
STORAGE_TYPES = {
    storage.name: storage
    for storage in [
        StorageType("FloatStorage", "f4"),
        StorageType("DoubleStorage", "f8"),
        StorageType("HalfStorage", "f2"),
        StorageType("BFloat16Storage", "u2", bfloat16_to_float32),
        StorageType("ComplexFloatStorage", "c8"),
        StorageType("ComplexDoubleStorage", "c16"),
        StorageType("LongStorage", "i8"),
        StorageType("IntStorage", "i4"),
        StorageType("ShortStorage", "i2"),
        StorageType("CharStorage", "i1"),
        StorageType("ByteStorage", "u1"),
        StorageType("BoolStorage", "u1", bytes_to_bool),
    ]
}


class Storage(_Inert):
    """A storage named by a persistent id; its bytes are read on demand.

    Args:
        key: the storage key in the file.
        storage_type: a `StorageType`.
        numel: number of elements the pickle declares.
        read: function returning the storage's elements as a 1-D numpy
            array of `storage_type.raw_dtype` in native byte order.
    """

    __slots__ = ("_array", "_read", "key", "numel", "storage_type")

    def __init__(self, key, storage_type, numel, read):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        self._read = read
        self._array = None

    def array(self):
        """Returns the elements as a 1-D array (read once, then cached)."""
        if self._array is None:
            array = self._read()
            if array.shape != (self.numel,):
                raise CorruptTensorError(
                    f"storage {self.key!r} holds {array.size} elements but "
                    f"the pickle declares {self.numel}"
                )
            self._array = array
        return self._array


def check_int(value, what, minimum=0):
    """Returns `value` if it is an int >= `minimum`, else raises ValueError."""
    if type(value) is not int or value < minimum:
        raise ValueError(
            f"{what} must be an integer >= {minimum}, got {value!r:.80}"
        )
    return value


def _check_shape(values, what):
    if not isinstance(values, (tuple, list)) or len(values) > _MAX_NDIM:
        raise ValueError(
            f"{what} must be a tuple of at most {_MAX_NDIM} integers, "
            f"got {values!r:.80}"
        )
    return tuple(check_int(v, f"each {what} entry") for v in values)


class LazyTensor(_Inert):
    """A tensor recorded by a rebuild stand-in, materialized on demand.

    Args:
        storage: the `Storage` holding the elements.
        offset: index of the first element in the storage.
        size: the shape.
        stride: the stride of each dimension, in elements.
    """

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, Storage):
            raise ValueError(
                "a tensor must be rebuilt from a storage persistent id, got "
                f"{type(storage).__name__}"
            )
        self.storage = storage
        self.offset = check_int(offset, "storage_offset")
        self.size = _check_shape(size, "size")
        self.stride = _check_shape(stride, "stride")
        if len(self.size) != len(self.stride):
            raise ValueError(
                f"size {self.size} and stride {self.stride} have different "
                "lengths"
            )

    def to_numpy(self):
        """Copies the tensor out of its storage.

        Returns:
            A C-contiguous numpy array that owns its data (bfloat16 as
            float32, bool as bool).

        Raises:
            CorruptTensorError: if the tensor reaches outside its storage.
            ValueError: if the storage cannot be read.
        """
        storage_type = self.storage.storage_type
        flat = self.storage.array()
        numel = math.prod(self.size)
        if numel == 0:
            out = np.zeros(self.size, dtype=flat.dtype)
        else:
            last = self.offset + sum(
                (n - 1) * s for n, s in zip(self.size, self.stride)
            )
            if last >= flat.size:
                raise CorruptTensorError(
                    f"a tensor of size {self.size}, stride {self.stride} and "
                    f"offset {self.offset} needs {last + 1} elements but "
                    f"storage {self.storage.key!r} holds {flat.size}"
                )
            if numel > flat.size and numel > _MAX_OVERLAPPING_ELEMENTS:
                raise CorruptTensorError(
                    f"a tensor of size {self.size} with overlapping strides "
                    f"{self.stride} would expand storage "
                    f"{self.storage.key!r} ({flat.size} elements) to {numel} "
                    "elements"
                )
            view = np.lib.stride_tricks.as_strided(
                flat[self.offset :],
                shape=self.size,
                strides=tuple(s * flat.itemsize for s in self.stride),
                writeable=False,
            )
            out = np.array(view, copy=True, order="C")
        if storage_type.convert is not None:
            out = storage_type.convert(out)
        return out


class _Builder(_Inert):
    """A callable stand-in for an allowed global (positional args only)."""

    __slots__ = ("_function", "_name")

    def __init__(self, name, function):
        self._name = name
        self._function = function

    def __call__(self, *args):
        return self._function(*args)

    def __repr__(self):
        return f"<stand-in for {self._name}>"


def _rebuild_tensor(storage, storage_offset, size, stride):
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage,
    storage_offset,
    size,
    stride,
    requires_grad=False,
    backward_hooks=None,
    metadata=None,
):
    # requires_grad, backward hooks and metadata do not change the values.
    return LazyTensor(storage, storage_offset, size, stride)


def _check_tensor(data):
    if not isinstance(data, LazyTensor):
        raise ValueError(
            f"a parameter must wrap a tensor, got {type(data).__name__}"
        )
    return data


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return _check_tensor(data)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _check_tensor(data)


def _ordered_dict(*args):
    if not args:
        return collections.OrderedDict()
    (items,) = args
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(item, (list, tuple)) and len(item) == 2 for item in items
    ):
        raise ValueError("OrderedDict must be rebuilt from (key, value) pairs")
    return collections.OrderedDict(items)


def _set_builder(kind):
    def build(*args):
        if not args:
            return kind()
        (items,) = args
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"{kind.__name__} must be rebuilt from a list")
        return kind(items)

    return build


def _codecs_encode(text, encoding):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode may only rebuild latin-1 bytes")
    return text.encode("latin-1")


def _empty_bytes(*args):
    if args:
        raise ValueError("bytes may only be rebuilt empty")
    return b""


def _allowlist():
    allowed = {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): (
            _rebuild_parameter_with_state
        ),
        ("_codecs", "encode"): _codecs_encode,
    }
    # Protocol <= 2 pickles written by Python 3 name builtins `__builtin__`.
    for module in ("builtins", "__builtin__"):
        allowed[(module, "set")] = _set_builder(set)
        allowed[(module, "frozenset")] = _set_builder(frozenset)
        allowed[(module, "bytes")] = _empty_bytes
    stand_ins = {
        key: _Builder(f"{key[0]}.{key[1]}", function)
        for key, function in allowed.items()
    }
    for name, storage_type in STORAGE_TYPES.items():
        stand_ins[("torch", name)] = storage_type
    return stand_ins


# (module, name) -> stand-in. Matched exactly: dotted names such as
# `OrderedDict.fromkeys` (protocol 4) are refused like any other.
ALLOWED_GLOBALS = _allowlist()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only `ALLOWED_GLOBALS`.

    Args:
        file: binary file object positioned at a pickle.
        source: description of the file for error messages.
        persistent_load: function mapping a persistent id to an object,
            or `None` if the pickle must not contain persistent ids.
    """

    def __init__(self, file, source, persistent_load=None):
        super().__init__(file, encoding="utf-8")
        self._source = source
        self._persistent_load = persistent_load

    def find_class(self, module, name):
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is None:
            raise UnsafeCheckpointError(f"{module}.{name}", self._source)
        return stand_in

    def persistent_load(self, pid):
        if self._persistent_load is None:
            raise ValueError(f"unexpected persistent id {pid!r:.80}")
        return self._persistent_load(pid)


def unpickle(file, source, persistent_load=None):
    """Reads one pickle from `file` with `RestrictedUnpickler`.

    Args:
        file: binary file object positioned at a pickle.
        source: description of the file for error messages.
        persistent_load: see `RestrictedUnpickler`.

    Returns:
        The unpickled object; tensors in it are `LazyTensor`s.

    Raises:
        UnsafeCheckpointError: if the pickle references a global outside
            `ALLOWED_GLOBALS`.
        ValueError: if the pickle is truncated or corrupt.
    """
    try:
        return RestrictedUnpickler(file, source, persistent_load).load()
    except UnsafeCheckpointError:
        raise
    except Exception as error:
        raise ValueError(
            f"Cannot read {source}: the pickle is truncated or corrupt "
            f"({type(error).__name__}: {error})."
        ) from error
