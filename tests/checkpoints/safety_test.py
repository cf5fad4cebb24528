"""Malicious pickles are refused before anything in them runs."""

import builtins
import os
import pickle
import re
import shlex

import numpy as np
import pytest

from keras_eca import checkpoints
from keras_eca.checkpoints import unpickler
from tests.checkpoints import helpers

_MAGIC = 0x1950A86A20F9469CFC6C
_SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}


class _ShellPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class _ExecPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


_PAYLOADS = {
    "os.system": (_ShellPayload, f"{os.system.__module__}.system"),
    "builtins.exec": (_ExecPayload, "builtins.exec"),
}


def _legacy_file(object_pickle):
    header = b"".join(
        pickle.dumps(value, protocol=2) for value in (_MAGIC, 1001, _SYS_INFO)
    )
    return header + object_pickle + pickle.dumps([], protocol=2)


def _write(tmp_path, container, object_pickle):
    path = tmp_path / f"evil_{container}.pth"
    if container == "plain":
        path.write_bytes(object_pickle)
    elif container == "legacy":
        path.write_bytes(_legacy_file(object_pickle))
    else:
        valid = tmp_path / "valid.pth"
        checkpoints.save_state_dict_pth({"w": np.ones(2, "float32")}, valid)
        helpers.rewrite_zip(valid, path, replace={"/data.pkl": object_pickle})
    return path


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("container", ["zip", "legacy", "plain"])
@pytest.mark.parametrize("payload", sorted(_PAYLOADS))
def test_code_execution_is_refused(tmp_path, payload, container, protocol):
    payload_class, global_name = _PAYLOADS[payload]
    if protocol < 3:  # Python 2 module names, as the pickler writes them.
        global_name = global_name.replace("builtins.", "__builtin__.")
    marker = tmp_path / "pwned"
    evil = {"conv.weight": payload_class(marker), "epoch": 1}
    object_pickle = pickle.dumps(evil, protocol=protocol)
    path = _write(tmp_path, container, object_pickle)

    with pytest.raises(checkpoints.UnsafeCheckpointError) as info:
        checkpoints.load_checkpoint(path)

    message = str(info.value)
    assert f"`{global_name}`" in message
    assert str(path) in message
    assert "nothing from the file was executed" in message
    assert info.value.global_name == global_name
    assert isinstance(info.value, ValueError)
    assert not marker.exists()
    # The payload is live: a plain pickle.loads would have run it.
    if container == "plain" and protocol == 2:
        pickle.loads(object_pickle)
        assert marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        ("argparse", "Namespace"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("collections", "OrderedDict.fromkeys"),  # dotted, protocol 4
        ("builtins", "getattr"),
        ("copyreg", "_reconstructor"),
    ],
)
def test_other_globals_are_refused(tmp_path, module, name):
    object_pickle = (
        b"\x80\x04"
        + b"\x8c"
        + bytes([len(module)])
        + module.encode()
        + b"\x8c"
        + bytes([len(name)])
        + name.encode()
        + b"\x93)R."  # STACK_GLOBAL, EMPTY_TUPLE, REDUCE, STOP
    )
    path = _write(tmp_path, "zip", object_pickle)

    with pytest.raises(
        checkpoints.UnsafeCheckpointError, match=re.escape(f"`{module}.{name}`")
    ):
        checkpoints.load_checkpoint(path)


def _tensor_pickle(offset=0, size=(4,), stride=(1,), after=b""):
    """data.pkl of {"w": tensor on storage "0" (4 floats)}, then `after`."""

    def ints(values):
        return b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"

    return (
        b"\x80\x02}X\x01\x00\x00\x00w"
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
        + b"K"
        + bytes([offset])
        + ints(size)
        + ints(stride)
        + b"\x89ccollections\nOrderedDict\n)RtR"
        + after
        + b"s."
    )


def _zip_with(tmp_path, data_pkl):
    valid = tmp_path / "valid.pth"
    checkpoints.save_state_dict_pth({"w": np.arange(4, dtype="float32")}, valid)
    path = tmp_path / "crafted.pth"
    helpers.rewrite_zip(valid, path, replace={"/data.pkl": data_pkl})
    return path


def test_crafted_tensor_pickle_baseline(tmp_path):
    path = _zip_with(tmp_path, _tensor_pickle(offset=1, size=(2,), stride=(2,)))

    np.testing.assert_array_equal(
        checkpoints.load_checkpoint(path)["w"], [1, 3]
    )


@pytest.mark.parametrize(
    "data_pkl, match",
    [
        # Reads past the end of the storage.
        (_tensor_pickle(offset=3, size=(2,)), "needs 5 elements"),
        (_tensor_pickle(size=(2, 2), stride=(9, 1)), "needs 11 elements"),
        (_tensor_pickle(size=(2,), stride=(1, 1)), "different lengths"),
        # BUILD on a rebuilt tensor, trying to move its offset afterwards.
        (
            _tensor_pickle(
                after=b"N}X\x06\x00\x00\x00offsetJ\x00\x00\x00\x01s\x86b"
            ),
            "sets the state of a LazyTensor",
        ),
        # Calling a storage class, instantiating a stand-in with NEWOBJ.
        (b"\x80\x02ctorch\nFloatStorage\n(K\x03tR.", "not callable"),
        (b"\x80\x02ccollections\nOrderedDict\n)\x81.", "NEWOBJ"),
        # BUILD on a stand-in, e.g. to replace the function it wraps.
        (
            (
                b"\x80\x02ctorch._utils\n_rebuild_tensor\nN}X\x09\x00\x00\x00"
                b"_functionctorch._utils\n_rebuild_parameter\ns\x86b."
            ),
            "sets the state of a _Builder",
        ),
        # Builders only build data, from data.
        (b"\x80\x02cbuiltins\nset\n(K\x01K\x02tR.", "too many values"),
        (
            b"\x80\x02c_codecs\nencode\n(X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13tR.",
            "latin-1",
        ),
        (
            b"\x80\x02ctorch._utils\n_rebuild_parameter\n(K\x01\x89NtR.",
            "must wrap a tensor",
        ),
        (b"\x80\x02X\x01\x00\x00\x00xQ.", "unsupported persistent id"),
    ],
)
def test_allowed_globals_cannot_be_abused(tmp_path, data_pkl, match):
    path = _zip_with(tmp_path, data_pkl)

    with pytest.raises(ValueError, match=match) as info:
        checkpoints.load_checkpoint(path)
    assert "crafted.pth" in str(info.value)
    assert not isinstance(info.value, checkpoints.UnsafeCheckpointError)


def test_allowlist_holds_only_inert_stand_ins():
    for (module, name), stand_in in unpickler.ALLOWED_GLOBALS.items():
        assert isinstance(stand_in, unpickler._Inert), (module, name)
        assert not isinstance(stand_in, type), (module, name)
        assert not hasattr(stand_in, "__dict__"), (module, name)
    modules = {module for module, _ in unpickler.ALLOWED_GLOBALS}
    assert modules == {
        "collections",
        "torch",
        "torch._utils",
        "_codecs",
        "builtins",
        "__builtin__",
    }
