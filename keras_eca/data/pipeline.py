"""The training and evaluation `tf.data` pipelines.

Training: one deterministic element stream per `(seed, epoch)`. Global
step `j` takes elements `j * G .. j * G + G - 1` (`G` the global batch),
split into `R` replica batches of `G // R`; input pipeline `i` of `n` keeps
the `R // n` consecutive replica batches of its replicas. Every random op is
stateless, keyed by `(seed, epoch, element index)`, so any pipeline, shard
or resumed copy computes the same pixels for the same element.
"""

import numpy as np
import tensorflow as tf

from keras_eca._checks import is_integer
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD
from keras_eca.data import transforms
from keras_eca.data.sources import ImageSource

# Salts keep the shuffle and augmentation streams of a seed independent.
_SHUFFLE_SALT = 0x5F1
_AUGMENT_SALT = 0xA06


def _check_source(source):
    if not isinstance(source, ImageSource):
        raise TypeError(
            "`source` must be an ImageSource (from resolve_source). "
            f"Received: source={source!r}"
        )


def check_count(name, value, minimum=1):
    if not is_integer(value) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_epoch_steps(steps, start_step):
    """`(steps, start_step)` of an epoch resumed at `start_step`, checked:
    `steps >= 1`, `0 <= start_step <= steps`."""
    steps = check_count("steps", steps)
    start_step = check_count("start_step", start_step, 0)
    if start_step > steps:
        raise ValueError(
            f"`start_step` must be <= steps ({steps}). "
            f"Received: start_step={start_step}"
        )
    return steps, start_step


def check_input_pipeline(input_pipeline):
    try:
        index, count = input_pipeline
    except (TypeError, ValueError):
        index = count = None
    if not (is_integer(index) and is_integer(count) and 0 <= index < count):
        raise ValueError(
            "`input_pipeline` must be a pair (index, count) with "
            f"0 <= index < count. Received: input_pipeline={input_pipeline!r}"
        )
    return int(index), int(count)


def dataset_options():
    options = tf.data.Options()
    # Sharding is explicit (input_pipeline); tf.distribute must not re-shard.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )
    options.deterministic = True
    return options


