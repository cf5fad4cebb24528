"""Small data for the fine-tuning tests: a few upscaled digits, image
folders written as real PNG / JPEG files."""

import io
import pathlib

import numpy as np
import tensorflow as tf

from keras_eca.finetune import data as finetune_data

SIZE = 32


def digits(count, size=SIZE, offset=0):
    """`count` upscaled digits (RGB uint8 on 0..255) and their labels,
    every class present (the file cycles through 0..9 from the start)."""
    images, labels = finetune_data.load_digits(size)
    return images[offset : offset + count], labels[offset : offset + count]


def encode(image, fmt):
    image = tf.constant(np.asarray(image, np.uint8))
    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    return tf.io.encode_jpeg(image, quality=95).numpy()


def write_folder(root, counts, size=SIZE, fmt="png", seed=0):
    """`root/<class>/<i>.<fmt>` with `counts[class]` images each, digits
    upscaled to `size` (class `k` holds digits `k`)."""
    root = pathlib.Path(root)
    images, labels = finetune_data.load_digits(size)
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(labels == label)
        for i, index in enumerate(rng.choice(members, count, replace=False)):
            (folder / f"{i:03d}.{fmt}").write_bytes(encode(images[index], fmt))
    return root


def stream():
    return io.StringIO()
