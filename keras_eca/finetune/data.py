"""What `finetune` trains on: the embedded digits, a folder, a TFDS name or
arrays, split into training and validation `ImageSource`s and checked
before any model is built (unreadable files are named, too-small images
and single classes refused).
"""

import dataclasses
import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_eca import data as data_lib
from keras_eca.applications.factory import MIN_SIZE

DIGITS = "digits"
DIGITS_FILE = pathlib.Path(__file__).resolve().parent.parent / "data" / (
    "digits.npz"
)
# Records whose size a TFDS dataset is checked on (reading all is too slow).
TFDS_SIZE_SAMPLE = 64
DEFAULT_VALIDATION_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class FinetuneData:
    """The training and validation data of a fine-tuning run.

    Attributes:
        train: the training `ImageSource`.
        validation: the validation `ImageSource`.
        class_names: tuple of class names, in label order.
        description: what the data is, for the log and the report.
        validation_from: how the validation data was found (`"a 20%
            stratified split"`, `"the folder's val/"`, ...).
        smallest_image: `(height, width)` of the smallest image checked.
        is_digits: whether this is the embedded digits dataset.
    """

    train: object
    validation: object
    class_names: tuple
    description: str
    validation_from: str
    smallest_image: tuple
    is_digits: bool = False

    @property
    def num_classes(self):
        return len(self.class_names)


