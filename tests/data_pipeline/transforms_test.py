"""RandomResizedCrop against torchvision's rule, the JPEG fast path, the
evaluation resize and centre crop, and the PIL reference."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_eca import data
from keras_eca.benchmark import input_pipeline
from keras_eca.data import transforms
from tests.data_pipeline.conftest import encode
from tests.data_pipeline.conftest import fake_photos

pytestmark = pytest.mark.tensorflow_only

SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def torchvision_get_params(height, width, draws, scale, ratio):
    """torchvision's RandomResizedCrop.get_params (v0.2x), written out with
    its random numbers replaced by `draws` (4 x 10 uniforms)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for attempt in range(10):
        target_area = area * (scale[0] + (scale[1] - scale[0]) * draws[0][attempt])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * draws[1][attempt])
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(draws[2][attempt] * (height - h + 1))  # randint(0, height - h + 1)
            j = int(draws[3][attempt] * (width - w + 1))
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


def boxes(height, width, count, scale=SCALE, ratio=RATIO):
    """`count` boxes and their draws, computed in one tf.data pass."""
    ds = tf.data.Dataset.range(count).map(
        lambda k: (
            data.random_resized_crop_box(
                height, width, tf.stack([tf.constant(11, tf.int64), k]), scale, ratio
            ),
            transforms._draws(tf.stack([tf.constant(11, tf.int64), k])),
        )
    )
    got = list(ds.batch(count).as_numpy_iterator())[0]
    return got[0], got[1][:, :40].reshape(count, 4, 10)


@pytest.mark.parametrize(
    "height, width, scale, ratio",
    [
        (100, 80, SCALE, RATIO),
        (37, 300, SCALE, RATIO),  # wider than 4:3: often the fallback
        (300, 37, SCALE, RATIO),
        (1, 1, SCALE, RATIO),
        (50, 50, (1.0, 1.0), (2.0, 3.0)),  # never fits: fallback
        (60, 40, (0.5, 0.5), (1.0, 1.0)),
    ],
)
def test_crop_box_is_torchvision_rule(height, width, scale, ratio):
    got, draws = boxes(height, width, 200, scale, ratio)
    expected = [torchvision_get_params(height, width, d, scale, ratio) for d in draws]
    np.testing.assert_array_equal(got, np.array(expected))


def test_crop_box_statistics():
    height, width = 120, 90
    got, _ = boxes(height, width, 3000)
    top, left, h, w = got.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    assert (h >= 1).all() and (w >= 1).all()
    area = h * w / (height * width)
    aspect = w / h
    # Rounding moves area and aspect a little past the sampled ranges.
    assert area.min() >= 0.08 * 0.9 and area.max() <= 1.0
    assert aspect.min() >= 0.75 * 0.95 and aspect.max() <= 4 / 3 * 1.05
    # Offsets spread over the free range.
    free = (height - h)[h < height * 0.5]
    assert 0.4 < (top[h < height * 0.5] / free).mean() < 0.6
    # log-uniform aspect: on a square image, as many crops wider than tall
    # as taller than wide.
    h, w = boxes(100, 100, 3000)[0][:, 2:].T
    wide, tall = (w > h * 1.02).mean(), (w < h * 0.98).mean()
    assert abs(wide - tall) < 0.05 and wide > 0.3


def test_decode_and_crop_equals_decode_then_crop():
    """The JPEG fast path decodes the crop's pixels, except libjpeg's fancy
    chroma upsampling at the crop's first and last column (no neighbour
    column there); without chroma subsampling it is exact."""
    rng = np.random.default_rng(0)
    image = fake_photos(1, (97, 131), seed=2)[0]
    subsampled, full_chroma = encode(image), encode(image, subsampling=0)
    for raw, exact in ((subsampled, False), (full_chroma, True)):
        whole = tf.io.decode_jpeg(raw, channels=3).numpy().astype(int)
        edge_diffs = []
        for _ in range(40):
            h, w = rng.integers(4, 97), rng.integers(4, 131)
            t, l = rng.integers(0, 97 - h + 1), rng.integers(0, 131 - w + 1)
            crop = tf.io.decode_and_crop_jpeg(raw, [t, l, h, w], channels=3)
            diff = np.abs(crop.numpy().astype(int) - whole[t : t + h, l : l + w])
            np.testing.assert_array_equal(diff[:, 1:-1], 0)
            edge_diffs.append(diff.max())
        if exact:
            assert max(edge_diffs) == 0
        else:
            assert max(edge_diffs) <= 24


def test_training_transform_same_crop_for_bytes_and_pixels():
    image = fake_photos(1, (45, 61), seed=5)[0]
    for k in range(6):
        seed = tf.constant([3, k], tf.int64)
        kwargs = dict(image_size=24, scale=SCALE, ratio=RATIO)
        from_pixels = data.training_transform(image, seed, encoded=False, **kwargs)
        from_png = data.training_transform(encode(image, "PNG"), seed, encoded=True, **kwargs)
        np.testing.assert_array_equal(from_png, from_pixels)
        raw = encode(image, subsampling=0, quality=95)
        decoded = tf.io.decode_jpeg(raw, channels=3)
        from_jpeg = data.training_transform(raw, seed, encoded=True, **kwargs)
        np.testing.assert_array_equal(
            from_jpeg, data.training_transform(decoded, seed, encoded=False, **kwargs)
        )


