"""Readers for the two PyTorch serialization formats, without torch.

Zip format (`torch.save` default since torch 1.6): a zip archive (stored,
not compressed) whose members share one top folder `<prefix>/`:
`data.pkl` (the pickled object), `data/<key>` (the raw bytes of each
storage), `byteorder` (`little` or `big`; absent in early files, meaning
little) and `version`. Persistent ids in `data.pkl` are
`("storage", storage_type, key, location, numel)`.

Legacy format (torch < 1.6, or `_use_new_zipfile_serialization=False`):
five consecutive pickles -- the magic number `0x1950a86a20f9469cfc6c`, the
protocol version 1001, a `sys_info` dict (`little_endian`, type sizes), the
object, and the sorted list of storage keys -- followed, for each key in
that order, by the element count (8 bytes) and the storage's raw bytes.
Persistent ids are `("storage", storage_type, root_key, location, numel,
view_metadata)`; `view_metadata`, when not `None`, is `(view_key, offset,
numel)` of a storage slice (torch < 1.0).
"""

import io
import os
import zipfile

import numpy as np

from keras_eca.checkpoints import unpickler
from keras_eca.checkpoints.errors import UnsafeCheckpointError
from keras_eca.checkpoints.errors import describe

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
# data.pkl holds names and shapes only: ~1 MB for the largest models.
MAX_PICKLE_BYTES = 256 * 2**20
_ENCRYPTED_FLAG = 0x1


class _BlockReader:
    """Reads consecutive pickles from a file in blocks.

    The pickle interpreter reads one opcode at a time; a read call on the
    file for each would cost more than running the opcode. `tell()` gives
    the position after what was consumed, so the storages that follow the
    last pickle can be found. Reads stop at the end of the file and after
    `MAX_PICKLE_BYTES`, so a length a corrupt pickle merely claims never
    allocates a buffer.
    """

    _BLOCK = 1 << 16

    def __init__(self, file, size):
        self._file = file
        self._origin = file.tell()
        self._size = size
        self._start = self._origin  # file position of _buffer[0]
        self._buffer = b""
        self._offset = 0

    def _fill(self, needed):
        """Makes `needed` unread bytes available, or all that are left."""
        have = len(self._buffer) - self._offset
        if have >= needed:
            return
        end = self._start + len(self._buffer)
        if end - self._origin >= MAX_PICKLE_BYTES:
            raise ValueError(
                f"the pickles at the start of the file are longer than "
                f"{MAX_PICKLE_BYTES} bytes, far more than names and shapes "
                "take"
            )
        self._start += self._offset
        # Doubling keeps a long line or string linear in its length.
        want = min(max(needed - have, have, self._BLOCK), self._size - end)
        self._file.seek(end)
        self._buffer = self._buffer[self._offset :] + self._file.read(want)
        self._offset = 0

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._size
        self._fill(n)
        data = self._buffer[self._offset : self._offset + n]
        self._offset += len(data)
        return data

    def readline(self, limit=-1):
        searched = 0  # unread bytes already searched for a newline
        while True:
            end = self._buffer.find(b"\n", self._offset + searched)
            have = len(self._buffer) - self._offset
            if end >= 0 or self._start + len(self._buffer) >= self._size:
                break
            searched = have
            self._fill(have + 1)
        stop = len(self._buffer) if end < 0 else end + 1
        return self.read(stop - self._offset)

    def tell(self):
        return self._start + self._offset


