"""Small image folders and arrays for the input pipeline tests."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from keras_eca.testing.fake_imagenet import fake_photos


def encode(image, fmt="JPEG", **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def write_image(path, image, fmt="JPEG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(encode(image, fmt))


def write_folder(root, counts, *, size=(36, 44), seed=0, ext=".jpg"):
    """ROOT/<class>/<i><ext> JPEGs, `counts` = {class: number}."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        for i in range(count):
            height = int(size[0] + rng.integers(0, 9))
            width = int(size[1] + rng.integers(0, 9))
            (image,) = fake_photos(1, (height, width), seed=int(rng.integers(1 << 30)))
            write_image(os.path.join(root, name, f"{i:03d}{ext}"), image)
    return str(root)


@pytest.fixture(scope="session")
def jpeg_folder(tmp_path_factory):
    """3 classes of 8 JPEG photo crops (36-44 x 44-52 px)."""
    root = tmp_path_factory.mktemp("jpegs")
    return write_folder(root, {"cat": 8, "dog": 8, "eel": 8})


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory):
    """Every supported encoding, upper-case extensions, a non-image file and
    a hidden folder."""
    root = str(tmp_path_factory.mktemp("mixed"))
    images = fake_photos(6, (30, 34), seed=3)
    write_image(os.path.join(root, "a", "x1.JPEG"), images[0])
    write_image(os.path.join(root, "a", "x2.png"), images[1], "PNG")
    write_image(os.path.join(root, "a", "nested", "x3.jpeg"), images[2])
    write_image(os.path.join(root, "b", "y1.bmp"), images[3], "BMP")
    write_image(os.path.join(root, "b", "y2.GIF"), images[4], "GIF")
    write_image(os.path.join(root, "b", "y3.jpg"), images[5])
    with open(os.path.join(root, "b", "notes.txt"), "w") as f:
        f.write("not an image")
    write_image(os.path.join(root, ".cache", "z.jpg"), images[0])
    return root


def constant_images(count, size=(20, 28)):
    """Image i is filled with the value i: any crop, resize or flip of it
    still says which element it was."""
    values = np.arange(count, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, *size, 3)).copy()


def element_ids(images, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """Inverse of the normalisation on channel 0, rounded to the element."""
    values = np.asarray(images)[..., 0].reshape(len(images), -1)
    ids = np.round(values * std[0] * 255 + mean[0] * 255)
    assert (ids == ids[:, :1]).all()
    return ids[:, 0].astype(int).tolist()
