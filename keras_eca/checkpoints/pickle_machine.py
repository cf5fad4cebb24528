"""A bounded pickle interpreter for checkpoint files.

`pickle.Unpickler` (the C one) cannot be bounded from the outside: a
pickle of 10^6 nested tuples used as a dict key overflows the C stack
while the key is hashed (SIGSEGV), a tuple DAG built through the memo
(each level holds the previous one twice) takes exponential time to hash,
and copyreg's extension registry resolves EXT opcodes without
`find_class`. So checkpoint pickles are run here instead: `pickletools`
decodes the opcodes (stdlib, pure Python) and `PickleMachine` executes
them with limits on

- nesting depth (`MAX_DEPTH`) and the number of objects made
  (`MAX_OBJECTS`) and opcodes run (`MAX_OPCODES`);
- what may be hashed: dict keys and set members must be strings, bytes,
  booleans, `None`, integers below 2^61 (whose hashes never collide), or
  small tuples of these (`MAX_KEY_PARTS`, integers below 2^16). Hashing a
  deep or memo-shared tuple takes exponential time, and integers, floats
  and tuples of large integers have hashes an attacker can make collide
  (quadratic dict inserts); string hashes are salted per process;
- mutation: a container cannot change once it is inside another one, so
  no cycle can be built and each container's depth is final when it is
  used;
- which globals are reached (`find_class`), with EXT*, INST / OBJ /
  NEWOBJ (class instantiation) and out-of-band buffers refused outright.

It builds plain `dict`, `list`, `tuple`, `set`, `frozenset` and
`collections.OrderedDict` objects. `BUILD` on an `OrderedDict` (the
`_metadata` attribute of a state_dict) is checked and dropped, so a pickle
cannot shadow `get` or `items` on what it returns.
"""

import collections
import pickletools

from keras_eca.checkpoints.errors import UnsafeCheckpointError
from keras_eca.checkpoints.errors import describe

# Real checkpoints nest 5-8 levels ({"optimizer": {"state": {0: {...}}}}).
MAX_DEPTH = 64
# A checkpoint makes ~25 objects per tensor: 500,000 is ~20,000 tensors.
MAX_OBJECTS = 500_000
MAX_OPCODES = 4_000_000
# Hashing a tuple visits every part, shared parts once per reference.
MAX_KEY_PARTS = 64
# Distinct integers below 2^61 - 1 (the modulus of int hashes) never
# collide; inside tuples, whose hash mixes its items' hashes, only small
# ones keep a collision out of reach.
MAX_KEY_INT = 2**61 - 2
MAX_TUPLE_KEY_INT = 2**16
HIGHEST_PROTOCOL = 5
_KEY_SCALARS = (str, bytes, bool, type(None))

_CONTAINERS = (dict, list, tuple, set, frozenset)


class PickleRefusedError(ValueError):
    """The pickle does what no checkpoint does, or exceeds a bound."""


