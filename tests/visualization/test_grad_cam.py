"""Grad-CAM: the class activation map it equals for GAP + linear heads,
and the same maps for a registry model flat and nested as a backbone."""

import numpy as np
import pytest

import keras
import keras_eca
from keras_eca import visualization as viz
from tests.visualization import helpers

pytestmark = pytest.mark.tensorflow_only

RNG = np.random.default_rng(0)


def test_equals_the_class_activation_map_of_a_gap_linear_head():
    # score_c = sum_k W[k, c] mean_ij A_kij: the gradient weights are
    # W[:, c] / (h w), so Grad-CAM is relu(sum_k W[k, c] A_k) up to scale.
    inputs = keras.Input((12, 12, 3))
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(pooled))
    images = RNG.normal(size=(3, 12, 12, 3)).astype("float32")
    feature_maps = helpers.value_of(model, "features", images)
    kernel = np.asarray(model.get_layer("logits").kernel, "float64")
    for class_index in (None, 2, [0, 3, 1]):
        got = viz.grad_cam(model, images, class_index=class_index)
        if class_index is None:
            chosen = np.argmax(np.asarray(model(images)), axis=-1)
        else:
            chosen = np.broadcast_to(class_index, (3,))
        cam = np.maximum(np.einsum("nijk,kn->nij", feature_maps, kernel[:, chosen]), 0)
        cam /= cam.reshape(3, -1).max(axis=1)[:, None, None]
        assert got.shape == (3, 12, 12) and got.dtype == np.float32
        np.testing.assert_allclose(got, cam, atol=1e-5)


@pytest.fixture(scope="module")
def models():
    flat = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, input_shape=(64, 64, 3), classes=3
    )
    helpers.randomize(flat, seed=3)

    def finetune_model(pooling, trainable):
        backbone = keras_eca.applications.build_model(
            "eca_resnet18", weights=None, include_top=False, pooling=pooling,
            input_shape=(64, 64, 3), name="backbone",
        )
        helpers.copy_weights_by_name(flat, backbone)
        backbone.trainable = trainable
        inputs = keras.Input((64, 64, 3))
        x = backbone(inputs, training=False)
        if pooling is None:
            x = keras.layers.GlobalAveragePooling2D()(x)
        head = keras.layers.Dense(3, activation="softmax", name="predictions")
        model = keras.Model(inputs, head(x), name=f"finetune_{pooling}")
        head.set_weights(flat.get_layer("predictions").get_weights())
        return model

    return flat, finetune_model(None, True), finetune_model("avg", False)


def test_registry_model_flat_and_nested(models):
    flat, nested, nested_pooled = models
    images, labels = helpers.real_images(64, flipped=False)
    expected = viz.grad_cam(flat, images, class_index=labels)
    assert expected.shape == (3, 2, 2)  # conv5_block2_out at stride 32
    # Each map peaks at 1, or is all 0 where relu cuts every position.
    peaks = expected.max(axis=(1, 2))
    assert set(np.round(peaks, 6).tolist()) <= {0.0, 1.0} and peaks.max() == 1
    np.testing.assert_allclose(
        expected, viz.grad_cam(flat, images, labels, layer_name="conv5_block2_out"), atol=1e-6
    )
    # The backbone's 4D output; inside a pooled, frozen backbone by recursion.
    np.testing.assert_allclose(viz.grad_cam(nested, images, labels), expected, atol=1e-5)
    np.testing.assert_allclose(viz.grad_cam(nested_pooled, images, labels), expected, atol=1e-5)
    earlier = viz.grad_cam(flat, images, labels, layer_name="conv4_block2_out")
    assert earlier.shape == (3, 4, 4)
    for name in ("conv4_block2_out", "backbone/conv4_block2_out"):
        np.testing.assert_allclose(
            viz.grad_cam(nested_pooled, images, labels, layer_name=name), earlier, atol=1e-5
        )


def test_errors(models):
    flat = models[0]
    images = np.zeros((1, 64, 64, 3), "float32")
    with pytest.raises(ValueError, match=r"no layer 'conv9_out' .*conv5_block2_out.*Received: layer_name='conv9_out'"):
        viz.grad_cam(flat, images, layer_name="conv9_out")
    with pytest.raises(ValueError, match=r"class_index.*\[0, 3\)\. Received: class_index=3"):
        viz.grad_cam(flat, images, class_index=3)
    features = keras_eca.applications.build_model(
        "resnet18", weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    with pytest.raises(ValueError, match=r"one \(batch, classes\) output .*\(None, 1, 1, 512\)"):
        viz.grad_cam(features, np.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="rank 4"):
        viz.grad_cam(flat, np.zeros((64, 64, 3)))
