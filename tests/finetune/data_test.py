"""The data checks of `finetune`: every refusal names what is wrong, before
a model is built; splits, labels and class weights."""

import numpy as np
import pytest

from keras_eca import finetune
from keras_eca.finetune import data as finetune_data
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only


def resolve(dataset, **kwargs):
    kwargs.setdefault("image_size", 32)
    return finetune_data.resolve_data(dataset, **kwargs)


def test_digits_default_split_is_stratified():
    data = resolve(None)
    assert data.is_digits and data.class_names == tuple("0123456789")
    assert data.train.num_examples + data.validation.num_examples == 1797
    val = finetune_data.training_labels(data.validation)
    train = finetune_data.training_labels(data.train)
    # 20% of every class (rounded) is held out.
    for label in range(10):
        total = (train == label).sum() + (val == label).sum()
        assert (val == label).sum() == round(0.2 * total)


def test_folder_with_its_own_validation_folder(tmp_path):
    helpers.write_folder(tmp_path / "train", {"a": 4, "b": 5})
    helpers.write_folder(tmp_path / "val", {"a": 2, "b": 3}, seed=1)
    data = resolve(tmp_path)
    assert data.validation_from == "the folder's val/ subfolder"
    assert data.class_names == ("a", "b")
    np.testing.assert_array_equal(
        finetune_data.training_labels(data.validation), [0, 0, 1, 1, 1]
    )
    assert data.smallest_image == (32, 32)


def test_empty_class_folder(tmp_path):
    helpers.write_folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"'empty'.*holds no images"):
        resolve(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    helpers.write_folder(tmp_path, {"a": 3, "b": 3}, fmt="jpg")
    bad = tmp_path / "b" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a JPEG at all")
    (tmp_path / "a" / "text.png").write_bytes(b"hello")
    with pytest.raises(ValueError) as error:
        resolve(tmp_path)
    message = str(error.value)
    assert f"Cannot read the image {str(tmp_path / 'a' / 'text.png')!r}" in message
    assert "2 unreadable files" in message and "broken.jpg" in message


def test_single_class(tmp_path):
    helpers.write_folder(tmp_path, {"only": 4})
    with pytest.raises(ValueError, match=r"single class.*'only'"):
        resolve(tmp_path)
    images, _ = helpers.digits(6)
    with pytest.raises(ValueError, match="single class"):
        resolve((images, np.zeros(6, np.int64)))


def test_class_without_training_images():
    images, _ = helpers.digits(6)
    labels = np.array([0, 0, 0, 2, 2, 2])  # class 1 has none
    with pytest.raises(ValueError, match=r"classes \['1'\].*no training images"):
        resolve((images, labels))


def test_images_too_small(tmp_path):
    helpers.write_folder(tmp_path, {"a": 3, "b": 2}, size=40)
    helpers.write_folder(tmp_path, {"c": 1}, size=24, seed=2)
    with pytest.raises(ValueError) as error:
        resolve(tmp_path)
    message = str(error.value)
    assert "the smallest is 24x24 pixels" in message
    assert str(tmp_path / "c" / "000.png") in message
    assert "at least 32x32" in message
    images, labels = helpers.digits(20, size=16)
    with pytest.raises(ValueError, match="smallest is 16x16"):
        resolve((images, labels))


def test_image_size_below_the_models_minimum(tmp_path):
    with pytest.raises(ValueError, match="image_size=16"):
        finetune.finetune(image_size=16, output=tmp_path / "run")


def test_imbalanced_folder_class_weights(tmp_path):
    helpers.write_folder(tmp_path, {"big": 30, "small": 5})
    data = resolve(tmp_path)
    labels = finetune_data.training_labels(data.train)
    # The validation split is stratified: 6 of 30 and 1 of 5 held out.
    assert np.bincount(labels).tolist() == [24, 4]
    weights = finetune.class_weights(labels, 2)
    assert weights == pytest.approx({0: 28 / (2 * 24), 1: 28 / (2 * 4)})
    # Weighted, both classes count the same in the loss.
    assert weights[0] * 24 == pytest.approx(weights[1] * 4)


def test_class_weights_of_balanced_labels_are_one():
    assert finetune.class_weights(np.repeat(np.arange(3), 4), 3) == {
        0: 1.0, 1: 1.0, 2: 1.0
    }
    with pytest.raises(ValueError, match=r"counts: \[2, 0\]"):
        finetune.class_weights(np.array([0, 0]), 2)


def test_tfds_datasets(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        data = resolve("beans", data_dir=str(tmp_path))
        assert data.class_names == ("angular_leaf_spot", "bean_rust", "healthy")
        assert data.train.encoded and data.smallest_image == (500, 500)
        assert data.description == "the TFDS dataset 'beans'"
        with pytest.raises(ValueError) as error:
            resolve("mnist", data_dir=str(tmp_path))
    message = str(error.value)
    assert "the smallest is 28x28 pixels (among its first 64 training images)" in message
