"""The real TFDS path: a tiny ImageNet in the official archive layout, the
stock `imagenet2012` builder's download_and_prepare, then our pipelines."""

import os
import tarfile
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_eca import data
from keras_eca.testing.fake_imagenet import write_imagenet_manual_dir

pytestmark = pytest.mark.tensorflow_only

SYNSETS = ("n01440764", "n01443537", "n01484850")


def key(pixels):
    return np.round(np.asarray(pixels)).astype(np.int16).tobytes()


def tfds_imagenet_file(name):
    import tensorflow_datasets.datasets.imagenet2012 as package

    return os.path.join(os.path.dirname(package.__file__), name)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    manual = write_imagenet_manual_dir(
        str(root / "manual"), synsets=SYNSETS, train_per_synset=3, validation=5
    )
    data_dir = str(root / "tfds")
    # The stock builder runs here, from the manual dir (nothing downloaded).
    train = data.resolve_source(
        "imagenet2012", data_dir=data_dir, manual_dir=manual, split="train"
    )
    return manual, data_dir, train


def test_manual_dir_layout(prepared):
    manual, _, _ = prepared
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_train.tar")) as outer:
        assert outer.getnames() == [f"{s}.tar" for s in SYNSETS]
        inner = tarfile.open(fileobj=outer.extractfile("n01443537.tar"))
        assert inner.getnames() == [f"n01443537_{k}.JPEG" for k in (1, 2, 3)]
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_val.tar")) as val:
        assert val.getnames() == [f"ILSVRC2012_val_{k:08d}.JPEG" for k in range(1, 6)]


def test_prepared_train_split(prepared):
    _, data_dir, train = prepared
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    assert builder.is_prepared()
    assert (train.num_examples, train.num_classes, train.encoded) == (9, 1000, True)
    assert train.class_names[:3] == SYNSETS
    labels = sorted(int(y) for _, y in train.records().as_numpy_iterator())
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    image, _ = next(iter(train.records()))
    assert bytes(image.numpy()[:3]) == b"\xff\xd8\xff"  # JPEG bytes, not pixels


def test_prepared_dataset_is_not_prepared_again(prepared):
    _, data_dir, _ = prepared
    with mock.patch.object(
        tfds.core.DatasetBuilder, "download_and_prepare",
        side_effect=AssertionError("prepared again"),
    ):
        source = data.resolve_source("imagenet2012", data_dir=data_dir)
    assert source.num_examples == 9


def test_training_batches_are_deterministic(prepared):
    _, _, train = prepared
    kwargs = dict(image_size=24, global_batch_size=4, seed=1, epoch=2)
    first = list(data.training_dataset(train, **kwargs).as_numpy_iterator())
    again = list(data.training_dataset(train, **kwargs).as_numpy_iterator())
    assert [x.shape for x, _ in first] == [(4, 24, 24, 3)] * 2
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    tail = list(data.training_dataset(train, start_step=1, **kwargs).as_numpy_iterator())
    np.testing.assert_array_equal(tail[0][0], first[1][0])


def test_validation_labels_are_imagenet_labels(prepared):
    manual, data_dir, _ = prepared
    validation = data.resolve_source(
        "imagenet2012", data_dir=data_dir, split="validation"
    )
    assert validation.num_examples == 5
    names = open(tfds_imagenet_file("labels.txt")).read().split()
    truth = open(tfds_imagenet_file("validation_labels.txt")).read().split()
    # Identify every evaluation image by its pixels, from the tar's JPEG.
    transform = dict(image_size=16, crop_pct=0.875, interpolation="bicubic")
    expected = {}
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_val.tar")) as val:
        for member in val.getmembers():
            number = int(member.name[len("ILSVRC2012_val_"):-len(".JPEG")])
            raw = val.extractfile(member).read()
            pixels = data.evaluation_transform(
                data.decode_image(tf.constant(raw), dct_method="INTEGER_ACCURATE"),
                **transform,
            )
            expected[key(pixels)] = names.index(truth[number - 1])
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    seen = 0
    for images, labels in data.evaluation_dataset(
        validation, batch_size=2, **transform
    ).as_numpy_iterator():
        for image, label in zip(images, labels):
            assert expected[key(image * std + mean)] == label
            seen += 1
    assert seen == 5
