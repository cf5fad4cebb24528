"""Detection input pipelines (TensorFlow `tf.data`): TFDS `coco/2017`-style
datasets and the embedded synthetic set behind one `DetectionSource`.

A source yields examples in TFDS's detection layout: a `uint8` image (or
its encoded bytes), `boxes` as normalised `[ymin, xmin, ymax, xmax]`,
`classes` (int32) and `is_crowd` (bool). The pipelines turn them into
fixed-size batches for Keras detectors:

    images: float32 (B, S, S, 3), RGB in 0..255 (the backbone normalises),
    {"boxes": float32 (B, M, 4) "xyxy" pixels, "classes": float32 (B, M)},

padded with -1 up to `max_boxes` objects. Images are resized so that the
longer side is `S` and padded at the bottom and right ("resize with
padding"); training adds a jittered resize (a random scale, then a random
`S`x`S` window) and a horizontal flip. Crowd boxes are dropped from the
training targets (COCO's evaluation ignores detections on them instead).

Every random op is stateless, keyed by `(seed, epoch, element index)`, and
a training epoch is a pure function of `(seed, epoch)`: a resumed run
starts at its step and sees the same batches as an uninterrupted one.
KerasCV's augmentation layers (`JitteredResize`, `RandomFlip`) draw from a
stateful generator, so they cannot give that; these few ops do.
"""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from keras_eca._checks import is_integer
from keras_eca.data.pipeline import check_count
from keras_eca.data.pipeline import check_epoch_steps
from keras_eca.data.pipeline import check_input_pipeline
from keras_eca.data.pipeline import dataset_options
from keras_eca.data.pipeline import derived_seed
from keras_eca.detection import synthetic

BOX_FORMAT = "xyxy"  # the pipelines' and the detectors' box format (pixels)
DEFAULT_MAX_BOXES = 100  # COCO 2017 has at most 93 objects in an image
SYNTHETIC = "synthetic"
_SHUFFLE_SALT = 0xD5F
_AUGMENT_SALT = 0xDA6
TFDS_SHUFFLE_BUFFER = 4096


@dataclasses.dataclass(frozen=True)
class DetectionSource:
    """Where boxed images come from.

    Attributes:
        name: `"synthetic"` or the TFDS name (`"coco/2017"`, `"voc/2007"`).
        split: the split (`"train"`, `"validation"`, a TFDS split string).
        class_names: tuple of class names, in class-id order.
        num_examples: examples in the split.
        encoded: whether `examples()` yields encoded image bytes.
    """

    name: str
    split: str
    class_names: tuple
    num_examples: int
    encoded: bool
    _examples: Callable = dataclasses.field(repr=False, compare=False)

    @property
    def num_classes(self):
        return len(self.class_names)

    def examples(self, shuffle_seed=None):
        """The split as a `tf.data.Dataset` of dicts `image`, `boxes`,
        `classes`, `is_crowd`, `image_id` (int64), in a fixed order for a
        given `shuffle_seed` (`None`: the natural order)."""
        return self._examples(shuffle_seed)


def resolve_detection_source(
    dataset, split="train", *, data_dir=None, num_examples=None, seed=0
):
    """A `DetectionSource` for `"synthetic"` or a TFDS detection dataset.

    Args:
        dataset: `"synthetic"` (the embedded set, see `synthetic`), or the
            name of a TFDS dataset with `image` and `objects` (`bbox`,
            `label`, optionally `is_crowd`) features, e.g. `"coco/2017"`,
            `"voc/2007"`.
        split: `"train"` or `"validation"` (any TFDS split string for TFDS).
        data_dir: TFDS's data folder.
        num_examples: images of the synthetic split (default: 2,000 for
            train, 200 otherwise); for TFDS, the split's first
            `num_examples` (`"validation[:500]"`; default: all).
        seed: the synthetic set's seed.

    Example:

    >>> source = keras_eca.detection.resolve_detection_source(
    ...     "synthetic", "validation", num_examples=4)
    >>> source.class_names, source.num_examples
    (('circle', 'square', 'triangle'), 4)
    """
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(
            "`dataset` must be 'synthetic' or a TFDS detection dataset name. "
            f"Received: dataset={dataset!r}"
        )
    if dataset == SYNTHETIC:
        return _synthetic_source(split, num_examples, seed)
    if num_examples is not None:
        check_count("num_examples", num_examples)
        if "[" in split:
            raise ValueError(
                "Pass either a sliced split or num_examples. Received: "
                f"split={split!r}, num_examples={num_examples!r}"
            )
        split = f"{split}[:{num_examples}]"
    return _tfds_source(dataset, split, data_dir)


