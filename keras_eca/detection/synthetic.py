"""An embedded detection set: coloured shapes on textured backgrounds.

Nothing is downloaded: every image is drawn from `(seed, split, index)`
with NumPy, so the set is the same on every machine. Three classes
(circle, square, triangle) of 14-48 px on a 128 px canvas, 1-4 objects an
image, boxes tight around each shape. The backgrounds are gratings and
blurred noise in random colours, so colour alone does not find a shape.
"""

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle")
IMAGE_SIZE = 128
MAX_OBJECTS = 4
SIZE_RANGE = (14, 48)
# Splits draw from disjoint seed streams.
_SPLIT_SALT = {"train": 11, "validation": 23, "test": 37}
_MAX_OVERLAP = 0.2  # intersection over the smaller box, between two shapes


def split_names():
    return tuple(_SPLIT_SALT)


def _background(rng, size):
    y, x = np.mgrid[0:size, 0:size].astype("float32") / size
    image = np.zeros((size, size, 3), "float32")
    base = rng.uniform(40, 215, 3)
    for _ in range(2):  # two gratings of random direction and frequency
        angle = rng.uniform(0, np.pi)
        frequency = rng.uniform(2, 9)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        image += wave[..., None] * rng.uniform(-35, 35, 3)
    # Blurred noise: an 8x8 grid, upsampled bilinearly.
    grid = rng.normal(0, 30, (9, 9, 3)).astype("float32")
    position = np.linspace(0, 8, size, dtype="float32")
    low = np.floor(position).astype(int).clip(0, 7)
    frac = (position - low)[:, None]
    rows = grid[low] * (1 - frac[..., None]) + grid[low + 1] * frac[..., None]
    noise = rows[:, low] * (1 - frac[None, :, :]) + rows[:, low + 1] * frac[None, :, :]
    return image + base + noise


def _mask(kind, rng, size, top, left, side):
    y, x = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    if kind == 0:  # circle
        r = side / 2
        return (y - top - r) ** 2 + (x - left - r) ** 2 <= r * r
    if kind == 1:  # square
        return (y >= top) & (y < top + side) & (x >= left) & (x < left + side)
    # An upright or inverted isosceles triangle filling the box.
    v = (y - top) / side
    if rng.random() < 0.5:
        v = 1 - v
    half = v * side / 2
    centre = left + side / 2
    return (v >= 0) & (v <= 1) & (np.abs(x - centre) <= half)


def _overlaps(box, boxes):
    for other in boxes:
        height = min(box[2], other[2]) - max(box[0], other[0])
        width = min(box[3], other[3]) - max(box[1], other[1])
        if height > 0 and width > 0:
            smaller = min(
                (box[2] - box[0]) * (box[3] - box[1]),
                (other[2] - other[0]) * (other[3] - other[1]),
            )
            if height * width > _MAX_OVERLAP * smaller:
                return True
    return False


def draw(seed, split, index, size=IMAGE_SIZE):
    """One image and its objects.

    Returns:
        `(image, boxes, classes)`: a `uint8` `(size, size, 3)` image,
        float32 `(n, 4)` boxes as `[ymin, xmin, ymax, xmax]` normalised to
        0..1 (TFDS's format), int32 `(n,)` class ids.
    """
    rng = np.random.default_rng([int(seed), _SPLIT_SALT[split], int(index)])
    image = _background(rng, size)
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    boxes, classes = [], []
    low, high = (round(s * size / IMAGE_SIZE) for s in SIZE_RANGE)
    for _ in range(count * 10):  # placement attempts
        if len(boxes) == count:
            break
        side = int(rng.integers(low, high + 1))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        box = (top, left, top + side, left + side)
        if _overlaps(box, boxes):
            continue
        kind = int(rng.integers(len(CLASS_NAMES)))
        mask = _mask(kind, rng, size, top, left, side)
        colour = rng.uniform(0, 255, 3)
        shade = rng.normal(0, 8, (size, size, 1))
        image = np.where(mask[..., None], colour + shade, image)
        rows, cols = np.nonzero(mask)
        boxes.append((rows.min(), cols.min(), rows.max() + 1, cols.max() + 1))
        classes.append(kind)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255)
    return (
        image.astype("uint8"),
        np.asarray(boxes, "float32").reshape(-1, 4) / size,
        np.asarray(classes, "int32"),
    )


def generate(num_examples, *, seed=0, split="train", size=IMAGE_SIZE):
    """`num_examples` images of a split, padded to `MAX_OBJECTS` objects.

    Returns:
        `(images, boxes, classes)`: uint8 `(N, size, size, 3)`, float32
        `(N, MAX_OBJECTS, 4)` normalised `yxyx` boxes and int32
        `(N, MAX_OBJECTS)` classes, both padded with -1.
    """
    if split not in _SPLIT_SALT:
        raise ValueError(
            f"`split` must be one of {list(_SPLIT_SALT)}. Received: split={split!r}"
        )
    images = np.zeros((num_examples, size, size, 3), "uint8")
    boxes = np.full((num_examples, MAX_OBJECTS, 4), -1, "float32")
    classes = np.full((num_examples, MAX_OBJECTS), -1, "int32")
    for index in range(num_examples):
        image, box, cls = draw(seed, split, index, size)
        images[index] = image
        boxes[index, : len(box)] = box
        classes[index, : len(cls)] = cls
    return images, boxes, classes
