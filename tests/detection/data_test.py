"""Detection sources and pipelines: the synthetic set, TFDS coco/2017 and
voc/2007 (offline, `tfds.testing.mock_data`), the box conversions,
augmentation and exact resumption."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_eca.detection import data
from keras_eca.detection import synthetic

pytestmark = pytest.mark.tensorflow_only

SIZE = 128


def _batches(ds):
    return [
        (images.numpy(), targets["boxes"].numpy(), targets["classes"].numpy())
        for images, targets in ds
    ]


def test_the_synthetic_set_is_deterministic_and_boxes_are_tight():
    first = synthetic.generate(6, seed=3)
    again = synthetic.generate(6, seed=3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = synthetic.generate(6, seed=3, split="validation")
    assert not np.array_equal(first[0], other[0])
    images, boxes, classes = first
    valid = classes >= 0
    assert valid.any(axis=1).all() and valid.sum(axis=1).max() <= synthetic.MAX_OBJECTS
    assert set(np.unique(classes[valid])) <= {0, 1, 2}
    b = boxes[valid]
    assert (b >= 0).all() and (b <= 1).all() and (b[:, 2:] > b[:, :2]).all()
    sides = (b[:, 2:] - b[:, :2]) * SIZE
    assert sides.min() >= synthetic.SIZE_RANGE[0] - 1
    assert sides.max() <= synthetic.SIZE_RANGE[1]


def test_synthetic_source_arguments_are_checked():
    with pytest.raises(ValueError, match="Received: split='test2'"):
        data.resolve_detection_source("synthetic", "test2")
    with pytest.raises(ValueError, match="Received: num_examples=0"):
        data.resolve_detection_source("synthetic", num_examples=0)
    with pytest.raises(ValueError, match="Received: dataset=3"):
        data.resolve_detection_source(3)
    with pytest.raises(ValueError, match="neither 'synthetic' nor a TFDS"):
        data.resolve_detection_source("no_such_dataset_xyz")


def test_without_augmentation_the_boxes_are_the_source_boxes_in_pixels():
    source = data.resolve_detection_source("synthetic", num_examples=4)
    ds = data.training_dataset(
        source, image_size=SIZE, batch_size=4, seed=0, epoch=0,
        scale_range=(1, 1), flip=False, max_boxes=6,
    )
    (images, boxes, classes), = _batches(ds)
    originals = {}
    for example in source.examples(None):
        originals[int(example["image_id"])] = example
    # The epoch is shuffled: find each image by its pixels.
    for image, box, cls in zip(images, boxes, classes):
        match = [
            e for e in originals.values()
            if np.abs(e["image"].numpy().astype("float32") - image).max() < 1.0
        ]
        assert len(match) == 1
        yxyx = match[0]["boxes"].numpy() * SIZE
        n = len(yxyx)
        np.testing.assert_allclose(box[:n], yxyx[:, [1, 0, 3, 2]], atol=1e-4)
        np.testing.assert_array_equal(cls[:n], match[0]["classes"].numpy())
        assert (box[n:] == -1).all() and (cls[n:] == -1).all()


def test_flip_mirrors_image_and_boxes():
    source = data.resolve_detection_source("synthetic", num_examples=16)
    kwargs = dict(image_size=SIZE, batch_size=16, seed=1, epoch=0,
                  scale_range=(1, 1), max_boxes=6)
    (plain, plain_boxes, _), = _batches(data.training_dataset(source, flip=False, **kwargs))
    (maybe, maybe_boxes, _), = _batches(data.training_dataset(source, flip=True, **kwargs))
    flipped = 0
    for a, b, box_a, box_b in zip(plain, maybe, plain_boxes, maybe_boxes):
        if np.array_equal(a, b):
            np.testing.assert_array_equal(box_a, box_b)
            continue
        flipped += 1
        np.testing.assert_array_equal(a[:, ::-1], b)
        valid = box_a[:, 0] >= 0
        mirrored = box_a[valid][:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [SIZE, 0, SIZE, 0]
        np.testing.assert_allclose(box_b[valid], mirrored, atol=1e-4)
    assert 0 < flipped < 16


def test_jittered_batches_are_fixed_size_and_boxes_stay_inside():
    source = data.resolve_detection_source("synthetic", num_examples=24)
    ds = data.training_dataset(
        source, image_size=SIZE, batch_size=8, seed=0, epoch=2,
        scale_range=(0.5, 1.5), max_boxes=5,
    )
    batches = _batches(ds)
    assert len(batches) == 3
    for images, boxes, classes in batches:
        assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == np.float32
        assert boxes.shape == (8, 5, 4) and classes.shape == (8, 5)
        valid = classes >= 0
        assert ((boxes[valid] >= 0) & (boxes[valid] <= SIZE)).all()
        assert (boxes[valid][:, 2:] - boxes[valid][:, :2] >= 2).all()
        assert (boxes[~valid] == -1).all()


def test_an_epoch_is_a_function_of_seed_and_epoch_and_resumes_at_a_step():
    source = data.resolve_detection_source("synthetic", num_examples=12)
    kwargs = dict(image_size=SIZE, batch_size=4, seed=5, max_boxes=4)
    whole = _batches(data.training_dataset(source, epoch=1, **kwargs))
    again = _batches(data.training_dataset(source, epoch=1, **kwargs))
    resumed = _batches(data.training_dataset(source, epoch=1, start_step=2, **kwargs))
    other = _batches(data.training_dataset(source, epoch=2, **kwargs))
    for a, b in zip(whole, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert len(resumed) == 1
    for x, y in zip(whole[2], resumed[0]):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(whole[0][0], other[0][0])


def test_two_input_pipelines_split_each_global_batch():
    source = data.resolve_detection_source("synthetic", num_examples=8)
    kwargs = dict(image_size=SIZE, batch_size=4, seed=0, epoch=0, max_boxes=4,
                  num_replicas=2)
    one = _batches(data.training_dataset(source, **kwargs))
    halves = [
        _batches(data.training_dataset(source, input_pipeline=(i, 2), **kwargs))
        for i in range(2)
    ]
    # One pipeline yields both replicas' batches of a step in turn.
    for step in range(2):
        for i in range(2):
            np.testing.assert_array_equal(one[2 * step + i][0], halves[i][step][0])


def test_pipeline_arguments_are_checked():
    source = data.resolve_detection_source("synthetic", num_examples=4)
    with pytest.raises(ValueError, match="multiple of 128.*Received: image_size=100"):
        data.training_dataset(source, image_size=100, batch_size=2, seed=0, epoch=0)
    with pytest.raises(ValueError, match="Received: scale_range=.2, 1"):
        data.training_dataset(source, image_size=SIZE, batch_size=2, seed=0,
                              epoch=0, scale_range=(2, 1))
    with pytest.raises(ValueError, match="exceeds the 4 examples"):
        data.training_dataset(source, image_size=SIZE, batch_size=8, seed=0, epoch=0)
    with pytest.raises(TypeError, match="DetectionSource"):
        data.evaluation_dataset("synthetic", image_size=SIZE, batch_size=2)


def test_coco_from_tfds_resized_with_padding_and_crowds_handled():
    with tfds.testing.mock_data(num_examples=6):
        source = data.resolve_detection_source("coco/2017", "validation")
        assert source.num_classes == 80 and source.num_examples == 6
        examples = list(source.examples(None))
        evaluation = list(data.evaluation_dataset(
            source, image_size=SIZE, batch_size=4
        ))
        training = _batches(data.training_dataset(
            source, image_size=SIZE, batch_size=2, seed=0, epoch=0,
            scale_range=(1, 1), flip=False,
        ))
    assert [len(b["images"]) for b in evaluation] == [4, 2]
    batch = evaluation[0]
    for i, example in enumerate(examples[:4]):
        height, width = example["image"].shape[:2]
        scale = SIZE / max(height, width)
        assert batch["scale"][i].numpy() == pytest.approx(scale)
        assert batch["image_id"][i].numpy() == example["image_id"].numpy()
        image = batch["images"][i].numpy()
        # Padding at the bottom and right only.
        assert (image[round(height * scale) + 1 :] == 0).all()
        assert (image[:, round(width * scale) + 1 :] == 0).all()
        n = len(example["classes"])
        ymin, xmin, ymax, xmax = example["boxes"].numpy().T
        expected = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], 1)
        np.testing.assert_allclose(
            batch["boxes"][i].numpy()[:n], expected * scale, rtol=1e-5, atol=1e-3
        )
        np.testing.assert_array_equal(
            batch["is_crowd"][i].numpy()[:n], example["is_crowd"].numpy()
        )
    for images, boxes, classes in training:
        assert images.shape == (2, SIZE, SIZE, 3) and boxes.shape == (2, 100, 4)


def test_crowd_boxes_are_dropped_from_training_targets():
    import tensorflow as tf

    example = {
        "image": tf.zeros([64, 128, 3], tf.uint8),
        "boxes": tf.constant([[0.0, 0.0, 0.5, 0.25], [0.5, 0.5, 1.0, 1.0]]),
        "classes": tf.constant([7, 9]),
        "is_crowd": tf.constant([False, True]),
        "image_id": tf.constant(1, tf.int64),
    }
    image, boxes, classes = data.training_transform(
        example, tf.constant([0, 0], tf.int64), image_size=SIZE,
        scale_range=(1.0, 1.0), flip=False, encoded=False,
    )
    assert image.shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(classes.numpy(), [7])
    np.testing.assert_allclose(boxes.numpy(), [[0, 0, 32, 32]], atol=1e-4)


def test_voc_has_no_crowd_field_and_loads():
    with tfds.testing.mock_data(num_examples=3):
        source = data.resolve_detection_source("voc/2007", "validation")
        example = next(iter(source.examples(None)))
    assert source.num_classes == 20
    assert not example["is_crowd"].numpy().any()
