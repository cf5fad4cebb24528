"""`include_preprocessing=True` normalizes with the weights' own mean and
std (their table entry), from the `file://` mirror of `mirror.py`."""

import numpy as np

import keras
from keras_eca.applications import weights
from tests.weights import helpers
from tests.weights.mirror import SMALL
from tests.weights.mirror import TOL
from tests.weights.mirror import build
from tests.weights.mirror import serve_url

MEAN = (0.5, 0.25, 0.125)
STD = (0.25, 0.5, 0.75)


def test_the_table_entrys_mean_and_std_are_applied(env, files):
    serve_url(env, files.pth.read_bytes())
    entry = weights.WEIGHTS["eca_resnet18.url_in1k"]
    entry["preprocessing"] = dict(entry["preprocessing"], mean=MEAN, std=STD)
    assert weights.preprocessing_for("eca_resnet18", "url_in1k")["std"] == STD
    model = build("url_in1k", include_preprocessing=True)
    layer = model.get_layer("preprocessing")
    np.testing.assert_allclose(
        layer.get_config()["mean"], [255 * m for m in MEAN]
    )
    np.testing.assert_allclose(
        layer.get_config()["variance"], [(255 * s) ** 2 for s in STD]
    )
    # The same network as without it, on images normalized by hand.
    plain = build("url_in1k")
    assert helpers.logits_difference(plain, SMALL) <= TOL
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3))
    x = x.astype("float32")
    by_hand = (x / 255 - np.float32(MEAN)) / np.float32(STD)
    expected = keras.ops.convert_to_numpy(plain(by_hand))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        expected,
        rtol=1e-5,
        atol=1e-5 * np.abs(expected).max(),
    )
    # Other weights of the same model: the ImageNet statistics.
    imagenet = build(None, include_preprocessing=True)
    np.testing.assert_allclose(
        imagenet.get_layer("preprocessing").get_config()["mean"],
        [255 * m for m in (0.485, 0.456, 0.406)],
    )
