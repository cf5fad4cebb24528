"""training_dataset: determinism, resume (start_step), passes, sharding."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_eca import data
from tests.data_pipeline.conftest import constant_images
from tests.data_pipeline.conftest import element_ids
from tests.data_pipeline.conftest import write_folder

pytestmark = pytest.mark.tensorflow_only

SIZE = 16


def batches(source, **kwargs):
    kwargs = {"image_size": SIZE, "seed": 3, "epoch": 0, **kwargs}
    return [
        (images, labels)
        for images, labels in data.training_dataset(source, **kwargs).as_numpy_iterator()
    ]


def assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.fixture(scope="module")
def jpegs(jpeg_folder):
    return data.resolve_source(jpeg_folder)


@pytest.fixture(scope="module")
def constants():
    count = 24
    return data.resolve_source((constant_images(count), np.arange(count) % 4))


def test_shapes_dtypes_and_count(jpegs):
    got = batches(jpegs, global_batch_size=5)
    assert len(got) == data.steps_per_epoch(jpegs, 5) == 4
    for images, labels in got:
        assert images.shape == (5, SIZE, SIZE, 3) and images.dtype == np.float32
        assert labels.shape == (5,) and labels.dtype == np.int32
    first = batches(jpegs, global_batch_size=5, data_format="channels_first")
    np.testing.assert_array_equal(first[0][0], got[0][0].transpose(0, 3, 1, 2))


def test_same_seed_and_epoch_same_batches(jpegs):
    reference = batches(jpegs, global_batch_size=4)
    assert_same(batches(jpegs, global_batch_size=4), reference)
    other_epoch = batches(jpegs, global_batch_size=4, epoch=1)
    other_seed = batches(jpegs, global_batch_size=4, seed=4)
    for other in (other_epoch, other_seed):
        assert not np.array_equal(other[0][0], reference[0][0])


def test_an_epoch_is_a_permutation_and_passes_reshuffle(constants):
    ids = [i for x, _ in batches(constants, global_batch_size=4) for i in element_ids(x)]
    assert sorted(ids) == list(range(24)) and ids != list(range(24))
    long = [
        i
        for x, _ in batches(constants, global_batch_size=4, steps=11)
        for i in element_ids(x)
    ]
    assert long[:24] == ids
    assert len(set(long[24:])) == 20 and long[24:] != ids[:20]
    next_epoch = [
        i for x, _ in batches(constants, global_batch_size=4, epoch=1) for i in element_ids(x)
    ]
    assert sorted(next_epoch) == list(range(24)) and next_epoch != ids


def test_labels_follow_their_images(constants):
    for images, labels in batches(constants, global_batch_size=6):
        assert [i % 4 for i in element_ids(images)] == labels.tolist()


@pytest.mark.parametrize("start_step", [1, 4])
def test_start_step_is_the_tail_bitwise(jpegs, start_step):
    full = batches(jpegs, global_batch_size=4, steps=8)
    assert len(full) == 8
    assert_same(
        batches(jpegs, global_batch_size=4, steps=8, start_step=start_step),
        full[start_step:],
    )


def test_start_step_past_a_pass_and_at_the_end(constants):
    full = batches(constants, global_batch_size=5, steps=9)
    assert_same(batches(constants, global_batch_size=5, steps=9, start_step=6), full[6:])
    assert batches(constants, global_batch_size=5, steps=9, start_step=9) == []


def test_start_step_skips_before_reading(tmp_path):
    # An unreadable file in the skipped steps must not be decoded.
    root = write_folder(tmp_path, {"a": 4, "b": 4}, size=(20, 20))
    bad = os.path.join(root, "b", "003.jpg")
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8\xff not a jpeg")
    source = data.resolve_source(root)
    position = 0
    with pytest.raises(tf.errors.InvalidArgumentError):
        for _ in data.training_dataset(
            source, image_size=8, global_batch_size=1, seed=0, epoch=0
        ):
            position += 1
    os.remove(bad)  # a missing file would fail just the same
    resumed = data.training_dataset(
        source, image_size=8, global_batch_size=1, seed=0, epoch=0,
        start_step=position + 1, steps=8,
    )
    assert len(list(resumed)) == 7 - position


@pytest.mark.parametrize("replicas, pipelines", [(2, 1), (2, 2), (4, 2)])
def test_pipelines_together_make_the_global_batches(jpegs, replicas, pipelines):
    global_batches = batches(jpegs, global_batch_size=8, steps=3)
    per_pipeline = [
        batches(
            jpegs,
            global_batch_size=8,
            steps=3,
            num_replicas=replicas,
            input_pipeline=(i, pipelines),
        )
        for i in range(pipelines)
    ]
    local = replicas // pipelines
    for shards in per_pipeline:
        assert len(shards) == 3 * local
        assert all(x.shape[0] == 8 // replicas for x, _ in shards)
    for step, (images, labels) in enumerate(global_batches):
        parts = [
            shards[step * local + r]
            for shards in per_pipeline
            for r in range(local)
        ]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), images)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)


def test_normalisation_uses_the_0_255_scale():
    images = np.full((2, 12, 10, 3), 100, np.uint8)
    source = data.resolve_source((images, np.array([0, 1])))
    mean, std = (0.5, 0.25, 0.125), (0.5, 0.25, 0.2)
    (x, _), = batches(source, global_batch_size=2, mean=mean, std=std)
    expected = (100 - np.array(mean) * 255) / (np.array(std) * 255)
    np.testing.assert_allclose(x[0, 3, 4], expected, rtol=1e-5)


def test_flip_only_mirrors(constants):
    ramp = np.tile(np.arange(24, dtype=np.uint8) * 10, (2, 12, 1))[..., None]
    source = data.resolve_source((np.repeat(ramp, 3, axis=-1), np.array([0, 1])))
    seen = set()
    for epoch in range(4):
        (x, _), = batches(source, global_batch_size=2, epoch=epoch,
                          scale=(1.0, 1.0), ratio=(2.0, 2.0))
        rows = x[:, 0, :, 0]
        seen.update(bool(row[0] > row[-1]) for row in rows)
    assert seen == {True, False}
    (x, _), = batches(source, global_batch_size=2, flip=False,
                      scale=(1.0, 1.0), ratio=(2.0, 2.0))
    assert (x[:, 0, 0, 0] < x[:, 0, -1, 0]).all()


def test_every_encoding_trains(mixed_folder):
    # JPEG through decode_and_crop_jpeg; PNG, BMP and GIF decoded, then cropped.
    source = data.resolve_source(mixed_folder)
    got = batches(source, global_batch_size=3, mean=np.array([0.5] * 3))
    assert [x.shape for x, _ in got] == [(3, SIZE, SIZE, 3)] * 2
    assert all(np.isfinite(x).all() for x, _ in got)
    assert sorted(np.concatenate([y for _, y in got]).tolist()) == [0, 0, 0, 1, 1, 1]
    evaluated = data.evaluation_dataset(source, image_size=SIZE, batch_size=6)
    (x, y), = evaluated.as_numpy_iterator()
    assert x.shape == (6, SIZE, SIZE, 3) and y.tolist() == [0, 0, 0, 1, 1, 1]


def test_options(constants):
    ds = data.training_dataset(
        constants, image_size=8, global_batch_size=4, seed=0, epoch=0
    )
    options = ds.options()
    assert (
        options.experimental_distribute.auto_shard_policy
        == tf.data.experimental.AutoShardPolicy.OFF
    )
    assert options.deterministic is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"global_batch_size": 6, "num_replicas": 4}, "multiple of `num_replicas`"),
        ({"num_replicas": 3, "global_batch_size": 6, "input_pipeline": (0, 2)},
         "multiple of the number of input pipelines"),
        ({"input_pipeline": (2, 2)}, "input_pipeline=(2, 2)"),
        ({"input_pipeline": 1}, "input_pipeline=1"),
        ({"start_step": 7}, "start_step=7"),
        ({"steps": 0}, "steps=0"),
        ({"image_size": 0}, "image_size=0"),
        ({"seed": -1}, "seed=-1"),
        ({"epoch": 1.5}, "epoch=1.5"),
        ({"scale": (0.5, 0.1)}, "scale=(0.5, 0.1)"),
        ({"ratio": (1.0,)}, "ratio=(1.0,)"),
        ({"mean": (0.5, 0.5)}, "mean=(0.5, 0.5)"),
        ({"std": (0.5, 0.0, 0.5)}, "std=(0.5, 0.0, 0.5)"),
        ({"data_format": "NHWC"}, "data_format='NHWC'"),
        ({"global_batch_size": 30}, "global_batch_size`=30"),
    ],
)
def test_argument_errors(constants, kwargs, message):
    kwargs = {"image_size": 8, "global_batch_size": 4, "seed": 0, "epoch": 0, **kwargs}
    with pytest.raises(ValueError) as info:
        data.training_dataset(constants, **kwargs)
    assert message in str(info.value)


def test_source_must_be_an_image_source():
    with pytest.raises(TypeError, match="ImageSource"):
        data.training_dataset("imagenet2012", image_size=8, global_batch_size=4, seed=0, epoch=0)
    with pytest.raises(TypeError, match="ImageSource"):
        data.steps_per_epoch(None, 4)


def test_steps_per_epoch(constants):
    assert data.steps_per_epoch(constants, 5) == 4
    assert data.steps_per_epoch(constants, 24) == 1
    with pytest.raises(ValueError, match="exceeds the 24 examples"):
        data.steps_per_epoch(constants, 25)
    with pytest.raises(ValueError, match="global_batch_size=0"):
        data.steps_per_epoch(constants, 0)