# --- evaluation ---------------------------------------------------------------


def torchvision_resize_size(height, width, size):
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def test_resized_size_is_torchvision_rule():
    rng = np.random.default_rng(1)
    shapes = [(h, w) for h, w in rng.integers(1, 2000, (300, 2))] + [(7, 7), (3, 1000)]
    for size in (224, 256, 329):
        got = tf.data.Dataset.from_tensor_slices(np.array(shapes)).map(
            lambda s: transforms.resized_size(s[0], s[1], size)
        )
        got = [tuple(g) for g in got.as_numpy_iterator()]
        assert got == [torchvision_resize_size(h, w, size) for h, w in shapes]


@pytest.mark.parametrize(
    "height, width, offset",
    [(10, 23, (0, 6)), (10, 24, (0, 7)), (10, 25, (0, 8)), (27, 10, (8, 0))],
)
def test_centre_crop_offsets_round_half_to_even(height, width, offset):
    # Shorter side = 10 = int(10 / 1.0): no resize, the crop alone.
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols, rows * 0], -1).astype(np.uint8)
    out = data.evaluation_transform(image, image_size=10, crop_pct=1.0, interpolation="bicubic")
    top, left = offset  # round((23-10)/2)=6, round(7)=7, round(7.5)=8, round(8.5)=8
    np.testing.assert_array_equal(out, image[top : top + 10, left : left + 10])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop_pct": 0}, "crop_pct=0"),
        ({"crop_pct": 1.2}, "crop_pct=1.2"),
        ({"interpolation": "cubic"}, "interpolation='cubic'"),
        ({"image_size": 0}, "image_size=0"),
    ],
)
def test_evaluation_transform_errors(kwargs, message):
    kwargs = {"image_size": 8, "crop_pct": 0.875, "interpolation": "bilinear", **kwargs}
    with pytest.raises(ValueError) as info:
        data.evaluation_transform(np.zeros((9, 9, 3), "uint8"), **kwargs)
    assert message in str(info.value)


def test_evaluation_dataset(jpeg_folder):
    source = data.resolve_source(jpeg_folder)
    kwargs = dict(image_size=20, crop_pct=0.875, interpolation="bicubic", batch_size=5)
    got = list(data.evaluation_dataset(source, **kwargs).as_numpy_iterator())
    assert [x.shape for x, _ in got] == [(5, 20, 20, 3)] * 4 + [(4, 20, 20, 3)]
    labels = np.concatenate([y for _, y in got])
    assert labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    # The same pixels as the transform, normalised.
    raw, _ = next(iter(source.records()))
    pixels = data.evaluation_transform(
        data.decode_image(raw, dct_method="INTEGER_ACCURATE"),
        image_size=20, crop_pct=0.875, interpolation="bicubic",
    )
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    np.testing.assert_allclose(got[0][0][0], (pixels - mean) / std, atol=1e-5)
    # Two pipelines: records 0, 2, 4, ... and 1, 3, 5, ...
    shards = [
        np.concatenate([y for _, y in data.evaluation_dataset(
            source, input_pipeline=(i, 2), **kwargs).as_numpy_iterator()])
        for i in range(2)
    ]
    assert shards[0].tolist() == labels[0::2].tolist()
    assert shards[1].tolist() == labels[1::2].tolist()
    first = next(iter(data.evaluation_dataset(source, data_format="channels_first", **kwargs)))
    assert first[0].shape == (5, 3, 20, 20)


def test_evaluation_dataset_errors(jpeg_folder):
    source = data.resolve_source(jpeg_folder)
    with pytest.raises(ValueError, match="crop_pct=2"):
        data.evaluation_dataset(source, image_size=8, crop_pct=2, batch_size=2)
    with pytest.raises(ValueError, match="batch_size=0"):
        data.evaluation_dataset(source, image_size=8, batch_size=0)


# --- PIL fidelity ----------------------------------------------------------------

# Measured (8 scikit-image photos): mean 0.0001-0.0008, max 1.0 (one 8-bit
# level on 0.01-0.08 % of the pixels), from pixels and from JPEG bytes alike.
FIDELITY_MEAN_BOUND = {"bicubic": 0.001, "bilinear": 0.002}


def test_evaluation_transform_matches_pil():
    result = input_pipeline.pil_fidelity(
        input_pipeline.FIDELITY_SETTINGS, variants=("pipeline", "jpeg")
    )
    assert len(result["images"]) == 8
    for row in result["rows"]:
        assert row["mean"] <= FIDELITY_MEAN_BOUND[row["interpolation"]], row
        assert row["max"] <= 1.0, row


def test_plain_tf_resize_is_further_from_pil():
    """Why the evaluation resize emulates PIL: one float resize is 0.28 off
    on average, and 2 (or more) without antialiasing."""
    result = input_pipeline.pil_fidelity(
        [(224, 0.875, "bicubic")],
        images={"coffee": input_pipeline.photos()["coffee"]},
        variants=("pipeline", "single_pass", "no_antialias"),
    )
    pipeline, single, no_aa = (row["mean"] for row in result["rows"])
    assert pipeline < 0.01 < 0.1 < single < 1.0 < no_aa
    table = input_pipeline.format_report(None, result)
    assert "no_antialias" in table and "1 photos" in table