def derived_seed(*parts):
    """A 63-bit seed mixed from integers (NumPy's SeedSequence)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2)
    return (int(state[0]) << 31) ^ int(state[1])


def steps_per_epoch(source, global_batch_size):
    """Full global batches in one pass over `source`.

    Example:

    >>> source = keras_eca.data.resolve_source(
    ...     (np.zeros((10, 4, 4, 3), "uint8"), np.arange(10) % 2))
    >>> keras_eca.data.steps_per_epoch(source, 4)
    2
    """
    _check_source(source)
    global_batch_size = check_count("global_batch_size", global_batch_size)
    steps = source.num_examples // global_batch_size
    if steps == 0:
        raise ValueError(
            f"`global_batch_size`={global_batch_size} exceeds the "
            f"{source.num_examples} examples of {source.name!r} "
            f"({source.split}): not one full step per epoch."
        )
    return steps


def training_dataset(
    source,
    *,
    image_size,
    global_batch_size,
    seed,
    epoch,
    start_step=0,
    steps=None,
    num_replicas=1,
    input_pipeline=(0, 1),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
    flip=True,
    data_format="channels_last",
):
    """The augmented training batches of one epoch, deterministic.

    Each element gets torchvision's RandomResizedCrop (`scale`, `ratio`,
    bilinear antialiased resize to `image_size`; on JPEG bytes the crop is
    decoded alone with `decode_and_crop_jpeg`), a horizontal flip (`flip`),
    and `(x - 255 * mean) / (255 * std)`.

    Args:
        source: an `ImageSource`.
        image_size: int, side of the square output.
        global_batch_size: images per global step (all replicas).
        seed: non-negative int; with `epoch` it fixes the shuffle and every
            random draw.
        epoch: non-negative int.
        start_step: global steps of this epoch to skip (a resumed run);
            skipped before any image is read or decoded.
        steps: global steps in the epoch; defaults to
            `steps_per_epoch(source, global_batch_size)`. More than one pass
            continues with a fresh shuffle of the data.
        num_replicas: replicas `R` in the whole job; batches have
            `global_batch_size // R` images.
        input_pipeline: `(i, n)`: this is input pipeline `i` of `n` (one per
            worker); it yields the `R // n` replica batches of replicas
            `i * R // n ..` of each global step, in order.
        mean, std: per-channel statistics on the 0..1 scale.
        scale, ratio: RandomResizedCrop's area and aspect ranges.
        flip: random horizontal flip.
        data_format: `"channels_last"` (NHWC) or `"channels_first"` (NCHW).

    Returns:
        A finite `tf.data.Dataset` of `(float32 images, int32 labels)`:
        `(steps - start_step) * R // n` replica batches.

    Example:

    >>> source = keras_eca.data.resolve_source(
    ...     (np.zeros((8, 12, 10, 3), "uint8"), np.arange(8) % 2))
    >>> ds = keras_eca.data.training_dataset(
    ...     source, image_size=8, global_batch_size=4, seed=0, epoch=0)
    >>> [tuple(images.shape) for images, labels in ds]
    [(4, 8, 8, 3), (4, 8, 8, 3)]
    """
    _check_source(source)
    image_size = transforms.check_image_size(image_size)
    global_batch_size = check_count("global_batch_size", global_batch_size)
    seed = check_count("seed", seed, 0)
    epoch = check_count("epoch", epoch, 0)
    num_replicas = check_count("num_replicas", num_replicas)
    index, count = check_input_pipeline(input_pipeline)
    if global_batch_size % num_replicas:
        raise ValueError(
            "`global_batch_size` must be a multiple of `num_replicas`. "
            f"Received: global_batch_size={global_batch_size}, "
            f"num_replicas={num_replicas}"
        )
    if num_replicas % count:
        raise ValueError(
            "`num_replicas` must be a multiple of the number of input "
            f"pipelines. Received: num_replicas={num_replicas}, "
            f"input_pipeline={input_pipeline!r}"
        )
    if steps is None:
        steps = steps_per_epoch(source, global_batch_size)
    steps, start_step = check_epoch_steps(steps, start_step)
    scale = transforms.check_range("scale", scale, 0.0, 1.0)
    if scale[1] <= 0:
        raise ValueError(
            f"`scale` must allow a non-empty crop. Received: scale={scale!r}"
        )
    ratio = transforms.check_range("ratio", ratio, 1e-6, 1e6)
    mean255, std255 = transforms.check_stats(mean, std)
    channels_first = _check_data_format(data_format)

    total = source.num_examples
    first = start_step * global_batch_size
    end = steps * global_batch_size
    # At least one pass, so that start_step == steps gives an empty dataset.
    passes = range(first // total, max(-(-end // total), first // total + 1))
    stream = None
    for p in passes:
        keys = source._keys(derived_seed(seed, epoch, p, _SHUFFLE_SALT))
        stream = keys if stream is None else stream.concatenate(keys)
    stream = stream.enumerate(start=passes[0] * total)
    stream = stream.skip(first - passes[0] * total).take(end - first)

    replica_batch = global_batch_size // num_replicas
    share = global_batch_size // count
    if count > 1:
        # Element k of a step belongs to pipeline (k mod G) // (G / n).
        stream = stream.filter(
            lambda k, key: tf.equal((k % global_batch_size) // share, index)
        )
    augment_key = tf.constant(
        derived_seed(seed, epoch, _AUGMENT_SALT), tf.int64
    )
    encoded = source.encoded
    load = source._load

    def make_example(k, key):
        image, label = load(*key) if isinstance(key, tuple) else load(key)
        # Stateless ops scramble their seed: adjacent k are independent.
        element_seed = tf.stack([augment_key, k])
        image = transforms.training_transform(
            image,
            element_seed,
            image_size=image_size,
            encoded=encoded,
            scale=scale,
            ratio=ratio,
            flip=flip,
        )
        return transforms.normalize(image, mean255, std255), label

    ds = stream.map(
        make_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    ds = ds.batch(replica_batch, drop_remainder=True)
    if channels_first:
        ds = ds.map(lambda x, y: (tf.transpose(x, [0, 3, 1, 2]), y))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.with_options(dataset_options())


def _check_data_format(data_format):
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format == "channels_first"


def evaluation_dataset(
    source,
    *,
    image_size,
    crop_pct=0.875,
    interpolation="bilinear",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    batch_size,
    input_pipeline=(0, 1),
    data_format="channels_last",
):
    """Evaluation batches: resize, centre crop, normalise, in fixed order.

    The transform is `evaluation_transform` (PIL's resize, to within one
    8-bit level), JPEGs decoded as PIL decodes them (libjpeg's accurate
    integer DCT). Input pipeline `i` of `n` takes records `i, i + n, ...`;
    the last batch may be partial.

    Args:
        source: an `ImageSource`.
        image_size, crop_pct, interpolation: as the weights' table entry
            (`input_size`, `crop_pct`, `interpolation`).
        mean, std: per-channel statistics on the 0..1 scale.
        batch_size: images per batch of this pipeline.
        input_pipeline: `(i, n)`.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        A finite `tf.data.Dataset` of `(float32 images, int32 labels)`.

    Example:

    >>> source = keras_eca.data.resolve_source(
    ...     (np.zeros((5, 40, 30, 3), "uint8"), np.arange(5) % 2))
    >>> ds = keras_eca.data.evaluation_dataset(
    ...     source, image_size=16, crop_pct=0.875, batch_size=2)
    >>> [int(labels.shape[0]) for images, labels in ds]
    [2, 2, 1]
    """
    _check_source(source)
    image_size = transforms.check_image_size(image_size)
    batch_size = check_count("batch_size", batch_size)
    index, count = check_input_pipeline(input_pipeline)
    mean255, std255 = transforms.check_stats(mean, std)
    channels_first = _check_data_format(data_format)
    # Check crop_pct and interpolation now, not inside tf.data.
    transforms.evaluation_transform(
        tf.zeros([1, 1, 3], tf.uint8),
        image_size=1,
        crop_pct=crop_pct,
        interpolation=interpolation,
    )
    encoded = source.encoded
    load = source._load

    def make_example(*key):
        image, label = load(*key)
        if encoded:
            # PIL decodes with libjpeg's accurate integer DCT.
            image = transforms.decode_image(
                image, dct_method="INTEGER_ACCURATE"
            )
        image = transforms.evaluation_transform(
            image,
            image_size=image_size,
            crop_pct=crop_pct,
            interpolation=interpolation,
        )
        return transforms.normalize(image, mean255, std255), label

    keys = source._keys(None)
    if count > 1:
        keys = keys.shard(count, index)
    ds = keys.map(
        make_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    ds = ds.batch(batch_size)
    if channels_first:
        ds = ds.map(lambda x, y: (tf.transpose(x, [0, 3, 1, 2]), y))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.with_options(dataset_options())
