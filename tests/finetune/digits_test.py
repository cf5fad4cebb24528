"""The embedded digits are scikit-learn's, exactly, and load as the
documented arrays."""

import numpy as np
import pytest
from sklearn import datasets as sklearn_datasets

from keras_eca.finetune import data as finetune_data


def test_the_file_is_load_digits_exactly():
    bunch = sklearn_datasets.load_digits()
    images, labels = finetune_data.load_digits()
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    assert images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)


def test_the_generator_writes_the_same_arrays(tmp_path):
    import importlib.util
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[2] / "tools" / "make_digits.py"
    spec = importlib.util.spec_from_file_location("make_digits", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(tmp_path / "digits.npz")])
    with np.load(tmp_path / "digits.npz") as written, np.load(
        finetune_data.DIGITS_FILE
    ) as shipped:
        assert sorted(written.files) == sorted(shipped.files)
        for key in written.files:
            np.testing.assert_array_equal(written[key], shipped[key])


def test_upscaled_digits_are_rgb_on_0_255():
    images, labels = finetune_data.load_digits(32)
    assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8
    assert images.max() == 255 and images.min() == 0
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    # Ink stays where it was: the upscaled image's 4x4 block means follow
    # the 8x8 original.
    original = finetune_data.load_digits()[0].astype(float)
    blocks = images[..., 0].reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))
    correlation = np.corrcoef(blocks.ravel(), original.ravel())[0, 1]
    assert correlation > 0.95


def test_bad_image_size():
    with pytest.raises(ValueError, match="image_size=0"):
        finetune_data.load_digits(0)