class PickleMachine:
    """Runs one pickle's opcodes with bounded depth, size and hashing.

    Args:
        file: binary file object positioned at a pickle; `read` and
            `readline` are used.
        source: description of the file for error messages.
        find_class: `(module, name) -> object` for GLOBAL opcodes.
        persistent_load: `pid -> object` for persistent ids, or `None` if
            the pickle must have none.
        hashed_members: `(callable, args) -> iterable` of the values a
            stand-in callable will hash (dict keys, set members), so
            they are checked before it is called.
    """

    def __init__(
        self, file, source, find_class, persistent_load, hashed_members
    ):
        self._file = file
        self._source = source
        self._find_class = find_class
        self._persistent_load = persistent_load
        self._hashed_members = hashed_members
        self._stack = []
        self._marks = []
        self._memo = {}
        # id -> [depth, parts, sealed] for every container; the containers
        # are kept alive so their ids stay theirs.
        self._info = {}
        self._keep = []
        self._ordered_dicts = set()
        self._objects = 0

    # --- bookkeeping --------------------------------------------------

    def _fail(self, message):
        raise PickleRefusedError(message)

    def _count(self):
        # Every push and MARK: each costs memory for as long as it lives.
        self._objects += 1
        if self._objects > MAX_OBJECTS:
            self._fail(
                f"the pickle makes more than {MAX_OBJECTS} objects, far "
                "more than any checkpoint holds"
            )

    def _adopt(self, children):
        """Seals `children` (now inside a new container); returns the new
        container's `(depth, parts)`."""
        depth, parts = 0, 1
        info_of = self._info.get
        for child in children:
            info = info_of(id(child))
            if info is None:  # a scalar or stand-in: depth 0, one part
                parts += 1
                continue
            info[2] = True
            depth = max(depth, info[0])
            parts += info[1]
        return depth + 1, min(parts, MAX_KEY_PARTS + 1)

    def _register(self, container, shape):
        depth, parts = shape
        if depth > MAX_DEPTH:
            self._fail(
                f"the pickle nests containers more than {MAX_DEPTH} levels "
                "deep, which no checkpoint does"
            )
        self._info[id(container)] = [depth, parts, False]
        self._keep.append(container)
        return container

    def _grow(self, container, children, kind):
        """Adds `children` to an unsealed `container` of type `kind`."""
        info = self._info.get(id(container))
        if type(container) is not kind or info is None:
            self._fail(
                f"the pickle adds items to a {type(container).__name__}, "
                f"not a {kind.__name__} it built"
            )
        if info[2] or any(child is container for child in children):
            self._fail(
                f"the pickle changes a {kind.__name__} after putting it "
                "inside a container (a recursive structure), which no "
                "checkpoint does"
            )
        depth, parts = self._adopt(children)
        info[0] = max(info[0], depth)
        info[1] = min(info[1] + parts - 1, MAX_KEY_PARTS + 1)
        if info[0] > MAX_DEPTH:
            self._register(container, info[:2])

    def _check_key(self, key, what):
        """Refuses a dict key or set member that could be slow to hash."""
        kind = type(key)
        if kind in _KEY_SCALARS or (kind is int and abs(key) <= MAX_KEY_INT):
            return
        if kind is tuple:
            info = self._info.get(id(key))
            if info is None or info[1] <= MAX_KEY_PARTS:
                pending = list(key)  # at most MAX_KEY_PARTS items in all
                while pending:
                    item = pending.pop()
                    if type(item) is tuple:
                        pending.extend(item)
                    elif type(item) not in _KEY_SCALARS and not (
                        type(item) is int and abs(item) < MAX_TUPLE_KEY_INT
                    ):
                        break
                else:
                    return
        self._fail(
            f"the pickle uses {describe(key, 60)} ({kind.__name__}) as a "
            f"{what}; checkpoints use strings, integers below 2^61 and "
            f"tuples of at most {MAX_KEY_PARTS} strings and small integers, "
            "and other keys can take quadratic or exponential time to hash"
        )

    def _push(self, value):
        self._count()
        self._stack.append(value)

    def _pop(self):
        if not self._stack:
            self._fail("the pickle pops from an empty stack")
        return self._stack.pop()

    def _top(self):
        if not self._stack:
            self._fail("the pickle reads from an empty stack")
        return self._stack[-1]

    def _pop_mark(self):
        if not self._marks:
            self._fail("the pickle has no MARK where one is needed")
        items = self._stack
        self._stack = self._marks.pop()
        return items

    # --- containers ---------------------------------------------------

    def _tuple(self, items):
        items = tuple(items)
        if not items:
            return self._push(())
        self._push(self._register(items, self._adopt(items)))

    def _list(self, items):
        items = list(items)
        self._push(self._register(items, self._adopt(items)))

    def _new_dict(self, pairs=()):
        container = self._register({}, (1, 1))
        if pairs:
            self._set_items(container, pairs)
        self._push(container)

    def _set_items(self, container, flat):
        if len(flat) % 2:
            self._fail("the pickle gives a dict an odd number of items")
        if not isinstance(container, dict):
            self._fail(
                f"the pickle sets items on a {type(container).__name__}"
            )
        keys = flat[::2]
        values = flat[1::2]
        for key in keys:
            self._check_key(key, "dict key")
        self._grow(container, keys + values, type(container))
        for key, value in zip(keys, values):
            container[key] = value

    def _add_items(self, container, items):
        items = list(items)
        for item in items:
            self._check_key(item, "set member")
        self._grow(container, items, set)
        container.update(items)

    def _frozenset(self, items):
        items = list(items)
        for item in items:
            self._check_key(item, "set member")
        shape = self._adopt(items)
        self._push(self._register(frozenset(items), shape))

    # --- calls --------------------------------------------------------

    def _reduce(self):
        args = self._pop()
        function = self._pop()
        if type(args) is not tuple:
            self._fail(
                f"the pickle calls {describe(function)} with "
                f"{type(args).__name__} arguments instead of a tuple"
            )
        if not callable(function):
            self._fail(
                f"the pickle calls {describe(function)}, which is not callable"
            )
        for member in self._hashed_members(function, args):
            self._check_key(member, "dict key or set member")
        shape = self._adopt(args)
        result = function(*args)
        if isinstance(result, collections.OrderedDict):
            self._ordered_dicts.add(id(result))
        if isinstance(result, _CONTAINERS):
            self._register(result, shape)
        self._push(result)

    def _build(self):
        state = self._pop()
        target = self._top()
        if id(target) not in self._ordered_dicts:
            self._fail(
                f"the pickle sets the state of a {type(target).__name__} "
                "(a BUILD opcode), which no PyTorch checkpoint does"
            )
        if isinstance(state, tuple) and len(state) == 2:
            state = state[0]
        if state is not None and not (
            isinstance(state, dict) and all(isinstance(k, str) for k in state)
        ):
            self._fail(
                "the pickle sets the attributes of an OrderedDict from a "
                f"{type(state).__name__}"
            )
        self._adopt([state])
        # Attributes such as `_metadata` do not change the weights; they
        # are dropped so that none can shadow a dict method.

    def _global(self, module, name):
        if not (isinstance(module, str) and isinstance(name, str)):
            self._fail("the pickle names a global with non-string parts")
        self._push(self._find_class(module, name))

    def _persistent(self, pid):
        if self._persistent_load is None:
            self._fail(f"unexpected persistent id {describe(pid)}")
        self._adopt([pid])
        self._push(self._persistent_load(pid))

    # --- the loop -----------------------------------------------------

    def run(self):
        """Runs the pickle to its STOP opcode and returns its object."""
        for count, (opcode, arg, _) in enumerate(
            pickletools.genops(self._file)
        ):
            if count >= MAX_OPCODES:
                self._fail(
                    f"the pickle has more than {MAX_OPCODES} opcodes, far "
                    "more than any checkpoint"
                )
            name = opcode.name
            if name == "STOP":
                return self._pop()
            handler = _HANDLERS.get(name)
            if handler is None:
                self._refuse(name, arg)
            handler(self, arg)
        self._fail("the pickle ends before its STOP opcode")

    def _refuse(self, name, arg):
        if name.startswith("EXT"):
            # copyreg's extension registry maps codes to any global.
            raise UnsafeCheckpointError(
                f"copyreg extension code {describe(arg)}", self._source
            )
        if name == "INST":
            module, _, qualname = arg.partition(" ")
            self._find_class(module, qualname)
        what = {
            "INST": "instantiates a class (INST)",
            "OBJ": "instantiates a class (OBJ)",
            "NEWOBJ": "instantiates a class (NEWOBJ)",
            "NEWOBJ_EX": "instantiates a class (NEWOBJ_EX)",
            "NEXT_BUFFER": "uses an out-of-band buffer",
            "READONLY_BUFFER": "uses an out-of-band buffer",
        }.get(name, f"uses the opcode {name}")
        self._fail(f"the pickle {what}, which no PyTorch checkpoint does")


