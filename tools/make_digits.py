"""Writes keras_eca/data/digits.npz from scikit-learn's handwritten digits.

The 1,797 8x8 scans of `sklearn.datasets.load_digits` (a copy of the test
set of the UCI "Optical Recognition of Handwritten Digits" data, CC BY
4.0), kept exactly: `images` uint8 (1797, 8, 8) with the original values
0..16, `labels` uint8 (1797,). `keras-eca finetune` trains on them by
default, so the first command needs no download; tests/finetune checks the
file against `load_digits()`.

    python tools/make_digits.py            # needs scikit-learn (the dev extra)
"""

import io
import pathlib
import sys

import numpy as np

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / (
    "keras_eca/data/digits.npz"
)
DESCRIPTION = (
    "scikit-learn's load_digits(): the test set of the UCI Optical "
    "Recognition of Handwritten Digits data (E. Alpaydin, C. Kaynak, 1998; "
    "CC BY 4.0), 8x8 images of integer pixels 0..16."
)


def digits_arrays():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images
    if not np.array_equal(images, np.round(images)) or images.max() > 16:
        raise ValueError("load_digits() no longer gives integers 0..16")
    return {
        "images": images.astype(np.uint8),
        "labels": bunch.target.astype(np.uint8),
        "description": np.array(DESCRIPTION),
    }


def main(argv=None):
    output = pathlib.Path((argv or sys.argv[1:] or [OUTPUT])[0])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **digits_arrays())
    temporary = output.with_name(f".{output.name}.partial")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(output)
    print(f"wrote {output} ({output.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