class _StorageTable:
    """Turns persistent ids into `unpickler.Storage` objects.

    Args:
        read: `(key, storage_type, numel) -> array` of a root storage.
        budget: the file's `unpickler.ByteBudget`, shared by its storages.
    """

    def __init__(self, read, budget):
        self._read = read
        self._budget = budget
        self.roots = {}
        self._views = {}

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ValueError(
                f"unsupported persistent id {describe(pid)} (only tensor "
                "storages are supported, not pickled modules)"
            )
        if len(pid) == 5:
            _, storage_type, key, _location, numel = pid
            view = None
        elif len(pid) == 6:
            _, storage_type, key, _location, numel, view = pid
        else:
            raise ValueError(
                f"malformed storage persistent id {describe(pid)}"
            )
        if not isinstance(storage_type, unpickler.StorageType):
            raise ValueError(
                f"storage {describe(key, 40)} has no typed storage class, got "
                f"{describe(storage_type, 40)}"
            )
        if not isinstance(key, str):
            raise ValueError(
                f"storage keys must be strings, got {describe(key, 40)}"
            )
        numel = unpickler.check_int(
            numel, f"numel of storage {describe(key, 60)}"
        )
        root = self.roots.get(key)
        if root is None:
            root = unpickler.Storage(
                key,
                storage_type,
                numel,
                lambda: self._read(key, storage_type, numel),
                self._budget,
            )
            self.roots[key] = root
        elif root.storage_type is not storage_type or root.numel != numel:
            raise ValueError(
                f"storage {describe(key, 60)} is declared twice, as "
                f"{root.numel} x {root.storage_type!r} and as {numel} x "
                f"{storage_type!r}"
            )
        if view is None:
            return root
        return self._view(root, view)

    def _view(self, root, view):
        if not isinstance(view, tuple) or len(view) != 3:
            raise ValueError(f"malformed storage view {describe(view)}")
        view_key, offset, numel = view
        if not isinstance(view_key, str):  # it is hashed below
            raise ValueError(
                f"storage view keys must be strings, got {describe(view_key)}"
            )
        unpickler.check_int(offset, "storage view offset")
        unpickler.check_int(numel, "storage view size")
        if offset + numel > root.numel:
            raise ValueError(
                f"storage view {describe(view_key, 40)} "
                f"[{offset}:{offset + numel}] is outside storage "
                f"{describe(root.key, 60)} ({root.numel} elements)"
            )
        if view_key not in self._views:
            self._views[view_key] = unpickler.Storage(
                f"{root.key}[{offset}:{offset + numel}]",
                root.storage_type,
                numel,
                lambda: root.array()[offset : offset + numel],
                self._budget,
                owns_data=False,
            )
        return self._views[view_key]


def _to_array(data, storage_type, byteorder):
    raw = storage_type.raw_dtype.newbyteorder(
        "<" if byteorder == "little" else ">"
    )
    array = np.frombuffer(data, dtype=raw)
    if not raw.isnative:
        array = array.astype(raw.newbyteorder("="))
    return array


