"""Hostile and malformed checkpoint files, and a bounded way to load them.

Each `CASES` entry writes one crafted file that once crashed, hung or
ballooned the loader (issue 11), and says what `load_checkpoint` must
raise instead. `run_cases` loads them in a child process, one after the
other, and reports per file: the exception, its message, the wall time and
the peak of traced memory (tracemalloc sees numpy's buffers too).

    python -m tests.checkpoints.hostile             # prints the table
    python -m tests.checkpoints.hostile --isolated  # a child per file,
        # with a time limit and an address-space cap, e.g. to measure an
        # older version: --package-root OLD_CHECKOUT
"""

import copyreg
import dataclasses
import json
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

PREFIX = "archive/"


# --- a tiny pickle assembler --------------------------------------------


def value(obj):
    """The opcodes that push a plain value (no PROTO, STOP or memo)."""
    return pickletools.optimize(pickle.dumps(obj, protocol=2))[2:-1]


def global_(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def storage_pid(key, numel, storage="FloatStorage"):
    return (
        b"("
        + value("storage")
        + global_("torch", storage)
        + value(key)
        + value("cpu")
        + value(numel)
        + b"tQ"
    )


def tensor(key, numel, size, stride, offset=0, storage="FloatStorage"):
    """`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`."""
    return (
        global_("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage_pid(key, numel, storage)
        + value(offset)
        + value(tuple(size))
        + value(tuple(stride))
        + b"\x89"
        + global_("collections", "OrderedDict")
        + b")R"
        + b"tR"
    )


def state_dict(entries):
    """A pickle of `{name: opcodes}` (values given as opcodes)."""
    body = b"".join(value(name) + ops for name, ops in entries.items())
    return b"\x80\x02}(" + body + b"u."


def write_zip(path, data_pkl, storages=None, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(PREFIX + "data.pkl", data_pkl, compress_type=method)
        archive.writestr(PREFIX + "byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(PREFIX + f"data/{key}", data, compress_type=method)
        archive.writestr(PREFIX + "version", "3\n")
    return path


def write_legacy(path, object_pickle, storages=None):
    storages = storages or {}
    header = b"".join(
        pickle.dumps(v, protocol=2)
        for v in (
            0x1950A86A20F9469CFC6C,
            1001,
            {"protocol_version": 1001, "little_endian": True},
        )
    )
    body = header + object_pickle + pickle.dumps(sorted(storages), protocol=2)
    for key in sorted(storages):
        data = storages[key]
        body += struct.pack("<q", len(data) // 4) + data
    with open(path, "wb") as file:
        file.write(body)
    return path


def _patch_zip_member(path, member, flag_bits=None, method=None):
    """Rewrites the flags or method of one member in both zip headers."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(member).header_offset
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_length] == member.encode():
            break
        central = data.find(b"PK\x01\x02", central + 4)
    for offset, flags_at, method_at in ((local, 6, 8), (central, 8, 10)):
        if flag_bits is not None:
            struct.pack_into("<H", data, offset + flags_at, flag_bits)
        if method is not None:
            struct.pack_into("<H", data, offset + method_at, method)
    open(path, "wb").write(bytes(data))
    return path


# --- the cases -------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One crafted file and what loading it must raise.

    Attributes:
        name: short id.
        what: one line on the attack.
        write: `folder -> path` writing the file.
        error: name of the exception class expected.
        match: a substring the message must contain.
        peak_mib: the most traced memory loading it may take.
    """

    name: str
    what: str
    write: object
    error: str = "ValueError"
    match: str = ""
    peak_mib: float = 64


def _deep_tuple_key(depth):
    return b"\x80\x02}" + b")" + b"\x85" * depth + b"K\x01s."


def _deep_tuple_in_frozenset(depth):
    return (
        b"\x80\x04}" + b"(" + b")" + b"\x85" * depth + b"\x91" + b"K\x01s."
    )


def _tuple_dag_key(levels):
    # t = (); t = (t, t) levels times through memo slot 0: 7 bytes a level.
    level = b"h\x00h\x00\x86q\x000"
    return b"\x80\x02}" + b")q\x000" + level * levels + b"h\x00K\x01s."


def _list_dag(levels):
    # l = []; l = [l, l] levels times through memo slot 0.
    return b"]q\x000" + b"(h\x00h\x00lq\x000" * levels + b"h\x00"


def _list_dag_pid(levels):
    return b"\x80\x02}" + value("w") + _list_dag(levels) + b"Qs."


def _list_dag_size(levels):
    return state_dict(
        {
            "w": global_("torch._utils", "_rebuild_tensor_v2")
            + b"("
            + storage_pid("0", 1)
            + value(0)
            + _list_dag(levels)
            + value((1,))
            + b"tR"
        }
    )


def _shared_mapping(count):
    inner = b"}q\x00(" + b"".join(value(i) + value(i) for i in range(count))
    inner += b"u"
    outer = b"".join(value(f"k{i}") + b"h\x00" for i in range(count))
    return b"\x80\x02}(" + value("first") + inner + outer + b"u."


def _colliding_int_keys(count):
    # 5 + i * (2^61 - 1) all hash to 5: each insert probes all before it.
    body = b"".join(
        value(5 + i * (2**61 - 1)) + value(i) for i in range(count)
    )
    return b"\x80\x02}(" + body + b"u."


def _huge_int_key(repeats):
    # One 4 MB integer, used 2,000 times as a key through the memo.
    data = (2 ** (8 * 4_000_000 - 9)).to_bytes(4_000_000, "little")
    key = b"\x8b" + struct.pack("<i", len(data)) + data + b"q\x00"
    body = b"".join(b"h\x00" + value(i) for i in range(repeats))
    return b"\x80\x02}(" + key + value(0) + body + b"u."


def _view_key_dag(levels):
    dag = b")q\x000" + b"h\x00h\x00\x86q\x000" * levels + b"h\x00"
    view = b"(" + dag + value(0) + value(1) + b"t"
    pid = (
        b"("
        + value("storage")
        + global_("torch", "FloatStorage")
        + value("0")
        + value("cpu")
        + value(1)
        + view
        + b"tQ"
    )
    rebuild = (
        global_("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + pid
        + value(0)
        + value((1,))
        + value((1,))
        + b"tR"
    )
    return state_dict({"w": rebuild})


def _overlapping_records(folder, count, data_bytes):
    """Stored records whose data holds the records after them: each reads
    as the whole rest of the file, so together they are count x its size."""
    names = [f"{PREFIX}data/{i:05d}".encode() for i in range(count)]
    header_bytes = 30 + len(names[0])  # a multiple of 4
    numels = [
        (data_bytes + (count - 1 - i) * header_bytes) // 4 for i in range(count)
    ]
    data_pkl = state_dict(
        {
            f"w{i}": tensor(f"{i:05d}", numel, (1,), (1,))
            for i, numel in enumerate(numels)
        }
    )
    tail = bytes(data_bytes)
    records = []  # (name, crc, size) of each record's data, first first
    for name in reversed(names):  # each record quotes everything after it
        records.insert(0, (name, zlib.crc32(tail), len(tail)))
        tail = _local_record(name, tail)
    pkl_name = PREFIX.encode() + b"data.pkl"
    first = _local_record(pkl_name, data_pkl)
    body = first + tail
    records.insert(0, (pkl_name, zlib.crc32(data_pkl), len(data_pkl)))
    central, offset = b"", 0
    for name, crc, size in records:
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, size,
            size, len(name), 0, 0, 0, 0, 0, offset,
        ) + name
        # The next header follows this one's name (or data.pkl's data).
        offset += 30 + len(name) + (size if name == pkl_name else 0)
    entries = records
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
        len(central), len(body), 0,
    )
    path = os.path.join(folder, "overlapping_records.pth")
    with open(path, "wb") as file:
        file.write(body + central + end)
    return path


def _local_record(name, data):
    return struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data),
        len(data), len(data), len(name), 0,
    ) + name + data


def _long_legacy_line(folder, length):
    path = os.path.join(folder, "long_line.pth")
    with open(path, "wb") as file:
        file.write(b"\x80\x02c" + b"x" * length)
    return path


def _fanout(entries):
    # 6 state_dict-like keys x 4 levels over one large mapping without
    # tensors: a naive search visits the mapping 6^4 times.
    keys = ["state_dict", "model_state_dict", "model", "model_state",
            "state_dict_ema", "model_ema"]
    big = b"}q\x00(" + b"".join(value(i) + value(i) for i in range(entries))
    big += b"u0"
    ops = b""
    for level in range(1, 5):
        ops += b"}(" + b"".join(value(k) + b"h" + bytes([level - 1]) for k in keys)
        ops += b"u" + b"q" + bytes([level]) + b"0"
    return b"\x80\x02" + big + ops + b"h\x04."


def _object_flood(count):
    return b"\x80\x02(" + b"}" * count + b"l."


def _one_float():
    return {"0": np.ones(1, "<f4").tobytes()}


def _ordered_dict_shadowing():
    # OrderedDict() whose BUILD sets attributes named like dict methods.
    entries = value("w") + tensor("0", 2, (2,), (1,))
    state = value({"get": 1, "items": 2, "values": 3, "_metadata": {}})
    return (
        b"\x80\x02"
        + global_("collections", "OrderedDict")
        + b")R("
        + entries
        + b"u"
        + state
        + b"b."
    )


def _ext_pickle():
    code = 0xE11
    copyreg.add_extension(os.system.__module__, "system", code)
    try:
        return pickle.dumps({"w": os.system}, protocol=2)
    finally:
        copyreg.remove_extension(os.system.__module__, "system", code)


def _zip(name, data_pkl, storages=None, **kwargs):
    return lambda folder: write_zip(
        os.path.join(folder, name), data_pkl(), storages, **kwargs
    )


def _safetensors(name, header, data=b""):
    def write(folder):
        text = json.dumps(header).encode()
        path = os.path.join(folder, name)
        with open(path, "wb") as file:
            file.write(struct.pack("<Q", len(text)) + text + data)
        return path

    return write


def _deflated(folder, name, numel):
    # Zeros deflate about 1000:1.
    path = os.path.join(folder, name)
    data_pkl = state_dict({"w": tensor("0", numel, (numel,), (1,))})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(PREFIX + "data.pkl", data_pkl)
        archive.writestr(PREFIX + "byteorder", "little")
        info = zipfile.ZipInfo(PREFIX + "data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        chunk = bytes(2**24)
        with archive.open(info, "w") as member:
            for _ in range(numel * 4 // len(chunk)):
                member.write(chunk)
    return path


def _stored_then_patched(name, **patch):
    def write(folder):
        path = write_zip(
            os.path.join(folder, name),
            state_dict({"w": tensor("0", 1, (1,), (1,))}),
            _one_float(),
        )
        return _patch_zip_member(path, PREFIX + "data/0", **patch)

    return write


def _many_overlapping(folder):
    # 32 tensors of 1 GiB each, all reading one float.
    big = 2**28
    entries = {f"w{i}": tensor("0", 1, (big,), (0,)) for i in range(32)}
    return write_zip(
        os.path.join(folder, "stride0_32gib.pth"),
        state_dict(entries),
        _one_float(),
    )


CASES = [
    Case(
        "nested_tuple_key_1e6",
        "10^6 nested tuples as a dict key (1 MB): SIGSEGV while hashing",
        _zip("nested_key.pth", lambda: _deep_tuple_key(10**6)),
        match="nests containers more than",
    ),
    Case(
        "nested_tuple_key_1e6_legacy",
        "the same in a legacy-format file",
        lambda folder: write_legacy(
            os.path.join(folder, "nested_key_legacy.pth"),
            _deep_tuple_key(10**6),
        ),
        match="nests containers more than",
    ),
    Case(
        "nested_tuple_in_frozenset_1e6",
        "10^6 nested tuples inside a frozenset (protocol 4)",
        _zip("nested_frozenset.pth", lambda: _deep_tuple_in_frozenset(10**6)),
        match="nests containers more than",
    ),
    Case(
        "nested_tuple_key_1e5",
        "10^5 nested tuples: a raw RecursionError",
        _zip("nested_key_1e5.pth", lambda: _deep_tuple_key(10**5)),
        match="nests containers more than",
    ),
    Case(
        "tuple_dag_key",
        "a 60-level tuple DAG through the memo as a dict key (2^60 parts)",
        _zip("tuple_dag.pth", lambda: _tuple_dag_key(60)),
        match="as a dict key; checkpoints use strings",
    ),
    Case(
        "list_dag_persistent_id",
        "a 40-level list DAG as a persistent id (repr in the error)",
        _zip("list_dag_pid.pth", lambda: _list_dag_pid(40)),
        match="unsupported persistent id",
    ),
    Case(
        "list_dag_tensor_size",
        "a 40-level list DAG as a tensor's size (repr in the error)",
        _zip("list_dag_size.pth", lambda: _list_dag_size(40), _one_float()),
        match="each size entry must be an integer",
    ),
    Case(
        "shared_mapping_30k",
        "30,000 keys sharing one 30,000-entry dict (320 kB): quadratic scan",
        _zip("shared_mapping.pth", lambda: _shared_mapping(30_000)),
        match="contains no tensors",
    ),
    Case(
        "stride0_1gib",
        "a tensor of 2^28 floats with stride 0 over 1 float (1 kB file)",
        _zip(
            "stride0.pth",
            lambda: state_dict({"w": tensor("0", 1, (2**28,), (0,))}),
            _one_float(),
        ),
        error="CheckpointTooLargeError",
        match="overlap or repeat their storages. For a file you trust",
    ),
    Case(
        "stride0_32gib",
        "32 such tensors (32 GiB asked by a 2.7 kB file)",
        _many_overlapping,
        error="CheckpointTooLargeError",
        match="overlap or repeat their storages. For a file you trust",
    ),
    Case(
        "deflate_bomb",
        "a deflated 512 MiB storage record in a 0.5 MB file",
        lambda folder: _deflated(folder, "deflate_bomb.pth", 2**27),
        error="CheckpointTooLargeError",
        match="bring the tensors of",
    ),
    Case(
        "deflated_record",
        "a deflated 32 MiB storage record, within the byte budget",
        lambda folder: _deflated(folder, "deflated.pth", 2**23),
        match="is compressed (zip method 8)",
    ),
    Case(
        "encrypted_member",
        "a storage record flagged as encrypted (RuntimeError before)",
        _stored_then_patched("encrypted.pth", flag_bits=0x1),
        match="is encrypted",
    ),
    Case(
        "unknown_compression",
        "a record with zip method 99 (NotImplementedError before)",
        _stored_then_patched("method99.pth", method=99),
        match="is compressed (zip method 99)",
    ),
    Case(
        "huge_stride",
        "size (1,) with stride 2^70 (OverflowError before)",
        _zip(
            "huge_stride.pth",
            lambda: state_dict({"w": tensor("0", 1, (1,), (2**70,))}),
            _one_float(),
        ),
        match="each stride entry must be an integer",
    ),
    Case(
        "huge_empty_shape",
        "shape (0, 10^30): numpy's bare 'Maximum allowed dimension'",
        _zip(
            "huge_shape.pth",
            lambda: state_dict({"w": tensor("0", 1, (0, 10**30), (1, 1))}),
            _one_float(),
        ),
        match="each size entry must be an integer",
    ),
    Case(
        "ext_opcode",
        "EXT2 with a registered copyreg extension for os.system",
        _zip("ext.pth", _ext_pickle),
        error="UnsafeCheckpointError",
        match="copyreg extension code",
    ),
    Case(
        "safetensors_float_shape",
        "bfloat16 safetensors with shape [2.0] (the numpy path took it)",
        _safetensors(
            "float_shape.safetensors",
            {"w": {"dtype": "BF16", "shape": [2.0], "data_offsets": [0, 4]}},
            bytes(4),
        ),
        match="non-negative integers, got [2.0]",
    ),
    Case(
        "safetensors_overlap",
        "two bfloat16 safetensors entries over the same bytes",
        _safetensors(
            "overlap.safetensors",
            {
                "a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
                "b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
            },
            bytes(4),
        ),
        match="overlap or leave gaps",
    ),
    Case(
        "safetensors_bad_metadata",
        "bfloat16 safetensors whose __metadata__ is a list",
        _safetensors(
            "metadata.safetensors",
            {
                "__metadata__": ["x"],
                "w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]},
            },
            bytes(2),
        ),
        match="must map strings to strings",
    ),
    Case(
        "colliding_int_keys",
        "30,000 integer keys with one hash (quadratic dict inserts)",
        _zip("collisions.pth", lambda: _colliding_int_keys(30_000)),
        match="(int) as a dict key",
    ),
    Case(
        "huge_int_key",
        "a 4 MB integer used 2,000 times as a key (hashed each time)",
        _zip("huge_int.pth", lambda: _huge_int_key(2000)),
        match="(int) as a dict key",
    ),
    Case(
        "view_key_dag",
        "a 60-level tuple DAG as a storage view key (hashed by the reader)",
        _zip("view_key.pth", lambda: _view_key_dag(60), _one_float()),
        match="storage view keys must be strings",
    ),
    Case(
        "overlapping_records",
        "200 stored records quoting each other: 200 x 1 MB from a 1 MB file",
        lambda folder: _overlapping_records(folder, 200, 2**20),
        error="CheckpointTooLargeError",
        match="reading storage",
        peak_mib=128,
    ),
    Case(
        "long_legacy_line",
        "a 32 MiB text opcode without a newline (quadratic readline)",
        lambda folder: _long_legacy_line(folder, 32 * 2**20),
        match="not start with a readable pickle",
        peak_mib=160,
    ),
    Case(
        "state_dict_fanout",
        "6 wrapper keys x 4 levels sharing a 100,000-entry mapping",
        _zip("fanout.pth", lambda: _fanout(100_000)),
        match="contains no tensors",
        peak_mib=96,
    ),
    Case(
        "object_flood",
        "a million empty dicts in 1 MB",
        _zip("flood.pth", lambda: _object_flood(1_000_000)),
        match="more than 500000 objects",
        peak_mib=400,
    ),
    Case(
        "safetensors_list_dtype",
        "safetensors dtype [\"F32\"] (TypeError before)",
        _safetensors(
            "list_dtype.safetensors",
            {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}},
            bytes(4),
        ),
        match="unsupported or missing dtype",
    ),
    Case(
        "safetensors_70_dims",
        "safetensors shape of 70 ones (numpy's bare ndim error before)",
        _safetensors(
            "ndim.safetensors",
            {"w": {"dtype": "F32", "shape": [1] * 70, "data_offsets": [0, 4]}},
            bytes(4),
        ),
        match="at most 32 non-negative integers",
    ),
    Case(
        "safetensors_huge_empty",
        "safetensors F64 shape [0, 2^62] (numpy's 'array is too big')",
        _safetensors(
            "huge_empty.safetensors",
            {"w": {"dtype": "F64", "shape": [0, 2**62], "data_offsets": [0, 0]}},
        ),
        match="too large for any array",
    ),
]

# A file that must load: the BUILD of an OrderedDict cannot shadow `get`.
SHADOWING_CASE = Case(
    "ordered_dict_shadowing",
    "a state_dict whose BUILD sets `get`, `items`, `values`",
    _zip(
        "shadowing.pth",
        _ordered_dict_shadowing,
        {"0": np.array([1.5, -2.0], "<f4").tobytes()},
    ),
    error="",
)


# --- running them ----------------------------------------------------------


def _load_each(paths, package_root=None):
    """Child process: loads each file and prints one JSON line per file."""
    import time
    import tracemalloc
    import types

    if package_root:
        # The package without its __init__ (which imports keras).
        package = types.ModuleType("keras_eca")
        package.__path__ = [os.path.join(package_root, "keras_eca")]
        sys.modules["keras_eca"] = package
    from keras_eca import checkpoints

    tracemalloc.start()
    for path in paths:
        print(json.dumps({"path": path, "started": True}), flush=True)
        tracemalloc.reset_peak()
        start = time.perf_counter()
        result = {"path": path, "error": "", "message": ""}
        try:
            loaded = checkpoints.load_checkpoint(path)
            result["loaded"] = {k: v.tolist() for k, v in loaded.items()}
        except Exception as error:
            result["error"] = type(error).__name__
            result["message"] = str(error)[:2000]
            result["is_value_error"] = isinstance(error, ValueError)
        result["seconds"] = time.perf_counter() - start
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        print(json.dumps(result), flush=True)


def run_cases(cases, folder, timeout=600):
    """Writes `cases` into `folder` and loads them in one child process.

    Returns:
        `(results, crash)`: a dict from case name to the child's report,
        and `None` or a description of how the child died (with the case
        it was loading).
    """
    paths = {case.write(folder): case.name for case in cases}
    names = {os.path.abspath(p): n for p, n in paths.items()}
    code = (
        "import sys; from tests.checkpoints import hostile; "
        "hostile._load_each(sys.argv[1:])"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    process = subprocess.run(
        [sys.executable, "-c", code, *map(os.path.abspath, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    results, started = {}, None
    for line in process.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("started"):
            started = names[record["path"]]
        else:
            results[names[record["path"]]] = record
    crash = None
    if process.returncode != 0:
        crash = (
            f"the child exited with {process.returncode} while loading "
            f"{started}: {process.stderr[-2000:]}"
        )
    return results, crash


def _run_isolated(case, folder, seconds, max_memory, package_root):
    import resource
    import time

    path = case.write(folder)
    code = (
        "import sys; from tests.checkpoints import hostile; "
        "hostile._load_each(sys.argv[1:2], sys.argv[2] or None)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))

    start = time.perf_counter()
    try:
        process = subprocess.run(
            [sys.executable, "-c", code, path, package_root or ""],
            capture_output=True,
            text=True,
            timeout=seconds,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        return f"killed after {seconds} s (no answer)"
    elapsed = time.perf_counter() - start
    if process.returncode < 0:
        return f"died of signal {-process.returncode} after {elapsed:.1f} s"
    lines = [l for l in process.stdout.splitlines() if '"seconds"' in l]
    if not lines:
        return f"exit {process.returncode}: {process.stderr[-300:]}"
    record = json.loads(lines[-1])
    message = record["message"].replace(path, "FILE")[:90]
    return (
        f"{record['error'] or 'loaded'} in {record['seconds'] * 1000:.1f} ms, "
        f"peak {record['peak_bytes'] / 2**20:.2f} MiB: {message}"
    )


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--isolated", action="store_true")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--max-memory-gib", type=float, default=6)
    parser.add_argument("--package-root", default=None)
    parser.add_argument("--only", nargs="*", help="case names")
    args = parser.parse_args()
    cases = [
        case
        for case in CASES + [SHADOWING_CASE]
        if not args.only or case.name in args.only
    ]
    with tempfile.TemporaryDirectory() as folder:
        if args.isolated:
            for case in cases:
                result = _run_isolated(
                    case,
                    folder,
                    args.seconds,
                    int(args.max_memory_gib * 2**30),
                    args.package_root,
                )
                print(f"{case.name:<32} {result}", flush=True)
            return
        results, crash = run_cases(cases, folder)
        print(f"{'case':<32} {'size':>10} {'result':<26} {'time':>8} {'peak':>10}")
        for case in cases:
            record = results.get(case.name)
            if record is None:
                print(f"{case.name:<32} (no result)")
                continue
            size = os.path.getsize(record["path"])
            print(
                f"{case.name:<32} {size:>10} "
                f"{record['error'] or 'loaded':<26} "
                f"{record['seconds'] * 1000:>6.1f}ms "
                f"{record['peak_bytes'] / 2**20:>8.2f}MiB"
            )
        if crash:
            print(crash)


if __name__ == "__main__":
    main()