def _py2_string(text):
    # pickletools reads protocol-0..2 byte strings as latin-1; the C
    # unpickler decodes them as UTF-8 (`encoding="utf-8"`), as torch does.
    return text.encode("latin-1").decode("utf-8")


def _memo_put(machine, index):
    if type(index) is not int or index < 0:
        machine._fail(f"the pickle uses the memo index {describe(index)}")
    machine._memo[index] = machine._top()


def _memo_get(machine, index):
    if index not in machine._memo:
        machine._fail(f"the pickle reads the unset memo index {index}")
    machine._push(machine._memo[index])


def _pop_op(machine, _):
    if machine._stack:
        machine._stack.pop()
    else:
        machine._pop_mark()


def _protocol(machine, version):
    if not 0 <= version <= HIGHEST_PROTOCOL:
        machine._fail(f"unsupported pickle protocol {version}")


def _mark(machine, _):
    machine._count()
    machine._marks.append(machine._stack)
    machine._stack = []


_ATOMS = {
    "NONE": lambda arg: None,
    "NEWTRUE": lambda arg: True,
    "NEWFALSE": lambda arg: False,
    "STRING": _py2_string,
    "BINSTRING": _py2_string,
    "SHORT_BINSTRING": _py2_string,
    "BYTEARRAY8": bytearray,
}
for _name in (
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT UNICODE "
    "BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES "
    "BINBYTES8"
).split():
    _ATOMS[_name] = lambda arg: arg


