"""Per-image transforms: torchvision's RandomResizedCrop (stateless), flip,
the evaluation resize and centre crop, normalisation.

All functions take and return single images (HWC); the pipelines map them.
"""

import math

import numpy as np
import tensorflow as tf

from keras_eca._checks import is_finite_number
from keras_eca._checks import is_integer

JPEG_MAGIC = b"\xff\xd8\xff"
CROP_ATTEMPTS = 10
# PIL's filters, as `tf.image.resize` names them ("lanczos" is PIL's a=3).
INTERPOLATIONS = {
    "nearest": "nearest",
    "bilinear": "bilinear",
    "bicubic": "bicubic",
    "lanczos": "lanczos3",
    "lanczos3": "lanczos3",
    "lanczos5": "lanczos5",
    "area": "area",
    "box": "area",
}


def check_image_size(image_size):
    if not is_integer(image_size) or image_size < 1:
        raise ValueError(
            "`image_size` must be a positive integer. "
            f"Received: image_size={image_size!r}"
        )
    return int(image_size)


def check_interpolation(interpolation):
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {sorted(INTERPOLATIONS)}. "
            f"Received: interpolation={interpolation!r}"
        )
    return INTERPOLATIONS[interpolation]


def check_range(name, value, low, high):
    """A `(min, max)` pair of finite numbers within [low, high]."""
    try:
        a, b = value
    except (TypeError, ValueError):
        a = b = None
    if not (
        is_finite_number(a)
        and is_finite_number(b)
        and low <= a <= b <= high
    ):
        raise ValueError(
            f"`{name}` must be a pair (min, max) with {low} <= min <= max "
            f"<= {high}. Received: {name}={value!r}"
        )
    return float(a), float(b)


def check_stats(mean, std):
    """`mean` and `std` as float32 constants on the 0..255 scale."""
    for name, value in (("mean", mean), ("std", std)):
        ok = (
            isinstance(value, (tuple, list, np.ndarray))
            and len(value) == 3
            and all(is_finite_number(v) for v in value)
        )
        if not ok or (name == "std" and min(value) <= 0):
            raise ValueError(
                f"`{name}` must be 3 finite numbers on the 0..1 scale"
                + (" (all > 0)" if name == "std" else "")
                + f", as IMAGENET_{name.upper()}. Received: {name}={value!r}"
            )
    return (
        tf.constant([255.0 * float(v) for v in mean], tf.float32),
        tf.constant([255.0 * float(v) for v in std], tf.float32),
    )


def normalize(image, mean255, std255):
    """`(image - mean) / std` in float32, both on the 0..255 scale."""
    return (tf.cast(image, tf.float32) - mean255) / std255


def is_jpeg(data):
    """Whether the encoded bytes `data` (scalar string) are a JPEG."""
    return tf.equal(tf.strings.substr(data, 0, 3), JPEG_MAGIC)


def decode_image(data, dct_method=""):
    """Decodes JPEG/PNG/BMP/GIF bytes to a `uint8` RGB HWC image (a GIF's
    first frame). `dct_method="INTEGER_ACCURATE"` decodes JPEGs exactly as
    PIL (libjpeg's ISLOW) does."""
    return tf.cond(
        is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method=dct_method),
        lambda: tf.ensure_shape(
            tf.io.decode_image(data, channels=3, expand_animations=False),
            [None, None, 3],
        ),
    )


def _draws(seed):
    """The uniforms of one element: 4 x 10 for the crop attempts (area,
    log-aspect, top, left), then one for the flip."""
    return tf.random.stateless_uniform(
        [4 * CROP_ATTEMPTS + 1], seed=seed, dtype=tf.float64
    )


