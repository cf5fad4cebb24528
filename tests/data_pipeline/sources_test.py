"""resolve_source: folders, arrays and TFDS (mocked), and their errors."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_eca import data
from tests.data_pipeline.conftest import fake_photos
from tests.data_pipeline.conftest import write_folder
from tests.data_pipeline.conftest import write_image

pytestmark = pytest.mark.tensorflow_only


def records(source, shuffle_seed=None):
    return [
        (bytes(image) if source.encoded else image.tobytes(), int(label))
        for image, label in source.records(shuffle_seed).as_numpy_iterator()
    ]


# --- folders ----------------------------------------------------------------


def test_folder_classes_labels_and_order(jpeg_folder):
    source = data.resolve_source(jpeg_folder)
    assert source.name == os.path.abspath(jpeg_folder)
    assert source.split == "train"
    assert source.class_names == ("cat", "dog", "eel")
    assert (source.num_classes, source.num_examples, source.encoded) == (3, 24, True)
    natural = records(source)
    assert [label for _, label in natural] == [0] * 8 + [1] * 8 + [2] * 8
    expected = open(os.path.join(jpeg_folder, "dog", "000.jpg"), "rb").read()
    assert natural[8][0] == expected
    assert records(source) == natural


def test_folder_shuffle_is_a_seeded_permutation(jpeg_folder):
    source = data.resolve_source(jpeg_folder)
    natural = records(source)
    first = records(source, 5)
    assert records(source, 5) == first
    assert first != natural and sorted(first) == sorted(natural)
    assert records(source, 6) != first


def test_folder_encodings_extensions_and_hidden(mixed_folder):
    source = data.resolve_source(mixed_folder)
    assert source.class_names == ("a", "b")
    # x1.JPEG, x2.png, nested/x3.jpeg | y1.bmp, y2.GIF, y3.jpg; not notes.txt
    assert source.num_examples == 6
    labels = [label for _, label in records(source)]
    assert labels == [0, 0, 0, 1, 1, 1]
    for image, _ in source.records():
        decoded = data.decode_image(image)
        assert decoded.shape[-1] == 3 and decoded.dtype == tf.uint8


def test_folder_train_and_validation_layout(tmp_path):
    write_folder(tmp_path / "train", {"ant": 3, "bee": 2})
    write_folder(tmp_path / "val", {"bee": 2}, seed=1)
    train = data.resolve_source(str(tmp_path), split="train")
    validation = data.resolve_source(str(tmp_path), split="validation")
    also = data.resolve_source(tmp_path, split="val")
    assert train.class_names == validation.class_names == ("ant", "bee")
    assert (train.num_examples, validation.num_examples) == (5, 2)
    assert [label for _, label in records(validation)] == [1, 1]
    assert records(also) == records(validation)
    assert validation.split == "validation"


def test_folder_validation_folder_may_be_named_validation(tmp_path):
    write_folder(tmp_path / "train", {"ant": 2, "bee": 2})
    write_folder(tmp_path / "validation", {"ant": 1, "bee": 1}, seed=1)
    source = data.resolve_source(str(tmp_path), split="validation")
    assert [label for _, label in records(source)] == [0, 1]


def _folder_errors(tmp_path):
    """(dataset, kwargs, message) for each folder mistake."""
    empty = tmp_path / "empty"
    empty.mkdir()
    single = write_folder(tmp_path / "single", {"only": 2})
    hollow = write_folder(tmp_path / "hollow", {"full": 2})
    (tmp_path / "hollow" / "void").mkdir()
    plain = write_folder(tmp_path / "plain", {"a": 2, "b": 2})
    write_folder(tmp_path / "both" / "train", {"a": 2, "b": 2})
    write_folder(tmp_path / "both" / "val", {"a": 1, "c": 1})
    write_folder(tmp_path / "trainonly" / "train", {"a": 2, "b": 2})
    afile = tmp_path / "file.jpg"
    write_image(str(afile), fake_photos(1, (8, 8))[0])
    return [
        (str(tmp_path / "missing" / "deeper"), {}, "does not exist"),
        ("./no_such_folder", {}, "does not exist"),
        (str(afile), {}, "not a file"),
        (str(empty), {}, "no class subfolders"),
        (single, {}, "single class"),
        (hollow, {}, "'void'"),
        (plain, {"split": "validation"}, "validation_fraction"),
        (plain, {"split": "test"}, "split='test'"),
        (str(tmp_path / "both"), {"split": "val"}, "['c']"),
        (str(tmp_path / "both"), {"validation_fraction": 0.5}, "own validation"),
        (str(tmp_path / "trainonly"), {"split": "validation"}, "no 'val'"),
    ]


def test_folder_errors(tmp_path):
    for dataset, kwargs, message in _folder_errors(tmp_path):
        with pytest.raises(ValueError, match=None) as info:
            data.resolve_source(dataset, **kwargs)
        assert message in str(info.value), (dataset, kwargs, str(info.value))


def test_folder_validation_fraction_is_stratified(tmp_path):
    root = write_folder(tmp_path, {"a": 2, "b": 3, "c": 7}, size=(8, 8))
    kwargs = dict(validation_fraction=0.3, seed=4)
    train = data.resolve_source(root, **kwargs)
    held = data.resolve_source(root, split="validation", **kwargs)
    train_records, held_records = records(train), records(held)
    assert train.num_examples + held.num_examples == 12
    assert {label for _, label in train_records} == {0, 1, 2}
    assert {label for _, label in held_records} == {0, 1, 2}
    assert sorted(train_records + held_records) == sorted(
        records(data.resolve_source(root))
    )
    assert records(data.resolve_source(root, split="validation", **kwargs)) == (
        held_records
    )
    others = [
        records(data.resolve_source(root, split="validation",
                                    validation_fraction=0.3, seed=s))
        for s in range(5, 9)
    ]
    assert any(other != held_records for other in others)


# --- arrays -----------------------------------------------------------------


def test_arrays_uint8_float_and_grayscale():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 5, 7, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1, 2, 2])
    source = data.resolve_source((images, labels))
    assert (source.num_examples, source.num_classes, source.encoded) == (6, 3, False)
    assert source.class_names is None and source.name == "arrays"
    got = list(source.records().as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([g[0] for g in got]), images)
    assert [int(g[1]) for g in got] == labels.tolist()
    assert got[0][1].dtype == np.int32

    floats = data.resolve_source((images.astype("float64") / 2, labels))
    image, _ = next(iter(floats.records()))
    assert image.dtype == tf.float32

    for gray in (images[..., 0], images[..., :1]):
        image, _ = next(iter(data.resolve_source((gray, labels)).records()))
        assert image.shape == (5, 7, 3)
        np.testing.assert_array_equal(image[..., 2], images[0, ..., 0])


@pytest.mark.parametrize(
    "images, labels, error, message",
    [
        (np.zeros((2, 4, 4, 2), "uint8"), [0, 1], ValueError, "images.shape"),
        (np.zeros((2, 4), "uint8"), [0, 1], ValueError, "images.shape"),
        (np.zeros((2, 4, 4, 3), "int16"), [0, 1], TypeError, "int16"),
        (np.full((2, 4, 4, 3), 300.0), [0, 1], ValueError, "max=300"),
        (np.full((2, 4, 4, 3), np.nan), [0, 1], ValueError, "[0, 255]"),
        (np.zeros((2, 4, 4, 3), "uint8"), [[0], [1]], ValueError, "labels.shape"),
        (np.zeros((2, 4, 4, 3), "uint8"), [0.0, 1.0], ValueError, "float64"),
        (np.zeros((2, 4, 4, 3), "uint8"), [0, 1, 1], ValueError, "3 labels"),
        (np.zeros((2, 4, 4, 3), "uint8"), [0, -1], ValueError, "min=-1"),
        (np.zeros((0, 4, 4, 3), "uint8"), np.zeros(0, "int64"), ValueError, "empty"),
    ],
)
def test_array_errors(images, labels, error, message):
    with pytest.raises(error) as info:
        data.resolve_source((images, np.asarray(labels)))
    assert message in str(info.value)


def test_arrays_validation_fraction():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 1)
    images = np.arange(8, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 2, 2, 3), np.uint8
    )
    train = data.resolve_source((images, labels), validation_fraction=0.4)
    held = data.resolve_source(
        (images, labels), split="validation", validation_fraction=0.4
    )
    held_labels = [int(y) for _, y in held.records().as_numpy_iterator()]
    train_labels = [int(y) for _, y in train.records().as_numpy_iterator()]
    assert held_labels.count(0) == 2 and held_labels.count(1) == 1
    assert 2 not in held_labels and train_labels.count(2) == 1
    assert train.num_classes == held.num_classes == 3
    with pytest.raises(ValueError, match="validation_fraction"):
        data.resolve_source((images, labels), split="validation")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dataset": 3}, TypeError, "dataset=3"),
        ({"dataset": (np.zeros((1, 2, 2, 3)),)}, ValueError, "length 1"),
        ({"validation_fraction": 0}, ValueError, "validation_fraction=0"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction=1.0"),
        ({"seed": -1}, ValueError, "seed=-1"),
    ],
)
def test_argument_errors(kwargs, error, message):
    kwargs = {"dataset": (np.zeros((2, 2, 2, 3), "uint8"), np.array([0, 1])), **kwargs}
    with pytest.raises(error) as info:
        data.resolve_source(**kwargs)
    assert message in str(info.value)


def test_records_rejects_a_bad_shuffle_seed():
    source = data.resolve_source((np.zeros((2, 2, 2, 3), "uint8"), np.array([0, 1])))
    with pytest.raises(ValueError, match="shuffle_seed=-2"):
        source.records(-2)


# --- TFDS (mocked; the real imagenet2012 builder: imagenet_tfds_test.py) -----


def test_tfds_mock_image_label_dataset(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        source = data.resolve_source("tf_flowers", data_dir=str(tmp_path))
        assert source.encoded and source.num_examples == 6
        assert source.num_classes == 5 and source.class_names[0] == "dandelion"
        image, label = next(iter(source.records()))
        assert image.dtype == tf.string and image.shape == ()
        assert data.decode_image(image).shape[-1] == 3
        assert label.dtype == tf.int32
        batches = list(
            data.training_dataset(
                source, image_size=8, global_batch_size=3, seed=0, epoch=0
            )
        )
        assert [tuple(x.shape) for x, _ in batches] == [(3, 8, 8, 3)] * 2


def test_tfds_needs_image_and_label(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError) as info:
            data.resolve_source("imdb_reviews", data_dir=str(tmp_path))
    assert "'image' (Image) and a 'label'" in str(info.value)
    assert "text: Text" in str(info.value)


def test_unknown_tfds_name():
    with pytest.raises(ValueError) as info:
        data.resolve_source("no_such_dataset_xyz")
    assert "'no_such_dataset_xyz'" in str(info.value)


def test_tfds_rejects_validation_fraction():
    with pytest.raises(ValueError, match="train\\[:90%\\]"):
        data.resolve_source("tf_flowers", validation_fraction=0.1)
