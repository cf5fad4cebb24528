"""Image classification sources: a TFDS dataset, a folder of class
subfolders, or arrays in memory, behind one `ImageSource`.

A source yields `(image, label)` records in a fixed order for a given
shuffle seed; the training and evaluation pipelines (`pipeline.py`) decode,
augment and batch them.
"""

import dataclasses
import os
from typing import Callable
from typing import Optional

import numpy as np
import tensorflow as tf

from keras_eca._checks import is_finite_number
from keras_eca._checks import is_integer

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TRAIN_SPLITS = ("train",)
VALIDATION_SPLITS = ("validation", "val")
# Records held by the shuffle buffer after TFDS's file shuffling (encoded
# ImageNet JPEGs average ~110 kB: ~0.9 GB).
TFDS_SHUFFLE_BUFFER = 8192


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """Where labelled images come from, and how many there are.

    Attributes:
        name: the TFDS name, the folder's absolute path, or `"arrays"`.
        split: the split these records belong to (`"train"`,
            `"validation"`, or a TFDS split such as `"train[:10%]"`).
        num_classes: number of classes (labels are `0 .. num_classes - 1`).
        class_names: tuple of class names in label order, or `None` (arrays).
        num_examples: number of records in the split.
        encoded: `True` when `records()` yields encoded image bytes (JPEG,
            PNG, ...), `False` when it yields decoded `uint8` HWC images
            (float32 for float arrays).

    Build one with `resolve_source`.
    """

    name: str
    split: str
    num_classes: int
    class_names: Optional[tuple] = dataclasses.field(repr=False)
    num_examples: int
    encoded: bool
    # shuffle_seed -> tf.data.Dataset of cheap keys (a path, an index or the
    # record itself); `_load` turns a key into `(image, label)`. Pipelines
    # skip and shard on the keys, before any file is read or decoded.
    _keys: Callable = dataclasses.field(repr=False, compare=False)
    _load: Callable = dataclasses.field(repr=False, compare=False)

    def records(self, shuffle_seed=None):
        """The split's `(image, label)` records as a `tf.data.Dataset`.

        `image` is a scalar `tf.string` (encoded bytes) when `encoded`, else
        an HWC image with 3 channels; `label` is an int32 scalar.

        Args:
            shuffle_seed: `None` for the natural, fixed order (sorted files,
                array order, TFDS's file order); a non-negative int for a
                shuffled order that is the same on every call with that seed.
                TFDS shuffles its files with `tf.data`, whose seeds also
                depend on TensorFlow's global seed: a run and its resumed
                copy must set it alike (e.g. `keras.utils.set_random_seed`),
                or neither.
        """
        _check_shuffle_seed(shuffle_seed)
        return self._keys(shuffle_seed).map(
            self._load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )


def resolve_source(
    dataset,
    *,
    split="train",
    data_dir=None,
    manual_dir=None,
    validation_fraction=None,
    seed=0,
):
    """Resolves a TFDS name, a folder or `(images, labels)` arrays.

    Args:
        dataset: one of
            - a TFDS name (`"imagenet2012"`, `"tf_flowers"`,
              `"imagenette/320px"`, ...): any dataset with an `image` and a
              `label` (ClassLabel) feature. Prepared with
              `download_and_prepare` only when it is not prepared yet in
              `data_dir` (`manual_dir` is TFDS's manual download folder,
              e.g. the one holding ImageNet's tars).
            - a folder: `ROOT/<class>/<image>` (sorted class names give the
              labels), or `ROOT/train/<class>/...` beside
              `ROOT/val/<class>/...` (or `ROOT/validation/...`). Images are
              the files ending in .jpg, .jpeg, .png, .bmp or .gif (any case),
              also in nested folders; hidden folders are ignored.
            - a tuple `(images, labels)`: `uint8` (or float in 0..255)
              images `(N, H, W, 3)`, `(N, H, W, 1)` or `(N, H, W)`, integer
              labels `(N,)`. Grayscale is repeated to RGB.
        split: `"train"` or `"validation"` (`"val"`) for folders and
            arrays; any TFDS split string for TFDS.
        data_dir: TFDS data folder (TFDS's default when `None`).
        manual_dir: TFDS manual download folder.
        validation_fraction: for folders (single-level layout) and arrays:
            the fraction of each class held out as the `"validation"` split.
            The split is stratified and deterministic for `seed`; a class
            with at least 2 images has at least one in each part.
        seed: seed of the validation split.

    Returns:
        An `ImageSource`.

    Example:

    >>> images = np.zeros((6, 8, 8, 3), "uint8")
    >>> labels = np.array([0, 1, 2, 0, 1, 2])
    >>> source = keras_eca.data.resolve_source((images, labels))
    >>> source.num_examples, source.num_classes, source.encoded
    (6, 3, False)
    >>> held_out = keras_eca.data.resolve_source(
    ...     (images, labels), split="validation", validation_fraction=0.5)
    >>> held_out.num_examples
    3
    """
    if validation_fraction is not None and not (
        is_finite_number(validation_fraction) and 0 < validation_fraction < 1
    ):
        raise ValueError(
            "`validation_fraction` must be a number in (0, 1) or None. "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if not is_integer(seed) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative integer. Received: seed={seed!r}"
        )
    if isinstance(dataset, (tuple, list)):
        return _array_source(dataset, split, validation_fraction, seed)
    if isinstance(dataset, os.PathLike):
        dataset = os.fspath(dataset)
    if not isinstance(dataset, str) or not dataset:
        raise TypeError(
            "`dataset` must be a TFDS name, a folder path or a tuple "
            f"(images, labels). Received: dataset={dataset!r}"
        )
    path = os.path.expanduser(dataset)
    if os.path.isdir(path):
        return _folder_source(path, split, validation_fraction, seed)
    if os.path.exists(path):
        raise ValueError(
            f"`dataset` must be a folder of class subfolders, not a file. "
            f"Received: dataset={dataset!r}"
        )
    if _looks_like_path(dataset):
        raise ValueError(
            f"`dataset` names a folder that does not exist. "
            f"Received: dataset={dataset!r}"
        )
    if validation_fraction is not None:
        raise ValueError(
            "`validation_fraction` is for folders and arrays; for a TFDS "
            "dataset slice a split instead (split='train[:90%]', "
            f"'train[90%:]'). Received: validation_fraction="
            f"{validation_fraction!r} with dataset={dataset!r}"
        )
    return _tfds_source(dataset, split, data_dir, manual_dir)


def _looks_like_path(text):
    # A TFDS name holds at most one "/" (name/config) and starts with a letter.
    return (
        os.path.isabs(text)
        or text.startswith((".", "~"))
        or text.endswith(("/", os.sep))
        or text.count("/") > 1
        or "\\" in text
    )


def _check_shuffle_seed(shuffle_seed):
    if shuffle_seed is not None and (
        not is_integer(shuffle_seed) or shuffle_seed < 0
    ):
        raise ValueError(
            "`shuffle_seed` must be None or a non-negative integer. "
            f"Received: shuffle_seed={shuffle_seed!r}"
        )


def _split_kind(split, what):
    if split in TRAIN_SPLITS:
        return "train"
    if split in VALIDATION_SPLITS:
        return "validation"
    raise ValueError(
        f"`split` must be 'train' or 'validation' ('val') for {what}. "
        f"Received: split={split!r}"
    )


def _stratified_split(labels, fraction, seed):
    """Indices of the training and validation parts, per class in order."""
    rng = np.random.default_rng([seed, 0x5EED])
    train, validation = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = len(members)
        held = 0
        if count >= 2:
            held = min(max(int(round(fraction * count)), 1), count - 1)
        chosen = np.zeros(count, bool)
        chosen[rng.permutation(count)[:held]] = True
        validation.extend(members[chosen])
        train.extend(members[~chosen])
    return np.sort(np.asarray(train, np.int64)), np.sort(
        np.asarray(validation, np.int64)
    )


def _permutation(count, shuffle_seed):
    if shuffle_seed is None:
        return np.arange(count, dtype=np.int64)
    return np.random.default_rng(shuffle_seed).permutation(count)


# --- arrays -----------------------------------------------------------------