def _synthetic_source(split, num_examples, seed):
    if split == "val":
        split = "validation"
    if split not in synthetic.split_names():
        raise ValueError(
            f"The synthetic set's `split` must be one of "
            f"{list(synthetic.split_names())}. Received: split={split!r}"
        )
    if num_examples is None:
        num_examples = 2000 if split == "train" else 200
    if not is_integer(num_examples) or num_examples < 1:
        raise ValueError(
            "`num_examples` must be a positive integer. "
            f"Received: num_examples={num_examples!r}"
        )
    images, boxes, classes = synthetic.generate(
        int(num_examples), seed=seed, split=split
    )
    counts = (classes >= 0).sum(axis=1).astype("int32")
    # Converted once per source, not once per pass (2,000 images: 98 MB).
    table = (tf.constant(images), tf.constant(boxes), tf.constant(classes),
             tf.constant(counts))

    def examples(shuffle_seed):
        order = np.arange(len(images))
        if shuffle_seed is not None:
            order = np.random.default_rng(shuffle_seed).permutation(len(images))
        ds = tf.data.Dataset.from_tensor_slices(order.astype("int64"))

        def load(index):
            count = table[3][index]
            return {
                "image": table[0][index],
                "boxes": table[1][index][:count],
                "classes": table[2][index][:count],
                "is_crowd": tf.zeros([count], tf.bool),
                "image_id": index,
            }

        return ds.map(load)

    return DetectionSource(
        name=SYNTHETIC,
        split=split,
        class_names=synthetic.CLASS_NAMES,
        num_examples=int(num_examples),
        encoded=False,
        _examples=examples,
    )


