"""Restricted unpickling of PyTorch checkpoint pickles, without torch.

A PyTorch checkpoint pickle rebuilds tensors by calling globals such as
`torch._utils._rebuild_tensor_v2`. The pickle runs in the bounded
interpreter of `keras_eca.checkpoints.pickle_machine`, whose `find_class`
never imports anything: it maps the few globals in `ALLOWED_GLOBALS` to
inert stand-ins defined here, and refuses every other one with
`UnsafeCheckpointError` before it is looked up.

The stand-ins are pure data builders. Calling one only type-checks its
arguments and records them (`LazyTensor`) or builds a plain container; they
accept no keyword arguments, are not classes (so `NEWOBJ` cannot
instantiate them), and, like the storages and tensors handed out, refuse
`BUILD` (`__setstate__`), so a pickle cannot rewrite their fields either.
The containers they build are plain Python ones (`BUILD` on an
`OrderedDict` only sets data attributes, such as a state_dict's
`_metadata`, which is dropped). Tensor bytes are read only later, when
`LazyTensor.to_numpy` is called; every offset, size and stride is checked
against the storage then, and the bytes all tensors of a file produce are
bounded by a `ByteBudget` (tensors with overlapping strides could
otherwise turn a 1 kB file into gigabytes).
"""

import collections
import math

import numpy as np

from keras_eca.checkpoints import pickle_machine
from keras_eca.checkpoints.errors import CheckpointTooLargeError
from keras_eca.checkpoints.errors import UnsafeCheckpointError
from keras_eca.checkpoints.errors import describe

# numpy 1.x allows at most 32 dimensions (numpy 2: 64).
MAX_NDIM = 32
# Keeps every byte offset inside numpy's int64 arithmetic.
MAX_EXTENT = 2**62
# Tensors may produce at most this many times their storages' bytes (a
# bfloat16 storage widens to float32; a few tensors may share one)...
BUDGET_FACTOR = 4
# ... plus this much, so that small files may hold `expand`ed tensors ...
BUDGET_SLACK = 64 * 2**20
# ... and never more than this in all, unless the caller raises it.
DEFAULT_MAX_BYTES = 32 * 2**30


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


class ByteBudget:
    """The bytes the tensors of one checkpoint file may still produce.

    Args:
        file_bytes: the file's size; its storages hold at most this much.
        max_bytes: the limit, or `None` for `BUDGET_FACTOR * file_bytes +
            BUDGET_SLACK`, at most `DEFAULT_MAX_BYTES`.
        source: description of the file for error messages.
    """

    def __init__(self, file_bytes, max_bytes=None, source="the file"):
        self._default = max_bytes is None
        if self._default:
            max_bytes = min(
                BUDGET_FACTOR * file_bytes + BUDGET_SLACK, DEFAULT_MAX_BYTES
            )
        self.limit = self.left = max_bytes
        self._file_bytes = file_bytes
        self._source = source

    def take(self, nbytes, what):
        """Reserves `nbytes` for `what`, or raises CheckpointTooLargeError."""
        if nbytes <= self.left:
            self.left -= nbytes
            return
        if not self._default:
            reason = f"more than max_bytes={self.limit}"
        else:
            reason = (
                f"more than the {self.limit} bytes allowed for a file of "
                f"{self._file_bytes} bytes ({BUDGET_FACTOR} x its size + "
                f"{BUDGET_SLACK // 2**20} MiB, at most "
                f"{DEFAULT_MAX_BYTES // 2**30} GiB): its tensors overlap or "
                "repeat their storages. For a file you trust, pass a larger "
                "`max_bytes=` to `keras_eca.checkpoints.load_checkpoint`"
            )
        raise CheckpointTooLargeError(
            f"reading {what} would bring the tensors of {self._source} to "
            f"{self.limit - self.left + nbytes} bytes, {reason}"
        )


class Storage(_Inert):
    """A storage named by a persistent id; its bytes are read on demand.

    Args:
        key: the storage key in the file.
        storage_type: a `StorageType`.
        numel: number of elements the pickle declares.
        read: function returning the storage's elements as a 1-D numpy
            array of `storage_type.raw_dtype` in native byte order.
        budget: the file's `ByteBudget`, or `None` for no bound.
        owns_data: whether reading it allocates its bytes (a root
            storage), charged to `budget`; a view slices its root's.
    """

    __slots__ = (
        "_array",
        "_read",
        "budget",
        "key",
        "numel",
        "owns_data",
        "storage_type",
    )

    def __init__(
        self, key, storage_type, numel, read, budget=None, owns_data=True
    ):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        self._read = read
        self._array = None
        self.budget = budget
        self.owns_data = owns_data

    def __repr__(self):
        return f"<storage {describe(self.key, 40)}>"

    def array(self):
        """Returns the elements as a 1-D array (read once, then cached)."""
        if self._array is None:
            if self.owns_data and self.budget is not None:
                # Zip records can overlap in a crafted archive: the bytes
                # read may add up to more than the file.
                self.budget.take(
                    self.numel * self.storage_type.itemsize,
                    f"storage {describe(self.key, 60)}",
                )
            array = self._read()
            if array.shape != (self.numel,):
                raise CorruptTensorError(
                    f"storage {describe(self.key, 60)} holds {array.size} "
                    "elements but "
                    f"the pickle declares {self.numel}"
                )
            self._array = array
        return self._array


def check_int(value, what, minimum=0, maximum=MAX_EXTENT):
    """Returns `value` if it is an int in [minimum, maximum], else raises
    ValueError."""
    if type(value) is not int or not minimum <= value <= maximum:
        raise ValueError(
            f"{what} must be an integer in [{minimum}, {maximum}], got "
            f"{describe(value)}"
        )
    return value