def _array_source(dataset, split, validation_fraction, seed):
    if len(dataset) != 2:
        raise ValueError(
            "An array `dataset` must be a pair (images, labels). "
            f"Received a {type(dataset).__name__} of length {len(dataset)}"
        )
    images, labels = (np.asarray(a) for a in dataset)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "`images` must be NHWC with 1 or 3 channels (or NHW). "
            f"Received: images.shape={images.shape}"
        )
    if images.dtype == np.uint8:
        pass
    elif np.issubdtype(images.dtype, np.floating):
        if images.size and (
            not np.all(np.isfinite(images))
            or images.min() < 0
            or images.max() > 255
        ):
            raise ValueError(
                "Float `images` must hold values in [0, 255]. Received: "
                f"min={float(images.min())}, max={float(images.max())}"
            )
        images = images.astype(np.float32)
    else:
        raise TypeError(
            "`images` must be uint8, or float with values in [0, 255]. "
            f"Received: images.dtype={images.dtype}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must be a 1-D integer array. Received: "
            f"labels.shape={labels.shape}, labels.dtype={labels.dtype}"
        )
    if len(labels) != len(images):
        raise ValueError(
            "`images` and `labels` must have the same length. Received: "
            f"{len(images)} images and {len(labels)} labels"
        )
    if len(labels) == 0:
        raise ValueError("`images` and `labels` are empty.")
    if labels.min() < 0:
        raise ValueError(
            f"`labels` must be non-negative. Received: min={labels.min()}"
        )
    num_classes = int(labels.max()) + 1
    kind = _split_kind(split, "arrays")
    if validation_fraction is None:
        if kind == "validation":
            raise ValueError(
                "split='validation' of arrays needs `validation_fraction`. "
                "Received: validation_fraction=None"
            )
        indices = np.arange(len(labels), dtype=np.int64)
    else:
        parts = _stratified_split(labels, validation_fraction, seed)
        indices = parts[kind == "validation"]
    images_t = tf.constant(images)
    labels_t = tf.constant(labels.astype(np.int32))
    rgb = images.shape[-1] == 3

    def keys(shuffle_seed):
        order = indices[_permutation(len(indices), shuffle_seed)]
        return tf.data.Dataset.from_tensor_slices(order)

    def load(index):
        image = tf.gather(images_t, index)
        if not rgb:
            image = tf.image.grayscale_to_rgb(image)
        return image, tf.gather(labels_t, index)

    return ImageSource(
        name="arrays",
        split=kind,
        num_classes=num_classes,
        class_names=None,
        num_examples=len(indices),
        encoded=False,
        _keys=keys,
        _load=load,
    )


# --- folders ----------------------------------------------------------------


