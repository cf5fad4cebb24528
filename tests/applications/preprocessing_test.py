"""`preprocess_input` and `decode_predictions`."""

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca.applications.imagenet_classes import IMAGENET_CLASSES

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def test_preprocess_numpy_channels_last():
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3))
    original = x.copy()
    y = applications.preprocess_input(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, (x / 255 - MEAN) / STD, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(x, original)  # not in place
    uint8 = applications.preprocess_input(x.astype("uint8"))
    np.testing.assert_allclose(
        uint8, (x.astype("uint8") / 255 - MEAN) / STD, atol=1e-5
    )


def test_preprocess_channels_first_and_tensors():
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 4, 5))
    expected = (x / 255 - MEAN[:, None, None]) / STD[:, None, None]
    y = applications.preprocess_input(x, data_format="channels_first")
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    tensor = keras.ops.convert_to_tensor(x.transpose(0, 2, 3, 1))
    y = applications.preprocess_input(tensor)
    assert keras.ops.is_tensor(y)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y),
        expected.transpose(0, 2, 3, 1),
        rtol=1e-5,
        atol=1e-5,
    )
    # Inside a model, on a symbolic tensor.
    inputs = keras.Input((4, 5, 3))
    assert applications.preprocess_input(inputs).shape == (None, 4, 5, 3)


def test_preprocess_errors():
    with pytest.raises(ValueError, match=r"x.shape=\(1, 4, 4, 4\)"):
        applications.preprocess_input(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="data_format='nhwc'"):
        applications.preprocess_input(np.zeros((1, 4, 4, 3)), "nhwc")


def test_decode_predictions():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [3, 1, 999]] = [0.5, 0.25, 0.125]
    preds[1, 0] = 1.0
    decoded = applications.decode_predictions(preds, top=3)
    assert decoded[0] == [
        ("n01491361", "tiger_shark", 0.5),
        ("n01443537", "goldfish", 0.25),
        ("n15075141", "toilet_tissue", 0.125),
    ]
    assert decoded[1][0] == ("n01440764", "tench", 1.0)
    assert len(applications.decode_predictions(preds)[1]) == 5
    with pytest.raises(ValueError, match=r"preds.shape=\(2, 10\)"):
        applications.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="top=0"):
        applications.decode_predictions(preds, top=0)


def test_class_index_is_keras_order():
    wnids = [wnid for wnid, _ in IMAGENET_CLASSES]
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert wnids == sorted(wnids)  # Keras / torchvision index order
    assert IMAGENET_CLASSES[281] == ("n02123045", "tabby")
    assert IMAGENET_CLASSES[386] == ("n02504458", "African_elephant")
    assert IMAGENET_CLASSES[817] == ("n04285008", "sports_car")
    assert all(" " not in name for _, name in IMAGENET_CLASSES)
