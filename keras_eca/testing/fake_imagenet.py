"""A tiny ImageNet in the official archive layout, for the stock TFDS
`imagenet2012` builder.

`write_imagenet_manual_dir` writes what ImageNet's download page gives:
`ILSVRC2012_img_train.tar` (a tar of per-synset tars `n01440764.tar`, each
holding `n01440764_1.JPEG`, ...) and `ILSVRC2012_img_val.tar` (flat
`ILSVRC2012_val_00000001.JPEG`, ...). TFDS labels the validation images
from its own `validation_labels.txt` (by file name), exactly as for the
real archive.
"""

import functools
import io
import os
import tarfile

import numpy as np

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VALIDATION_TAR = "ILSVRC2012_img_val.tar"


@functools.lru_cache(maxsize=1)
def _photos():
    """scikit-image's bundled photos, or None without scikit-image."""
    try:
        from skimage import data
    except ImportError:
        return None
    return (
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        data.immunohistochemistry(),
    )


def fake_photos(count, size, seed=0):
    """`count` uint8 RGB images of `size = (height, width)`: random crops of
    scikit-image's photos (smooth random images without scikit-image).

    Example:

    >>> from keras_eca.testing.fake_imagenet import fake_photos
    >>> [image.shape for image in fake_photos(2, (20, 30))]
    [(20, 30, 3), (20, 30, 3)]
    """
    from PIL import Image

    height, width = size
    rng = np.random.default_rng(seed)
    photos = _photos()
    images = []
    for _ in range(count):
        if photos:
            photo = photos[rng.integers(len(photos))]
            h, w = photo.shape[:2]
            side = rng.uniform(0.3, 1.0)
            ch = max(int(h * side), 2)
            cw = min(max(int(ch * width / height), 2), w)
            top = rng.integers(0, h - ch + 1)
            left = rng.integers(0, w - cw + 1)
            crop = Image.fromarray(photo[top : top + ch, left : left + cw])
        else:
            coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            crop = Image.fromarray(coarse)
        images.append(
            np.asarray(crop.resize((width, height), Image.BICUBIC))
        )
    return images


def _jpeg(image, quality=90):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _add(archive, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    archive.addfile(info, io.BytesIO(payload))


def write_imagenet_manual_dir(
    path,
    *,
    synsets=("n01440764", "n01443537"),
    train_per_synset=4,
    validation=4,
    size=(40, 48),
    seed=0,
):
    """Writes a tiny ImageNet manual download folder and returns its path.

    Args:
        path: the folder (created if missing).
        synsets: ImageNet-1k WordNet ids of the training classes.
        train_per_synset: training JPEGs per synset.
        validation: validation JPEGs (`ILSVRC2012_val_00000001.JPEG`, ...);
            their labels are ImageNet's own for those file names.
        size: `(height, width)` of every image.
        seed: seed of the image crops.

    Returns:
        `path`, ready for
        `tfds.download.DownloadConfig(manual_dir=path)`.

    Example:

    >>> import os, tempfile
    >>> from keras_eca.testing.fake_imagenet import write_imagenet_manual_dir
    >>> folder = write_imagenet_manual_dir(
    ...     tempfile.mkdtemp(), train_per_synset=1, validation=1, size=(8, 8))
    >>> sorted(os.listdir(folder))
    ['ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar']
    """
    from keras_eca.applications.imagenet_classes import IMAGENET_CLASSES

    known = {wnid for wnid, _ in IMAGENET_CLASSES}
    synsets = tuple(synsets)
    unknown = [s for s in synsets if s not in known]
    if not synsets or unknown:
        raise ValueError(
            "`synsets` must be ImageNet-1k WordNet ids (e.g. 'n01440764'). "
            f"Received: synsets={synsets!r}"
        )
    for name, value in (
        ("train_per_synset", train_per_synset),
        ("validation", validation),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"`{name}` must be a non-negative int. "
                f"Received: {name}={value!r}"
            )
    if validation > 50000:
        raise ValueError(
            "`validation` must be at most 50000 (ImageNet's validation "
            f"set). Received: validation={validation!r}"
        )
    os.makedirs(path, exist_ok=True)
    images = iter(
        fake_photos(len(synsets) * train_per_synset + validation, size, seed)
    )
    with tarfile.open(os.path.join(path, TRAIN_TAR), "w") as train:
        for synset in synsets:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as per_synset:
                for k in range(1, train_per_synset + 1):
                    _add(per_synset, f"{synset}_{k}.JPEG", _jpeg(next(images)))
            _add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(path, VALIDATION_TAR), "w") as val:
        for k in range(1, validation + 1):
            _add(val, f"ILSVRC2012_val_{k:08d}.JPEG", _jpeg(next(images)))
    return path