def _check_shape(values, what):
    if not isinstance(values, (tuple, list)) or len(values) > MAX_NDIM:
        raise ValueError(
            f"{what} must be a tuple of at most {MAX_NDIM} integers, "
            f"got {describe(values)}"
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
        # The bytes of the array with every empty dimension counted as 1
        # must fit numpy's int64 size arithmetic (16: the widest item).
        if math.prod(max(n, 1) for n in self.size) * 16 > MAX_EXTENT:
            raise ValueError(f"size {self.size} is too large for any tensor")

    def __repr__(self):
        return f"<tensor of size {self.size}>"

    def to_numpy(self):
        """Copies the tensor out of its storage.

        Returns:
            A C-contiguous numpy array that owns its data (bfloat16 as
            float32, bool as bool).

        Raises:
            CorruptTensorError: if the tensor reaches outside its storage.
            CheckpointTooLargeError: if the file's `ByteBudget` is spent.
            ValueError: if the storage cannot be read.
        """
        storage_type = self.storage.storage_type
        numel = math.prod(self.size)
        last = self.offset + sum(
            (n - 1) * s for n, s in zip(self.size, self.stride) if n
        )
        if numel and last >= self.storage.numel:
            raise CorruptTensorError(
                f"a tensor of size {self.size}, stride {self.stride} and "
                f"offset {self.offset} needs {last + 1} elements but "
                f"storage {describe(self.storage.key, 60)} holds "
                f"{self.storage.numel}"
            )
        if self.storage.budget is not None:
            out_itemsize = 4 if storage_type.convert is not None else (
                storage_type.itemsize
            )
            self.storage.budget.take(
                numel * out_itemsize, f"a tensor of size {self.size}"
            )
        flat = self.storage.array()
        if numel == 0:
            out = np.zeros(self.size, dtype=flat.dtype)
        else:
            view = np.lib.stride_tricks.as_strided(
                flat[self.offset :],
                shape=self.size,
                # A dimension of size 1 never steps: its stride may be any.
                strides=tuple(
                    s * flat.itemsize if n > 1 else 0
                    for n, s in zip(self.size, self.stride)
                ),
                writeable=False,
            )
            out = np.array(view, copy=True, order="C")
        if storage_type.convert is not None:
            out = storage_type.convert(out)
        return out


def _no_members(*args):
    return ()


class _Builder(_Inert):
    """A callable stand-in for an allowed global (positional args only).

    Args:
        name: the global's `module.name`.
        function: what a call runs.
        hashed_members: `(*args) -> iterable` of the values the call will
            hash (dict keys, set members), checked before it runs.
    """

    __slots__ = ("_function", "_name", "hashed_members")

    def __init__(self, name, function, hashed_members=_no_members):
        self._name = name
        self._function = function
        self.hashed_members = hashed_members

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


def _pair_keys(*args):
    if len(args) != 1 or not isinstance(args[0], (list, tuple)):
        return ()
    return [
        item[0]
        for item in args[0]
        if isinstance(item, (list, tuple)) and len(item) == 2
    ]


def _set_members(*args):
    if len(args) != 1 or not isinstance(args[0], (list, tuple)):
        return ()
    return args[0]


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
    hashed = {
        ("collections", "OrderedDict"): _pair_keys,
    }
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
        hashed[(module, "set")] = _set_members
        hashed[(module, "frozenset")] = _set_members
    stand_ins = {
        key: _Builder(
            f"{key[0]}.{key[1]}", function, hashed.get(key, _no_members)
        )
        for key, function in allowed.items()
    }
    for name, storage_type in STORAGE_TYPES.items():
        stand_ins[("torch", name)] = storage_type
    return stand_ins


# (module, name) -> stand-in. Matched exactly: dotted names such as
# `OrderedDict.fromkeys` (protocol 4) are refused like any other.
ALLOWED_GLOBALS = _allowlist()


def _hashed_members(function, args):
    if isinstance(function, _Builder):
        return function.hashed_members(*args)
    return ()


def unpickle(file, source, persistent_load=None):
    """Reads one pickle from `file` with `ALLOWED_GLOBALS` only.

    The pickle runs in `pickle_machine.PickleMachine`, so its depth, size
    and hashing work are bounded (see that module).

    Args:
        file: binary file object positioned at a pickle.
        source: description of the file for error messages.
        persistent_load: function mapping a persistent id to an object,
            or `None` if the pickle must not contain persistent ids.

    Returns:
        The unpickled object; tensors in it are `LazyTensor`s.

    Raises:
        UnsafeCheckpointError: if the pickle references a global outside
            `ALLOWED_GLOBALS` or a copyreg extension code.
        ValueError: if the pickle is truncated, corrupt or exceeds a bound.
    """

    def find_class(module, name):
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is None:
            raise UnsafeCheckpointError(
                f"{describe(module, 60)}.{describe(name, 60)}"
                if len(module) + len(name) > 100
                else f"{module}.{name}",
                source,
            )
        return stand_in

    machine = pickle_machine.PickleMachine(
        file, source, find_class, persistent_load, _hashed_members
    )
    try:
        return machine.run()
    except UnsafeCheckpointError:
        raise
    except pickle_machine.PickleRefusedError as error:
        raise ValueError(
            f"Cannot read {source}: {error}."  # our own, bounded message
        ) from error
    except Exception as error:
        raise ValueError(
            f"Cannot read {source}: the pickle is truncated or corrupt, or not "
            f"a checkpoint ({type(error).__name__}: "
            f"{describe(str(error), 300)})."
        ) from error