def _atom(convert):
    return lambda machine, arg: machine._push(convert(arg))


def _tuple_of(count):
    def handler(machine, _):
        if len(machine._stack) < count:
            machine._fail("the pickle pops from an empty stack")
        items = machine._stack[len(machine._stack) - count :]
        del machine._stack[len(machine._stack) - count :]
        machine._tuple(items)

    return handler


def _stack_global(machine, _):
    name = machine._pop()
    module = machine._pop()
    machine._global(module, name)


def _append(machine, _):
    item = machine._pop()
    machine._grow(machine._top(), [item], list)
    machine._top().append(item)


def _appends(machine, _):
    items = machine._pop_mark()
    machine._grow(machine._top(), items, list)
    machine._top().extend(items)


def _set_item(machine, _):
    value = machine._pop()
    key = machine._pop()
    machine._set_items(machine._top(), [key, value])


def _set_items_op(machine, _):
    items = machine._pop_mark()
    machine._set_items(machine._top(), items)


def _add_items_op(machine, _):
    items = machine._pop_mark()
    machine._add_items(machine._top(), items)


def _empty_set(machine, _):
    machine._push(machine._register(set(), (1, 1)))


_HANDLERS = {name: _atom(convert) for name, convert in _ATOMS.items()}
_HANDLERS.update(
    {
        "PROTO": _protocol,
        "FRAME": lambda machine, arg: None,
        "MARK": _mark,
        "POP": _pop_op,
        "POP_MARK": lambda machine, arg: machine._pop_mark(),
        "DUP": lambda machine, arg: machine._push(machine._top()),
        "PUT": _memo_put,
        "BINPUT": _memo_put,
        "LONG_BINPUT": _memo_put,
        "MEMOIZE": lambda machine, arg: _memo_put(machine, len(machine._memo)),
        "GET": _memo_get,
        "BINGET": _memo_get,
        "LONG_BINGET": _memo_get,
        "EMPTY_TUPLE": _tuple_of(0),
        "TUPLE1": _tuple_of(1),
        "TUPLE2": _tuple_of(2),
        "TUPLE3": _tuple_of(3),
        "TUPLE": lambda machine, arg: machine._tuple(machine._pop_mark()),
        "EMPTY_LIST": lambda machine, arg: machine._list([]),
        "LIST": lambda machine, arg: machine._list(machine._pop_mark()),
        "APPEND": _append,
        "APPENDS": _appends,
        "EMPTY_DICT": lambda machine, arg: machine._new_dict(),
        "DICT": lambda machine, arg: machine._new_dict(machine._pop_mark()),
        "SETITEM": _set_item,
        "SETITEMS": _set_items_op,
        "EMPTY_SET": _empty_set,
        "ADDITEMS": _add_items_op,
        "FROZENSET": lambda machine, arg: machine._frozenset(
            machine._pop_mark()
        ),
        "GLOBAL": lambda machine, arg: machine._global(
            *(arg.split(" ", 1) if " " in arg else (arg, ""))
        ),
        "STACK_GLOBAL": _stack_global,
        "REDUCE": lambda machine, arg: machine._reduce(),
        "BUILD": lambda machine, arg: machine._build(),
        "PERSID": lambda machine, arg: machine._persistent(arg),
        "BINPERSID": lambda machine, arg: machine._persistent(
            machine._pop()
        ),
    }
)
del _name
