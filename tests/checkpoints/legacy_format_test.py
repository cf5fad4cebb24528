"""Legacy-format details that torch 2.x no longer writes, crafted by hand."""

import pickle

import numpy as np
import pytest

from keras_eca import checkpoints

_MAGIC = 0x1950A86A20F9469CFC6C


def _str(text):
    """BINUNICODE opcode."""
    return b"X" + len(text).to_bytes(4, "little") + text.encode()


def _ints(*values):
    """A tuple of small ints: MARK, BININT1..., TUPLE."""
    return b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"


def _tensor(rebuild, storage_class, key, location, numel, view, size, stride):
    """A tensor on a legacy storage persistent id (view: opcodes or N)."""
    return (
        f"ctorch._utils\n{rebuild}\n(".encode()
        + b"("
        + _str("storage")
        + f"ctorch\n{storage_class}\n".encode()
        + _str(key)
        + _str(location)
        + b"K"
        + bytes([numel])
        + view
        + b"tQ"  # TUPLE, BINPERSID
        + b"K\x00"  # storage_offset
        + _ints(*size)
        + _ints(*stride)
        + (
            b"\x89ccollections\nOrderedDict\n)R"  # requires_grad, hooks
            if rebuild == "_rebuild_tensor_v2"
            else b""
        )
        + b"tR"  # TUPLE, REDUCE
    )


def _legacy_file(object_pickle, storages, little_endian):
    """Header pickles, the object, the keys, then each storage's data."""
    order = "little" if little_endian else "big"
    sys_info = {"protocol_version": 1001, "little_endian": little_endian}
    parts = [pickle.dumps(v, protocol=2) for v in (_MAGIC, 1001, sys_info)]
    parts += [object_pickle, pickle.dumps(list(storages), protocol=2)]
    for array in storages.values():
        dtype = array.dtype.newbyteorder("<" if little_endian else ">")
        parts.append(array.size.to_bytes(8, order, signed=True))
        parts.append(array.astype(dtype).tobytes())
    return b"".join(parts)


@pytest.mark.parametrize("little_endian", [True, False])
def test_storage_views_old_rebuild_and_byte_order(tmp_path, little_endian):
    # "w": a tensor on the slice [2:5] of an 8-float CUDA storage, as
    # torch < 1.0 wrote storage views; "n": `_rebuild_tensor` (4 args).
    view = b"(" + _str("view") + b"K\x02K\x03t"
    object_pickle = (
        b"\x80\x02}("
        + _str("w")
        + _tensor(
            "_rebuild_tensor_v2",
            "FloatStorage",
            "root",
            "cuda:0",
            8,
            view,
            size=(3,),
            stride=(1,),
        )
        + _str("n")
        + _tensor(
            "_rebuild_tensor",
            "LongStorage",
            "count",
            "cpu",
            1,
            b"N",
            size=(),
            stride=(),
        )
        + b"u."  # SETITEMS, STOP
    )
    storages = {
        "count": np.array([12], dtype=np.int64),
        "root": np.arange(8, dtype=np.float32) / 4,
    }
    path = tmp_path / "torch_0_4.pth.tar"
    path.write_bytes(_legacy_file(object_pickle, storages, little_endian))

    loaded = checkpoints.load_checkpoint(path)

    np.testing.assert_array_equal(loaded["w"], [0.5, 0.75, 1.0])
    assert loaded["w"].dtype == np.float32
    assert loaded["n"].dtype == np.int64 and loaded["n"].shape == ()
    assert loaded["n"] == 12
