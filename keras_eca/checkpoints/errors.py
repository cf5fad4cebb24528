"""Errors raised by `keras_eca.checkpoints`."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint pickle references a global outside the allowlist.

    Raised before that global is looked up or called: nothing from the
    file has been executed. It is a `ValueError`, so code that handles bad
    checkpoints with `except ValueError` handles this one as well.

    Args:
        global_name: the `module.name` the pickle asked for.
        source: the file (and archive member) being read.

    Attributes:
        global_name: the refused `module.name`.
        source: the file (and archive member) being read.
    """

    def __init__(self, global_name, source):
        self.global_name = global_name
        self.source = source
        super().__init__(
            f"Refused to load {source}: its pickle references the global "
            f"`{global_name}`, which is not on the allowlist of tensor and "
            "container builders of keras_eca.checkpoints. Loading stopped "
            "before the global was looked up, so nothing from the file was "
            "executed. Checkpoints that need arbitrary globals (whole pickled "
            "models, custom classes) can only be opened with "
            "`torch.load(..., weights_only=False)`, which runs their code: do "
            "that only for files from a source you trust, then save "
            "`model.state_dict()`."
        )


class CheckpointTooLargeError(ValueError):
    """Reading a checkpoint would produce far more bytes than it stores."""


# What `describe` shows of an untrusted value.
_DESCRIBE_ITEMS = 4
_DESCRIBE_LEVELS = 2
_MAX_INT_BITS = 128


def describe(value, limit=80):
    """A bounded `repr` of an untrusted value, for error messages.

    `repr` of a pickled object can take exponential time (a DAG of tuples
    shares its parts) or hit the recursion limit, and `f"{x!r:.80}"` builds
    the whole text before cutting it. This looks at a few items of at
    most two levels of containers, so its cost does not depend on `value`.

    Args:
        value: anything a checkpoint file produced.
        limit: the most characters returned.

    Returns:
        A string of at most `limit` characters.
    """
    parts = []
    _describe(value, parts, _DESCRIBE_LEVELS, [limit + 1])
    text = "".join(parts)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _describe(value, parts, levels, budget):
    if budget[0] <= 0:
        return
    kind = type(value)
    if kind in (str, bytes, bytearray):
        text = repr(value[: budget[0]])
        if len(value) > budget[0]:
            text += "..."
    elif kind is int:
        text = (
            repr(value)
            if value.bit_length() <= _MAX_INT_BITS
            else f"<int of {value.bit_length()} bits>"
        )
    elif kind in (float, bool, complex) or value is None:
        text = repr(value)
    elif isinstance(value, (tuple, list, set, frozenset, dict)):
        _describe_container(value, parts, levels, budget)
        return
    else:
        text = f"<{kind.__name__}>"
    parts.append(text)
    budget[0] -= len(text)


def _describe_container(value, parts, levels, budget):
    opening, closing = {
        tuple: "()",
        list: "[]",
        set: "{}",
        frozenset: "{}",
    }.get(type(value), "{}")
    name = type(value).__name__
    prefix = "" if type(value) in (tuple, list, dict, set) else name
    if levels <= 0:
        text = f"<{name} of {len(value)}>"
        parts.append(text)
        budget[0] -= len(text)
        return
    parts.append(prefix + opening)
    budget[0] -= len(prefix) + 1
    items = value.items() if isinstance(value, dict) else value
    for index, item in enumerate(items):
        if budget[0] <= 0:
            return
        if index:
            parts.append(", ")
            budget[0] -= 2
        if index == _DESCRIBE_ITEMS:
            parts.append("...")
            budget[0] -= 3
            break
        if isinstance(value, dict):
            _describe(item[0], parts, levels - 1, budget)
            parts.append(": ")
            budget[0] -= 2
            item = item[1]
        _describe(item, parts, levels - 1, budget)
    parts.append(closing)
    budget[0] -= 1
