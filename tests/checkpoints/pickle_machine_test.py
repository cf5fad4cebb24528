"""The bounded pickle interpreter reads honest pickles as pickle.loads does."""

import collections
import io
import pickle

import pytest

from keras_eca.checkpoints import errors
from keras_eca.checkpoints import pickle_machine
from keras_eca.checkpoints import unpickler


def _load(data):
    return unpickler.unpickle(io.BytesIO(data), "test")


_SHARED = [1, 2]
_HONEST = {
    "scalars": [0, 1, -1, 255, 256, 2**31, -(2**31) - 1, 2**100, -(2**70)],
    "floats": [0.0, -1.5, 1e300, float("inf")],
    "flags": (True, False, None),
    "text": ["", "é", "Ωmega", "a\nb", "x" * 300],
    "bytes": [b"", b"\x00\xff", bytes(range(256))],
    "nested": {"a": {"b": [({"c": ()},)]}},
    "sets": [set(), {1, "x", (2, 3)}, frozenset({4, "y", (5, ("z",))})],
    "tuple_keys": {(1, "a"): 1, (): 2, (1, (2, (3,))): 3},
    "int_keys": {0: "zero", -5: "minus", 2**40: "big"},
    "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
    "shared": (_SHARED, _SHARED),
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_honest_pickles_read_as_pickle_loads(protocol):
    data = pickle.dumps(_HONEST, protocol=protocol)

    loaded = _load(data)

    assert loaded == pickle.loads(data)
    assert type(loaded["ordered"]) is collections.OrderedDict
    assert list(loaded["ordered"]) == ["z", "a"]
    assert loaded["shared"][0] is loaded["shared"][1]


def test_nesting_up_to_the_bound_reads():
    value = ()
    for _ in range(pickle_machine.MAX_DEPTH - 2):  # + the list and dict
        value = (value,)
    data = pickle.dumps({value: [value]}, protocol=2)

    assert _load(data) == pickle.loads(data)


def test_one_level_deeper_is_refused():
    value = []
    for _ in range(pickle_machine.MAX_DEPTH):
        value = [value]
    with pytest.raises(ValueError, match="more than 64 levels deep"):
        _load(pickle.dumps(value, protocol=2))


def test_depth_counts_items_added_after_creation():
    # A list filled through APPENDS after its own creation.
    inner = []
    for _ in range(pickle_machine.MAX_DEPTH):
        inner = [inner, 1]
    with pytest.raises(ValueError, match="levels deep"):
        _load(pickle.dumps({"x": inner}, protocol=2))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x80\x02]q\x00h\x00a.", "recursive structure"),
        (b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.", "recursive structure"),
        (b"\x80\x02}]K\x01s.", r"uses \[\] \(list\) as a dict key"),
        (b"\x80\x02}}K\x01s.", r"uses \{\} \(dict\) as a dict key"),
        (b"\x80\x02}G?\xf8\x00\x00\x00\x00\x00\x00K\x01s.", r"\(float\) as a dict"),
        (b"\x80\x02}\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x7fK\x01s.", r"\(int\) as a dict"),
        (b"\x80\x02K\x01K\x02a.", "adds items to a int"),
        (b"\x80\x02h\x05.", "unset memo index 5"),
        (b"\x80\x020.", "no MARK"),
        (b"\x80\x02e.", "no MARK"),
        (b"\x80\x02K\x01s.", "pops from an empty stack"),
        (b"\x80\x06N.", "unsupported pickle protocol 6"),
        (b"\x80\x02N", "truncated or corrupt"),
        (b"\x80\x02\xff.", "truncated or corrupt"),
        (b"\x80\x05\x97.", "out-of-band buffer"),
    ],
)
def test_malformed_pickles(data, match):
    with pytest.raises(ValueError, match=match):
        _load(data)


def test_object_count_is_bounded(monkeypatch):
    monkeypatch.setattr(pickle_machine, "MAX_OBJECTS", 1000)
    with pytest.raises(ValueError, match="more than 1000 objects"):
        _load(pickle.dumps(list(range(2000)), protocol=2))


def test_opcode_count_is_bounded(monkeypatch):
    monkeypatch.setattr(pickle_machine, "MAX_OPCODES", 100)
    with pytest.raises(ValueError, match="more than 100 opcodes"):
        _load(b"\x80\x02" + b"N0" * 100 + b"N.")


def test_describe_is_bounded_for_dags():
    value = []
    for _ in range(60):
        value = [value, value]  # 2^60 leaves, 60 objects
    text = errors.describe(value)
    assert len(text) <= 80 and text.startswith("[[")
    assert errors.describe("x" * 10**6, 20) == "'xxxxxxxxxxxxxxxx..."
    assert errors.describe(10**5000) == "<int of 16610 bits>"
