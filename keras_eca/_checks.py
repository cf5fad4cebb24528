"""Argument checks shared by the layers and the model builders.

NumPy scalars count: `np.int64(10)` is an integer and `np.float32(2)` a
number, as they are for numpy and Keras; bools are neither.
"""

import argparse
import math
import numbers


def is_integer(value):
    """Whether `value` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value):
    """Whether `value` is a real, finite number (not nan, not inf)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def as_python_number(value):
    """`value` as a Python int or float, so configs stay JSON."""
    return int(value) if is_integer(value) else float(value)


def batch_sizes_argument(text):
    """An argparse `type`: `"1,16"` -> `(1, 16)`, every size positive."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            "expected comma-separated integers, all positive, e.g. 1,16; "
            f"got {text!r}"
        )
    return sizes