def _subfolders(path):
    return sorted(
        entry.name
        for entry in os.scandir(path)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _image_files(folder):
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(parent, name)
            for name in sorted(files)
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return found


def _class_files(folder, class_names, allow_missing=False):
    paths, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(folder, name)
        if allow_missing and not os.path.isdir(class_dir):
            continue
        files = _image_files(class_dir)
        if not files:
            raise ValueError(
                f"Class folder {class_dir!r} (class {name!r}) holds no "
                f"images (files ending in {', '.join(IMAGE_EXTENSIONS)})."
            )
        paths.extend(files)
        labels.extend([label] * len(files))
    return paths, np.asarray(labels, np.int64)


def _check_classes(folder, class_names):
    if not class_names:
        raise ValueError(
            f"Folder {folder!r} has no class subfolders: expected "
            "ROOT/<class>/<image> or ROOT/train/<class>/<image>."
        )
    if len(class_names) < 2:
        raise ValueError(
            f"Folder {folder!r} has a single class subfolder "
            f"({class_names[0]!r}); classification needs at least 2."
        )


def _folder_source(root, split, validation_fraction, seed):
    root = os.path.abspath(root)
    top = _subfolders(root)
    kind = _split_kind(split, "folders")
    validation_dirs = [d for d in VALIDATION_SPLITS if d in top]
    split_layout = "train" in top and set(top) <= {"train", "test"} | set(
        VALIDATION_SPLITS
    )
    if split_layout:
        train_dir = os.path.join(root, "train")
        class_names = _subfolders(train_dir)
        _check_classes(train_dir, class_names)
        if validation_dirs and validation_fraction is not None:
            raise ValueError(
                f"Folder {root!r} has its own validation folder "
                f"({validation_dirs[0]!r}); `validation_fraction` must be "
                "None with it. Received: "
                f"validation_fraction={validation_fraction!r}"
            )
        if kind == "validation" and validation_fraction is None:
            if not validation_dirs:
                raise ValueError(
                    f"Folder {root!r} has no 'val' or 'validation' folder "
                    "for split='validation' (or pass `validation_fraction`)."
                )
            folder = os.path.join(root, validation_dirs[0])
            unknown = sorted(set(_subfolders(folder)) - set(class_names))
            if unknown:
                raise ValueError(
                    f"Validation folder {folder!r} has classes that the "
                    f"training folder lacks: {unknown}"
                )
            paths, labels = _class_files(
                folder, class_names, allow_missing=True
            )
        else:
            paths, labels = _class_files(train_dir, class_names)
    else:
        class_names = top
        _check_classes(root, class_names)
        if kind == "validation" and validation_fraction is None:
            raise ValueError(
                f"Folder {root!r} has no train/val folders: split="
                "'validation' needs `validation_fraction`. Received: "
                "validation_fraction=None"
            )
        paths, labels = _class_files(root, class_names)
    paths = np.asarray(paths, dtype=object)
    if validation_fraction is not None:
        parts = _stratified_split(labels, validation_fraction, seed)
        chosen = parts[kind == "validation"]
        paths, labels = paths[chosen], labels[chosen]
    paths_t = tf.constant([p.encode() for p in paths], tf.string)
    labels_np = labels.astype(np.int32)

    def keys(shuffle_seed):
        order = _permutation(len(labels_np), shuffle_seed)
        return tf.data.Dataset.from_tensor_slices(
            (tf.gather(paths_t, order), labels_np[order])
        )

    def load(path, label):
        return tf.io.read_file(path), label

    return ImageSource(
        name=root,
        split=kind,
        num_classes=len(class_names),
        class_names=tuple(class_names),
        num_examples=len(labels_np),
        encoded=True,
        _keys=keys,
        _load=load,
    )


# --- TFDS -------------------------------------------------------------------


def _tfds_source(name, split, data_dir, manual_dir):
    import tensorflow_datasets as tfds

    if not isinstance(split, str) or not split:
        raise ValueError(
            f"`split` must be a TFDS split string. Received: split={split!r}"
        )
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as error:
        raise ValueError(
            f"`dataset`={name!r} is neither an existing folder nor a TFDS "
            f"dataset name ({str(error).splitlines()[0]})"
        ) from None
    features = builder.info.features
    image = features["image"] if "image" in features else None
    label = features["label"] if "label" in features else None
    if not isinstance(image, tfds.features.Image) or not isinstance(
        label, tfds.features.ClassLabel
    ):
        raise ValueError(
            f"TFDS dataset {name!r} must have an 'image' (Image) and a "
            "'label' (ClassLabel) feature. Received features: "
            + ", ".join(f"{k}: {type(v).__name__}" for k, v in features.items())
        )
    if not builder.is_prepared():
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)

    def keys(shuffle_seed):
        shuffled = shuffle_seed is not None
        read_config = tfds.ReadConfig(
            shuffle_seed=shuffle_seed,
            shuffle_reshuffle_each_iteration=False,
        )
        ds = builder.as_dataset(
            split=split,
            shuffle_files=shuffled,
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=read_config,
        )
        ds = ds.map(
            lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if shuffled:
            ds = ds.shuffle(
                min(TFDS_SHUFFLE_BUFFER, num_examples),
                seed=shuffle_seed,
                reshuffle_each_iteration=False,
            )
        return ds

    num_examples = int(keys(None).cardinality())
    if num_examples < 0:
        num_examples = builder.info.splits[split].num_examples
    if num_examples <= 0:
        raise ValueError(f"TFDS split {name}:{split!r} is empty.")

    def load(image, label):
        return image, label

    return ImageSource(
        name=name,
        split=split,
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        num_examples=num_examples,
        encoded=True,
        _keys=keys,
        _load=load,
    )