def _box(height, width, draws, scale, ratio):
    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    draws = tf.reshape(draws[: 4 * CROP_ATTEMPTS], [4, CROP_ATTEMPTS])
    area = h * w * (scale[0] + (scale[1] - scale[0]) * draws[0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_low + (log_high - log_low) * draws[1])
    # Python's round() and tf.round both round half to even.
    crop_w = tf.round(tf.sqrt(area * aspect))
    crop_h = tf.round(tf.sqrt(area / aspect))
    fits = (crop_w > 0) & (crop_w <= w) & (crop_h > 0) & (crop_h <= h)
    # torch.randint(0, n + 1): uniform over 0..n.
    tops = tf.floor(draws[2] * (h - crop_h + 1))
    lefts = tf.floor(draws[3] * (w - crop_w + 1))
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    found = tf.gather(tf.stack([tops, lefts, crop_h, crop_w]), first, axis=1)
    # No attempt fits: the whole image, clamped to the ratio range, centred.
    in_ratio = w / h
    fallback_w = tf.where(in_ratio > ratio[1], tf.round(h * ratio[1]), w)
    fallback_h = tf.where(in_ratio < ratio[0], tf.round(w / ratio[0]), h)
    fallback = tf.stack(
        [
            tf.floor((h - fallback_h) / 2),
            tf.floor((w - fallback_w) / 2),
            fallback_h,
            fallback_w,
        ]
    )
    return tf.cast(tf.where(tf.reduce_any(fits), found, fallback), tf.int32)


def random_resized_crop_box(
    height, width, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
):
    """torchvision's `RandomResizedCrop.get_params`, stateless.

    Up to 10 attempts draw an area fraction uniformly in `scale` and an
    aspect ratio (w / h) log-uniformly in `ratio`; the first whose rounded
    box fits is placed uniformly. If none fits, the whole image clamped to
    `ratio` is centred, as torchvision does. `training_transform` with the
    same `seed` crops this box.

    Args:
        height, width: the image's size (int scalars or tensors).
        seed: a stateless seed, int tensor of shape `(2,)`.
        scale, ratio: `(min, max)` pairs.

    Returns:
        int32 tensor `[top, left, crop_height, crop_width]`.

    Example:

    >>> box = keras_eca.data.random_resized_crop_box(100, 80, seed=[1, 2])
    >>> top, left, h, w = box.numpy()
    >>> bool(0 <= top and top + h <= 100 and 0 <= left and left + w <= 80)
    True
    """
    return _box(height, width, _draws(seed), scale, ratio)


def training_transform(
    image,
    seed,
    *,
    image_size,
    encoded,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
    flip=True,
    dct_method="",
):
    """RandomResizedCrop to `image_size` (bilinear, antialiased) and a
    horizontal flip with probability 1/2, keyed by the stateless `seed`.

    `image` is encoded bytes when `encoded` (JPEGs are cropped while
    decoding with `decode_and_crop_jpeg`; other formats after decoding) or
    an HWC image. Returns float32 `(image_size, image_size, 3)` on 0..255.

    Example:

    >>> image = np.zeros((30, 40, 3), "uint8")
    >>> out = keras_eca.data.training_transform(
    ...     image, seed=[0, 7], image_size=16, encoded=False)
    >>> tuple(out.shape)
    (16, 16, 3)
    """
    draws = _draws(seed)
    if encoded:
        # Two conds with small branches: one holding the crop box inside a
        # branch made the whole map ~20% slower (measured).
        jpeg = is_jpeg(image)

        def jpeg_shape():
            shape = tf.io.extract_jpeg_shape(image)
            return tf.zeros([0, 0, 3], tf.uint8), shape

        def decode_other():
            decoded = tf.io.decode_image(
                image, channels=3, expand_animations=False
            )
            decoded = tf.ensure_shape(decoded, [None, None, 3])
            return decoded, tf.shape(decoded)

        decoded, shape = tf.cond(jpeg, jpeg_shape, decode_other)
        box = _box(shape[0], shape[1], draws, scale, ratio)
        crop = tf.cond(
            jpeg,
            lambda: tf.io.decode_and_crop_jpeg(
                image, box, channels=3, dct_method=dct_method
            ),
            lambda: _slice(decoded, box),
        )
    else:
        image = tf.convert_to_tensor(image)
        shape = tf.shape(image)
        crop = _slice(image, _box(shape[0], shape[1], draws, scale, ratio))
    # torchvision resizes the crop with PIL's (area-aware) bilinear filter.
    out = tf.image.resize(
        crop, [image_size, image_size], method="bilinear", antialias=True
    )
    if flip:
        out = tf.cond(
            draws[-1] < 0.5, lambda: tf.reverse(out, axis=[1]), lambda: out
        )
    return tf.ensure_shape(out, [image_size, image_size, 3])


def _slice(image, box):
    return tf.slice(
        image, tf.stack([box[0], box[1], 0]), tf.stack([box[2], box[3], -1])
    )


def resized_size(height, width, size):
    """torchvision's `Resize(size)` for an int `size`: the shorter side
    becomes `size`, the longer `int(size * long / short)`.

    Returns int32 `[new_height, new_width]`.
    """
    h = tf.cast(height, tf.int64)
    w = tf.cast(width, tf.int64)
    size = tf.cast(size, tf.int64)
    # Exact integer floor division: equals Python's int(size * long / short).
    return tf.cast(
        tf.where(
            w <= h,
            tf.stack([size * h // w, size]),
            tf.stack([size, size * w // h]),
        ),
        tf.int32,
    )


def pil_resize(image, size, method):
    """Resizes as PIL's `Image.resize` does on 8-bit images: separable,
    antialiased (the filter widens when downscaling), width first, each
    pass rounded half up and clipped to 0..255. Returns float32.
    """
    shape = tf.shape(image)
    out = tf.cast(image, tf.float32)
    for target in ([shape[0], size[1]], [size[0], size[1]]):
        out = tf.image.resize(out, target, method=method, antialias=True)
        out = tf.clip_by_value(tf.floor(out + 0.5), 0.0, 255.0)
    return out


def evaluation_transform(
    image, *, image_size, crop_pct=0.875, interpolation="bilinear"
):
    """timm's / torchvision's evaluation transform on one decoded image.

    `Resize(int(image_size / crop_pct))` (shorter side, aspect kept, PIL's
    antialiased filter with its 8-bit rounding) then
    `CenterCrop(image_size)` with torchvision's offsets
    (`round((h - image_size) / 2)`). Not normalised.

    Args:
        image: HWC image (3 channels), uint8 or float on 0..255.
        image_size: int, the output side.
        crop_pct: fraction in (0, 1] of the resized image kept.
        interpolation: `"bilinear"`, `"bicubic"`, `"nearest"`,
            `"lanczos"`, `"area"`, ...

    Returns:
        float32 `(image_size, image_size, 3)` with values in 0..255.

    Example:

    >>> image = np.zeros((300, 400, 3), "uint8")
    >>> out = keras_eca.data.evaluation_transform(
    ...     image, image_size=224, crop_pct=0.875, interpolation="bicubic")
    >>> tuple(out.shape), out.dtype.name
    ((224, 224, 3), 'float32')
    """
    image_size = check_image_size(image_size)
    method = check_interpolation(interpolation)
    if not (is_finite_number(crop_pct) and 0 < crop_pct <= 1):
        raise ValueError(
            "`crop_pct` must be a number in (0, 1]. "
            f"Received: crop_pct={crop_pct!r}"
        )
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    size = resized_size(shape[0], shape[1], int(image_size / crop_pct))
    if method == "nearest":
        resized = tf.image.resize(
            tf.cast(image, tf.float32), size, method="nearest"
        )
    else:
        resized = pil_resize(image, size, method)
    # Python's round() rounds half to even, as tf.round does.
    top = tf.cast(tf.round((size[0] - image_size) / 2), tf.int32)
    left = tf.cast(tf.round((size[1] - image_size) / 2), tf.int32)
    out = resized[top : top + image_size, left : left + image_size]
    return tf.ensure_shape(out, [image_size, image_size, 3])