class TorchZipCheckpoint:
    """Reads a zip-format `torch.save` file (see the module docstring).

    Use as a context manager; tensors are read while it is open.

    Args:
        path: the file.
        max_bytes: cap on the bytes its tensors may produce, or `None` for
            `unpickler.DEFAULT_MAX_BYTES`.

    Raises:
        ValueError: if the archive is corrupt or not a torch checkpoint.
    """

    def __init__(self, path, max_bytes=None):
        self._path = path
        self._size = os.path.getsize(path)
        self._budget = unpickler.ByteBudget(self._size, max_bytes, repr(path))
        try:
            # zipfile raises many types on hostile archives (struct.error,
            # UnicodeDecodeError, NotImplementedError, ...).
            self._zip = zipfile.ZipFile(path)
        except Exception as error:
            raise ValueError(
                f"Cannot read {path!r}: it starts like a zip archive "
                "(zip-format torch checkpoint) but is corrupt: "
                f"{describe(str(error), 200)}."
            ) from error
        try:
            self._prefix = self._find_prefix()
            self._byteorder = self._read_byteorder()
        except BaseException:
            self._zip.close()
            raise

    def _find_prefix(self):
        names = self._zip.namelist()
        prefixes = sorted(
            name[: -len("data.pkl")]
            for name in names
            if name.endswith("/data.pkl") and name.count("/") == 1
        )
        if not prefixes:
            raise ValueError(
                f"Cannot read {self._path!r}: the zip archive has no "
                "'<prefix>/data.pkl' record, so it is not a torch checkpoint "
                f"or it is truncated. Its members: {names[:10]}."
            )
        if len(prefixes) > 1:
            raise ValueError(
                f"Cannot read {self._path!r}: the zip archive has several "
                f"data.pkl records: {prefixes}."
            )
        (prefix,) = prefixes
        if f"{prefix}constants.pkl" in names or any(
            name.startswith(f"{prefix}code/") for name in names
        ):
            raise ValueError(
                f"Cannot read {self._path!r}: it is a TorchScript archive "
                "(torch.jit.save), not a torch.save checkpoint. Save "
                "`model.state_dict()` with torch.save instead."
            )
        return prefix

    def _read_byteorder(self):
        name = f"{self._prefix}byteorder"
        if name not in self._zip.namelist():
            return "little"
        byteorder = self._read_member(name).decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(
                f"Cannot read {self._path!r}: record {name!r} should be "
                f"'little' or 'big', got {describe(byteorder, 40)}."
            )
        return byteorder

    def _member_info(self, name, max_size):
        """The record `name`, once it is known to be safe to read whole."""
        info = self._zip.getinfo(name)
        problem = None
        if info.flag_bits & _ENCRYPTED_FLAG:
            problem = "is encrypted"
        elif info.compress_type != zipfile.ZIP_STORED:
            # torch.save stores records uncompressed; inflating one could
            # turn a small file into gigabytes.
            problem = f"is compressed (zip method {info.compress_type})"
        elif info.file_size != info.compress_size:
            problem = (
                f"declares {info.file_size} bytes stored in "
                f"{info.compress_size}"
            )
        elif info.header_offset + info.compress_size > self._size:
            problem = "reaches past the end of the file"
        elif info.file_size > max_size:
            problem = f"holds {info.file_size} bytes, more than {max_size}"
        if problem is not None:
            raise ValueError(
                f"Cannot read {self._path!r}: record {name!r} {problem}; "
                "torch.save writes uncompressed (stored) records only, so "
                "the file is corrupt or was not written by torch.save."
            )
        return info

    def _read_member(self, name, max_size=MAX_PICKLE_BYTES):
        info = self._member_info(name, max_size)
        try:
            return self._zip.read(info)
        except Exception as error:
            raise ValueError(
                f"Cannot read {self._path!r}: record {name!r} is corrupt or "
                f"truncated: {describe(str(error), 200)}."
            ) from error

    def _read_storage(self, key, storage_type, numel):
        name = f"{self._prefix}data/{key}"
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            raise ValueError(
                f"Cannot read {self._path!r}: data.pkl refers to storage "
                f"{describe(key, 60)} but the archive has no record {name!r}."
            ) from None
        nbytes = numel * storage_type.itemsize
        if info.file_size != nbytes:
            raise ValueError(
                f"Cannot read {self._path!r}: record {name!r} holds "
                f"{info.file_size} bytes but data.pkl declares {numel} "
                f"elements of {storage_type!r} ({nbytes} bytes); the file "
                "is truncated or corrupt."
            )
        data = self._read_member(name, max_size=nbytes)
        return _to_array(data, storage_type, self._byteorder)

    def load(self):
        """Unpickles `data.pkl`.

        Returns:
            The checkpoint object, with `unpickler.LazyTensor` tensors.

        Raises:
            UnsafeCheckpointError: if the pickle references a global
                outside the allowlist.
            ValueError: if the pickle is corrupt.
        """
        name = f"{self._prefix}data.pkl"
        source = f"{self._path!r} (archive member {name!r})"
        table = _StorageTable(self._read_storage, self._budget)
        data = io.BytesIO(self._read_member(name))
        return unpickler.unpickle(data, source, table.persistent_load)

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class TorchLegacyCheckpoint:
    """Reads a legacy-format `torch.save` file (see the module docstring).

    Use as a context manager; tensors are read while it is open.

    Args:
        path: the file.
        max_bytes: cap on the bytes its tensors may produce, or `None` for
            `unpickler.DEFAULT_MAX_BYTES`.

    Raises:
        ValueError: if the file does not start with the legacy magic
            number (not a torch checkpoint).
    """

    def __init__(self, path, max_bytes=None):
        self._path = path
        self._file = open(path, "rb")
        self._size = os.fstat(self._file.fileno()).st_size
        self._budget = unpickler.ByteBudget(self._size, max_bytes, repr(path))
        self._reader = _BlockReader(self._file, self._size)
        self._offsets = {}
        try:
            self._read_header()
        except BaseException:
            self._file.close()
            raise

    def _read_header(self):
        source = repr(self._path)
        try:
            magic = unpickler.unpickle(self._reader, source)
        except UnsafeCheckpointError:
            raise
        except ValueError as error:
            raise ValueError(
                f"Cannot read {self._path!r}: it is neither a zip-format nor "
                "a legacy torch checkpoint nor a safetensors file (it does "
                "not start with a readable pickle)."
            ) from error
        if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(
                f"Cannot read {self._path!r}: it is neither a zip-format nor "
                "a legacy torch checkpoint nor a safetensors file (it starts "
                f"with a pickle of {type(magic).__name__}, not the legacy "
                "torch magic number)."
            )
        version = unpickler.unpickle(self._reader, source)
        if version != LEGACY_PROTOCOL_VERSION:
            raise ValueError(
                f"Cannot read {self._path!r}: unsupported legacy torch "
                f"protocol version {describe(version, 40)} (expected "
                f"{LEGACY_PROTOCOL_VERSION})."
            )
        sys_info = unpickler.unpickle(self._reader, source)
        if not isinstance(sys_info, dict):
            raise ValueError(
                f"Cannot read {self._path!r}: the legacy sys_info record is "
                f"a {type(sys_info).__name__}, not a dict."
            )
        little = sys_info.get("little_endian", True)
        self._byteorder = "little" if little else "big"

    def _scan_storages(self, table, keys):
        source = repr(self._path)
        self._file.seek(self._reader.tell())
        if not isinstance(keys, list) or not all(
            isinstance(k, str) for k in keys
        ):
            raise ValueError(
                f"Cannot read {source}: the storage key record should be a "
                f"list of strings, got {type(keys).__name__}."
            )
        position = self._file.tell()
        for key in keys:
            storage = table.roots.get(key)
            if storage is None:
                raise ValueError(
                    f"Cannot read {source}: storage {describe(key, 60)} is "
                    "listed but no "
                    "tensor uses it; the file is corrupt."
                )
            self._file.seek(position)
            header = self._file.read(8)
            if len(header) != 8:
                raise ValueError(
                    f"Cannot read {source}: the file ends at byte "
                    f"{self._size} before the data of storage "
                    f"{describe(key, 60)}; it is "
                    "truncated."
                )
            numel = int.from_bytes(header, self._byteorder, signed=True)
            if numel != storage.numel:
                raise ValueError(
                    f"Cannot read {source}: storage {describe(key, 60)} "
                    f"holds {numel} "
                    f"elements but the pickle declares {storage.numel}; the "
                    "file is corrupt."
                )
            start = position + 8
            position = start + numel * storage.storage_type.itemsize
            if position > self._size:
                raise ValueError(
                    f"Cannot read {source}: storage {describe(key, 60)} "
                    "needs bytes "
                    f"{start} to {position} but the file has {self._size}; "
                    "it is truncated."
                )
            self._offsets[key] = start
        missing = sorted(set(table.roots) - set(self._offsets))
        if missing:
            raise ValueError(
                f"Cannot read {source}: the pickle uses storages {missing[:5]} "
                "that the file does not contain; it is corrupt."
            )

    def _read_storage(self, key, storage_type, numel):
        self._file.seek(self._offsets[key])
        data = self._file.read(numel * storage_type.itemsize)
        return _to_array(data, storage_type, self._byteorder)

    def load(self):
        """Unpickles the object and locates the storages after it.

        Returns:
            The checkpoint object, with `unpickler.LazyTensor` tensors.

        Raises:
            UnsafeCheckpointError: if the pickle references a global
                outside the allowlist.
            ValueError: if the file is corrupt or truncated.
        """
        source = repr(self._path)
        table = _StorageTable(self._read_storage, self._budget)
        obj = unpickler.unpickle(self._reader, source, table.persistent_load)
        keys = unpickler.unpickle(self._reader, source)
        self._scan_storages(table, keys)
        return obj

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