def _tfds_source(name, split, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as error:
        raise ValueError(
            f"`dataset`={name!r} is neither 'synthetic' nor a TFDS dataset "
            f"name ({str(error).splitlines()[0]})"
        ) from None
    features = builder.info.features
    objects = features["objects"] if "objects" in features else None
    if (
        "image" not in features
        or objects is None
        or "bbox" not in objects
        or "label" not in objects
    ):
        raise ValueError(
            f"TFDS dataset {name!r} must have 'image' and 'objects' "
            "('bbox', 'label') features, as coco/2017 and voc/2007 do. "
            "Received features: " + ", ".join(features.keys())
        )
    if not builder.is_prepared():
        builder.download_and_prepare()
    has_crowd = "is_crowd" in objects
    has_id = "image/id" in features

    def examples(shuffle_seed):
        shuffled = shuffle_seed is not None
        # Decoded by TFDS: with SkipDecoding, TFDS's mock data (the tests)
        # fails on sequence features such as `objects`.
        ds = builder.as_dataset(
            split=split,
            shuffle_files=shuffled,
            read_config=tfds.ReadConfig(
                shuffle_seed=shuffle_seed, shuffle_reshuffle_each_iteration=False
            ),
        )

        def convert(position, example):
            objs = example["objects"]
            labels = tf.cast(objs["label"], tf.int32)
            crowd = (
                tf.cast(objs["is_crowd"], tf.bool) if has_crowd
                else tf.zeros_like(labels, tf.bool)
            )
            # Defensive against malformed records (TFDS's mock data among
            # them): the objects' fields cut to a common length, boxes
            # ordered and clipped to the image.
            n = tf.minimum(
                tf.minimum(tf.shape(objs["bbox"])[0], tf.shape(labels)[0]),
                tf.shape(crowd)[0],
            )
            boxes = tf.clip_by_value(tf.cast(objs["bbox"][:n], tf.float32), 0.0, 1.0)
            low = tf.minimum(boxes[:, :2], boxes[:, 2:])
            high = tf.maximum(boxes[:, :2], boxes[:, 2:])
            return {
                "image": example["image"],
                "boxes": tf.concat([low, high], axis=-1),
                "classes": labels[:n],
                "is_crowd": crowd[:n],
                "image_id": (
                    tf.cast(example["image/id"], tf.int64) if has_id else position
                ),
            }

        ds = ds.enumerate().map(
            convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        if shuffled:
            ds = ds.shuffle(
                min(TFDS_SHUFFLE_BUFFER, count), seed=shuffle_seed,
                reshuffle_each_iteration=False,
            )
        return ds

    count = int(examples(None).cardinality())
    if count < 0:  # unknown to tf.data: the prepared split's count
        count = int(builder.info.splits[split].num_examples)
    if count <= 0:
        raise ValueError(f"TFDS split {name}:{split!r} is empty.")
    return DetectionSource(
        name=name,
        split=split,
        class_names=tuple(objects["label"].names),
        num_examples=count,
        encoded=False,
        _examples=examples,
    )


# --- transforms ---------------------------------------------------------------


def _decode(image, encoded):
    if encoded:
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def _pixel_boxes(boxes, height, width):
    """Normalised yxyx -> xyxy pixels of an image of that size."""
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, 4, axis=-1)
    return tf.stack([xmin * w, ymin * h, xmax * w, ymax * h], axis=-1)


def _resize(image, scale):
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    new = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    return tf.image.resize(image, new, method="bilinear", antialias=True), new


def _fit_window(image, boxes, classes, top, left, size):
    """The `size`x`size` window at (top, left) of `image`, padded with 0
    at the bottom and right; boxes moved, clipped, and those left with
    under a third of their area (or under 2 px a side) dropped."""
    shape = tf.shape(image)
    image = tf.pad(
        image,
        [[0, tf.maximum(size - shape[0], 0)], [0, tf.maximum(size - shape[1], 0)], [0, 0]],
    )
    image = image[top : top + size, left : left + size]
    offset = tf.cast(tf.stack([left, top, left, top]), tf.float32)
    moved = boxes - offset
    limit = tf.cast(tf.stack([shape[1] - left, shape[0] - top] * 2), tf.float32)
    limit = tf.minimum(limit, float(size))
    clipped = tf.clip_by_value(moved, 0.0, limit)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    keep = (
        (area(clipped) >= area(moved) / 3)
        & (clipped[:, 2] - clipped[:, 0] >= 2)
        & (clipped[:, 3] - clipped[:, 1] >= 2)
    )
    return (
        tf.ensure_shape(image, [size, size, 3]),
        tf.boolean_mask(clipped, keep),
        tf.boolean_mask(classes, keep),
    )


def _pad(boxes, classes, max_boxes):
    boxes = boxes[:max_boxes]
    classes = tf.cast(classes[:max_boxes], tf.float32)
    missing = max_boxes - tf.shape(classes)[0]
    boxes = tf.pad(boxes, [[0, missing], [0, 0]], constant_values=-1.0)
    classes = tf.pad(classes, [[0, missing]], constant_values=-1.0)
    return (
        tf.ensure_shape(boxes, [max_boxes, 4]),
        tf.ensure_shape(classes, [max_boxes]),
    )


def resize_with_padding(example, image_size, encoded=False):
    """An example resized so its longer side is `image_size`, padded to a
    square; returns `(image, boxes xyxy pixels, classes, is_crowd, scale)`."""
    image = _decode(example["image"], encoded)
    shape = tf.shape(image)
    longer = tf.cast(tf.maximum(shape[0], shape[1]), tf.float32)
    scale = image_size / longer
    boxes = _pixel_boxes(example["boxes"], shape[0], shape[1]) * scale
    image, _ = _resize(image, scale)
    image = tf.image.pad_to_bounding_box(image, 0, 0, image_size, image_size)
    return image, boxes, example["classes"], example["is_crowd"], scale


def training_transform(example, seed, *, image_size, scale_range, flip, encoded):
    """Jittered resize and flip of one example (crowd boxes dropped)."""
    keep = tf.logical_not(example["is_crowd"])
    image = _decode(example["image"], encoded)
    shape = tf.shape(image)
    boxes = tf.boolean_mask(_pixel_boxes(example["boxes"], shape[0], shape[1]), keep)
    classes = tf.boolean_mask(example["classes"], keep)
    draws = tf.random.stateless_uniform([4], seed=seed)
    longer = tf.cast(tf.maximum(shape[0], shape[1]), tf.float32)
    scale = image_size / longer * (
        scale_range[0] + (scale_range[1] - scale_range[0]) * draws[0]
    )
    image, new = _resize(image, scale)
    boxes = boxes * scale
    top = tf.cast(draws[1] * tf.cast(tf.maximum(new[0] - image_size, 0) + 1, tf.float32), tf.int32)
    left = tf.cast(draws[2] * tf.cast(tf.maximum(new[1] - image_size, 0) + 1, tf.float32), tf.int32)
    top = tf.minimum(top, tf.maximum(new[0] - image_size, 0))
    left = tf.minimum(left, tf.maximum(new[1] - image_size, 0))
    image, boxes, classes = _fit_window(image, boxes, classes, top, left, image_size)
    if flip:
        flipped = draws[3] < 0.5
        image = tf.cond(flipped, lambda: image[:, ::-1], lambda: image)
        mirrored = tf.stack(
            [image_size - boxes[:, 2], boxes[:, 1], image_size - boxes[:, 0], boxes[:, 3]],
            axis=-1,
        )
        boxes = tf.cond(flipped, lambda: mirrored, lambda: boxes)
    return image, boxes, classes


# --- pipelines ----------------------------------------------------------------


def _check_source(source):
    if not isinstance(source, DetectionSource):
        raise TypeError(
            "`source` must be a DetectionSource (from resolve_detection_source). "
            f"Received: source={source!r}"
        )


def _check_image_size(image_size):
    image_size = check_count("image_size", image_size, 32)
    if image_size % 128:
        # KerasCV's anchor generators and label encoders need sides that
        # the P7 level (stride 128) divides.
        raise ValueError(
            "`image_size` must be a multiple of 128 (KerasCV's detectors "
            f"need it). Received: image_size={image_size}"
        )
    return image_size


def steps_per_epoch(source, batch_size):
    """Full batches in one pass over `source`."""
    _check_source(source)
    batch_size = check_count("batch_size", batch_size)
    steps = source.num_examples // batch_size
    if steps == 0:
        raise ValueError(
            f"`batch_size`={batch_size} exceeds the {source.num_examples} "
            f"examples of {source.name!r} ({source.split})."
        )
    return steps


def training_dataset(
    source,
    *,
    image_size,
    batch_size,
    seed,
    epoch,
    start_step=0,
    steps=None,
    scale_range=(0.75, 1.25),
    flip=True,
    max_boxes=DEFAULT_MAX_BOXES,
    num_replicas=1,
    input_pipeline=(0, 1),
):
    """The augmented training batches of one epoch, deterministic.

    Args:
        source: a `DetectionSource`.
        image_size: side of the square batches (a multiple of 128).
        batch_size: global batch size (all replicas).
        seed, epoch: fix the shuffle and every random draw.
        start_step: steps of this epoch to skip (a resumed run).
        steps: steps in the epoch (default: one pass); more than one pass
            continues with a fresh shuffle.
        scale_range: the jittered resize's factor range, relative to
            "longer side = image_size". `(1, 1)` disables it.
        flip: random horizontal flip.
        max_boxes: objects kept per image (padding with -1 up to it).
        num_replicas, input_pipeline: as `keras_eca.data.training_dataset`:
            input pipeline `i` of `n` yields its replicas' batches of
            `batch_size // num_replicas`.

    Returns:
        A finite `tf.data.Dataset` of `(images, {"boxes", "classes"})`.

    Example:

    >>> source = keras_eca.detection.resolve_detection_source(
    ...     "synthetic", num_examples=8)
    >>> ds = keras_eca.detection.training_dataset(
    ...     source, image_size=128, batch_size=4, seed=0, epoch=0,
    ...     max_boxes=6)
    >>> images, targets = next(iter(ds))
    >>> images.shape, targets["boxes"].shape, targets["classes"].shape
    (TensorShape([4, 128, 128, 3]), TensorShape([4, 6, 4]), TensorShape([4, 6]))
    """
    _check_source(source)
    image_size = _check_image_size(image_size)
    batch_size = check_count("batch_size", batch_size)
    seed = check_count("seed", seed, 0)
    epoch = check_count("epoch", epoch, 0)
    max_boxes = check_count("max_boxes", max_boxes)
    num_replicas = check_count("num_replicas", num_replicas)
    index, count = check_input_pipeline(input_pipeline)
    if batch_size % num_replicas or num_replicas % count:
        raise ValueError(
            "`batch_size` must be a multiple of `num_replicas`, and that of "
            f"the input pipelines. Received: batch_size={batch_size}, "
            f"num_replicas={num_replicas}, input_pipeline={input_pipeline!r}"
        )
    try:
        low, high = (float(v) for v in scale_range)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not 0 < low <= high:
        raise ValueError(
            "`scale_range` must be (low, high) with 0 < low <= high. "
            f"Received: scale_range={scale_range!r}"
        )
    if steps is None:
        steps = steps_per_epoch(source, batch_size)
    steps, start_step = check_epoch_steps(steps, start_step)
    total = source.num_examples
    first, end = start_step * batch_size, steps * batch_size
    passes = range(first // total, max(-(-end // total), first // total + 1))
    stream = None
    for p in passes:
        part = source.examples(derived_seed(seed, epoch, p, _SHUFFLE_SALT))
        stream = part if stream is None else stream.concatenate(part)
    stream = stream.enumerate(start=passes[0] * total)
    stream = stream.skip(first - passes[0] * total).take(end - first)
    if count > 1:
        share = batch_size // count
        stream = stream.filter(
            lambda k, example: tf.equal((k % batch_size) // share, index)
        )
    key = tf.constant(derived_seed(seed, epoch, _AUGMENT_SALT), tf.int64)
    encoded = source.encoded

    def make(k, example):
        image, boxes, classes = training_transform(
            example, tf.stack([key, k]), image_size=image_size,
            scale_range=(low, high), flip=flip, encoded=encoded,
        )
        boxes, classes = _pad(boxes, classes, max_boxes)
        return image, {"boxes": boxes, "classes": classes}

    ds = stream.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size // num_replicas, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(dataset_options())


def evaluation_dataset(source, *, image_size, batch_size, max_boxes=DEFAULT_MAX_BOXES):
    """The split resized with padding, in order, with what COCO metrics need.

    Returns:
        A `tf.data.Dataset` of dicts: `images` (B, S, S, 3) float32;
        `boxes` (B, M, 4) xyxy pixels of the resized image and `classes`
        (B, M) float32, padded with -1, crowd boxes included; `is_crowd`
        (B, M) bool; `scale` (B,) (resized / original); `image_id` (B,).
        The last batch may be smaller.
    """
    _check_source(source)
    image_size = _check_image_size(image_size)
    batch_size = check_count("batch_size", batch_size)
    max_boxes = check_count("max_boxes", max_boxes)
    encoded = source.encoded

    def make(example):
        image, boxes, classes, crowd, scale = resize_with_padding(
            example, image_size, encoded
        )
        padded_boxes, padded_classes = _pad(boxes, classes, max_boxes)
        crowd = tf.pad(
            crowd[:max_boxes], [[0, max_boxes - tf.shape(crowd[:max_boxes])[0]]]
        )
        return {
            "images": tf.ensure_shape(image, [image_size, image_size, 3]),
            "boxes": padded_boxes,
            "classes": padded_classes,
            "is_crowd": tf.ensure_shape(crowd, [max_boxes]),
            "scale": scale,
            "image_id": example["image_id"],
        }

    ds = source.examples(None).map(
        make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(dataset_options())