def load_digits(image_size=None):
    """The 1,797 handwritten digits embedded in keras_eca.

    scikit-learn's `load_digits()` images (8x8, values 0..16), shipped as
    `keras_eca/data/digits.npz` so that nothing is downloaded.

    Args:
        image_size: `None` for the original 8x8 scans (uint8, 0..16,
            shape `(1797, 8, 8)`); an int for RGB uint8 images on 0..255
            of shape `(1797, image_size, image_size, 3)`, upscaled with an
            antialiased bilinear filter.

    Returns:
        `(images, labels)`, labels uint8 `(1797,)` in 0..9.

    Example:

    >>> images, labels = keras_eca.finetune.load_digits(32)
    >>> images.shape, images.dtype.name, int(images.max()), labels[:5]
    ((1797, 32, 32, 3), 'uint8', 255, array([0, 1, 2, 3, 4], dtype=uint8))
    """
    with np.load(DIGITS_FILE, allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    if image_size is None:
        return images, labels
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(
            "`image_size` must be None or a positive integer. "
            f"Received: image_size={image_size!r}"
        )
    # 0..16 ink counts to 0..255 grey levels, then up to the model's size.
    grey = images.astype(np.float32)[..., None] * (255.0 / 16.0)
    large = tf.image.resize(
        grey, [image_size, image_size], method="bilinear", antialias=True
    )
    large = np.clip(np.round(large.numpy()), 0, 255).astype(np.uint8)
    return np.repeat(large, 3, axis=-1), labels


def resolve_data(
    dataset,
    *,
    image_size,
    data_dir=None,
    manual_dir=None,
    validation_fraction=None,
    seed=0,
):
    """Resolves and checks the data of a fine-tuning run.

    Args:
        dataset: `None` or `"digits"` (the embedded digits, upscaled to
            `image_size`), a folder of class subfolders (`ROOT/<class>/...`,
            or `ROOT/train/<class>/...` beside `ROOT/val/<class>/...`), a
            TFDS name, or `(images, labels)` arrays.
        image_size: the model's input size (the digits are upscaled to it).
        data_dir, manual_dir: TFDS's folders.
        validation_fraction: the stratified fraction held out for
            validation when the data has no validation part of its own.
            Defaults to 0.2. A TFDS dataset without a `validation` split
            uses its `test` split, else the last fraction of `train`.
        seed: seed of the split.

    Returns:
        A `FinetuneData`.

    Raises:
        ValueError: for a missing or empty class folder, a single class, a
            class without training images, an unreadable image (named),
            images smaller than the models' minimum of 32 pixels, or a bad
            `validation_fraction`.
    """
    fraction = validation_fraction
    if fraction is None:
        fraction = DEFAULT_VALIDATION_FRACTION
    is_digits = dataset is None or (
        isinstance(dataset, str) and dataset == DIGITS
    )
    if is_digits:
        images, labels = load_digits(image_size)
        arrays = (images, labels.astype(np.int64))
        train, validation = _array_sources(arrays, fraction, seed)
        class_names = tuple(str(i) for i in range(10))
        description = (
            f"the embedded handwritten digits (scikit-learn's 1,797 8x8 "
            f"scans, upscaled to {image_size}x{image_size})"
        )
        validation_from = f"a {fraction:.0%} stratified split"
        smallest, where = (8, 8), None  # upscaled to image_size above
    elif isinstance(dataset, (tuple, list)):
        train, validation = _array_sources(dataset, fraction, seed)
        class_names = tuple(str(i) for i in range(train.num_classes))
        description = f"arrays ({train.num_examples + validation.num_examples} images)"
        validation_from = f"a {fraction:.0%} stratified split"
        shape = np.shape(dataset[0])
        smallest, where = (int(shape[1]), int(shape[2])), None
    else:
        if isinstance(dataset, os.PathLike):
            dataset = os.fspath(dataset)
        if not isinstance(dataset, str) or not dataset:
            raise TypeError(
                "`dataset` must be None (the embedded digits), a folder, a "
                "TFDS name or a tuple (images, labels). "
                f"Received: dataset={dataset!r}"
            )
        path = os.path.expanduser(dataset)
        if os.path.isdir(path):
            train, validation, validation_from = _folder_sources(
                path, validation_fraction, fraction, seed
            )
            description = f"the folder {os.path.abspath(path)}"
            smallest, where = _check_folder_images(train, validation)
        else:
            train, validation, validation_from = _tfds_sources(
                dataset, data_dir, manual_dir, validation_fraction, fraction
            )
            description = f"the TFDS dataset {dataset!r}"
            smallest = _smallest_of_records(train, TFDS_SIZE_SAMPLE)
            where = f"among its first {TFDS_SIZE_SAMPLE} training images"
        class_names = tuple(train.class_names)
    if not is_digits and min(smallest) < MIN_SIZE:
        raise ValueError(
            f"The images of {description} are too small for the models: "
            f"the smallest is {smallest[0]}x{smallest[1]} pixels"
            + (f" ({where})" if where else "")
            + f", the models take at least {MIN_SIZE}x{MIN_SIZE}. Upscale the "
            f"images to at least {MIN_SIZE} pixels on their shorter side "
            "first (as the embedded 8x8 digits are upscaled)."
        )
    _check_classes(train, class_names, description)
    return FinetuneData(
        train=train,
        validation=validation,
        class_names=class_names,
        description=description,
        validation_from=validation_from,
        smallest_image=smallest,
        is_digits=is_digits,
    )


def _array_sources(arrays, fraction, seed):
    return tuple(
        data_lib.resolve_source(
            tuple(arrays), split=split, validation_fraction=fraction, seed=seed
        )
        for split in ("train", "validation")
    )


def _folder_sources(path, validation_fraction, fraction, seed):
    has_validation = any(
        os.path.isdir(os.path.join(path, name)) for name in ("val", "validation")
    ) and os.path.isdir(os.path.join(path, "train"))
    if has_validation and validation_fraction is None:
        sources = [
            data_lib.resolve_source(path, split=split)
            for split in ("train", "validation")
        ]
        name = "val" if os.path.isdir(os.path.join(path, "val")) else "validation"
        return sources[0], sources[1], f"the folder's {name}/ subfolder"
    sources = [
        data_lib.resolve_source(
            path, split=split, validation_fraction=fraction, seed=seed
        )
        for split in ("train", "validation")
    ]
    return sources[0], sources[1], f"a {fraction:.0%} stratified split"


def _tfds_sources(name, data_dir, manual_dir, validation_fraction, fraction):
    import tensorflow_datasets as tfds

    def source(split):
        return data_lib.resolve_source(
            name, split=split, data_dir=data_dir, manual_dir=manual_dir
        )

    train = source("train")  # prepares the dataset when it is not yet
    if validation_fraction is None:
        available = tfds.builder(name, data_dir=data_dir).info.splits
        for split in ("validation", "test"):
            if split in available:
                return train, source(split), f"its {split!r} split"
    # TFDS slices by position: the split is not stratified.
    cut = 100 - int(round(100 * fraction))
    return (
        source(f"train[:{cut}%]"),
        source(f"train[{cut}%:]"),
        f"the last {100 - cut}% of its 'train' split",
    )


def _check_classes(train, class_names, description):
    if len(class_names) < 2:
        raise ValueError(
            f"{description[0].upper()}{description[1:]} has a single class "
            f"({class_names[0] if class_names else 'none'!r}); "
            "classification needs at least 2."
        )
    counts = np.bincount(training_labels(train), minlength=len(class_names))
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(
            f"The classes {empty} of {description} have no training images."
        )


def training_labels(source):
    """The labels of `source`, in its natural order, as an int64 array.

    Folders and arrays read no image for it; a TFDS split is read once
    (without decoding).
    """
    keys = source._keys(None)
    if isinstance(keys.element_spec, tuple):  # (path or bytes, label)
        labels = keys.map(lambda key, label: label)
    else:  # array indices
        labels = keys.map(lambda key: source._load(key)[1])
    labels = labels.batch(4096)
    parts = [batch for batch in labels.as_numpy_iterator()]
    if not parts:
        return np.zeros([0], np.int64)
    return np.concatenate(parts).astype(np.int64)


def class_weights(labels, num_classes):
    """`{class: N / (K * n_class)}`: every class weighs the same in the
    loss however many images it has (1.0 each when balanced).

    Example:

    >>> keras_eca.finetune.class_weights(np.array([0, 0, 0, 1]), 2)
    {0: 0.6666666666666666, 1: 2.0}
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
    if np.any(counts == 0):
        raise ValueError(
            "Every class needs a training image for class weights. "
            f"Received counts: {counts.tolist()}"
        )
    total = float(counts.sum())
    return {
        int(c): total / (num_classes * float(n)) for c, n in enumerate(counts)
    }


def _decoded_size(data):
    image = data_lib.decode_image(data)
    return tf.shape(image)[:2]


def _check_folder_images(*sources):
    """Decodes every image of the folder sources once; names the first
    unreadable file. Returns the smallest `(height, width)` and its file."""
    smallest, smallest_path = None, None
    for source in sources:
        paths = [
            path.decode()
            for path, _ in source._keys(None).as_numpy_iterator()
        ]
        indices = tf.data.Dataset.from_tensor_slices(
            (np.arange(len(paths), dtype=np.int64), tf.constant(paths))
        )
        sizes = indices.map(
            lambda index, path: (index, _decoded_size(tf.io.read_file(path))),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).ignore_errors()
        read = np.zeros(len(paths), bool)
        found = np.zeros([len(paths), 2], np.int64)
        for index, size in sizes.batch(1024).as_numpy_iterator():
            read[index] = True
            found[index] = size
        if not read.all():
            bad = [paths[i] for i in np.flatnonzero(~read)]
            raise ValueError(_unreadable_message(bad))
        if len(paths):
            i = int(np.argmin(found.min(axis=1)))
            if smallest is None or min(found[i]) < min(smallest):
                smallest = (int(found[i][0]), int(found[i][1]))
                smallest_path = paths[i]
    return smallest, smallest_path


def _unreadable_message(bad):
    try:
        _decoded_size(tf.io.read_file(bad[0]))
        reason = "it could not be decoded"
    except (tf.errors.OpError, ValueError) as error:
        reason = getattr(error, "message", str(error)).strip().splitlines()[0]
    more = f" ({len(bad)} unreadable files in all; the others: {bad[1:4]}" + (
        " ...)" if len(bad) > 4 else ")"
    ) if len(bad) > 1 else ""
    return (
        f"Cannot read the image {bad[0]!r}: {reason}.{more} Remove or "
        "replace it: JPEG, PNG, BMP and GIF files are read."
    )


def _smallest_of_records(source, count):
    records = source.records().take(count)
    if source.encoded:
        records = records.map(lambda image, label: _decoded_size(image))
    else:
        records = records.map(lambda image, label: tf.shape(image)[:2])
    sizes = np.array(list(records.as_numpy_iterator()))
    i = int(np.argmin(sizes.min(axis=1)))
    return int(sizes[i][0]), int(sizes[i][1])
