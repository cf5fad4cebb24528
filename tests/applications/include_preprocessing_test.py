"""`include_preprocessing=True`: RGB in [0, 255], normalized inside by a
layer that saves and reloads (`.keras`, SavedModel)."""

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import export

SIZE = 32


def raw_images(batch=2, size=SIZE, seed=0, channels_first=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    return x.transpose(0, 3, 1, 2) if channels_first else x


def pair(architecture, **kwargs):
    """The same weights with and without `include_preprocessing`."""
    kwargs.setdefault("input_shape", (SIZE, SIZE, 3))
    plain = applications.build_model(architecture, **kwargs)
    inside = applications.build_model(
        architecture, include_preprocessing=True, **kwargs
    )
    inside.set_weights(plain.get_weights())
    return plain, inside


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_close(actual, expected):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(
    "architecture", ["resnet18", "eca_resnet18", "eca_mobilenet_v2"]
)
def test_raw_images_give_the_outputs_of_preprocess_input(architecture):
    plain, inside = pair(
        architecture, classes=10, classifier_activation=None
    )
    x = raw_images()
    expected = numpy(plain(applications.preprocess_input(x)))
    assert_close(numpy(inside(x)), expected)
    # The only new layer: built-in, first, and without weights.
    layer = inside.layers[1]
    assert layer.name == "preprocessing"
    assert isinstance(layer, keras.layers.Normalization)
    assert layer.weights == [] and len(inside.weights) == len(plain.weights)
    assert [l.name for l in inside.layers[2:]] == [
        l.name for l in plain.layers[1:]
    ]


def test_input_tensor_and_no_top():
    inputs = keras.Input((SIZE, SIZE, 3))
    plain, inside = pair(
        "eca_resnet18",
        include_top=False,
        pooling="avg",
        input_tensor=inputs,
        input_shape=None,
    )
    assert inside.input is inputs
    assert inside.output_shape == (None, 512)
    x = raw_images(seed=1)
    expected = numpy(plain(applications.preprocess_input(x)))
    assert_close(numpy(inside(x)), expected)
    # input_tensor from a layer: preprocessing comes after it.
    images = keras.Input((SIZE, SIZE, 3))
    flipped = keras.layers.Lambda(lambda t: t[:, :, ::-1, :])(images)
    model = applications.build_model(
        "resnet18",
        include_top=False,
        input_tensor=flipped,
        include_preprocessing=True,
    )
    assert model.input is images
    probe = keras.Model(model.input, model.get_layer("preprocessing").output)
    assert_close(
        numpy(probe(x)), applications.preprocess_input(x[:, :, ::-1, :])
    )


def test_channels_first():
    keras.config.set_image_data_format("channels_first")
    model = applications.build_model(
        "resnet18",
        include_top=False,
        input_shape=(3, SIZE, SIZE),
        include_preprocessing=True,
    )
    layer = model.get_layer("preprocessing")
    assert layer.axis == (1,)
    assert model.output_shape == (None, 512, 1, 1)
    probe = keras.Model(model.input, layer.output)
    x = raw_images(channels_first=True)
    expected = applications.preprocess_input(x, data_format="channels_first")
    assert_close(numpy(probe(x)), expected)
    with pytest.raises(ValueError, match=r"3 channels.*\(4, 32, 32\)"):
        applications.build_model(
            "resnet18", input_shape=(4, SIZE, SIZE), include_preprocessing=True
        )


def test_float32_under_mixed_precision_float64_under_float64():
    keras.config.set_dtype_policy("mixed_float16")
    model = applications.build_model(
        "resnet18", input_shape=(SIZE, SIZE, 3), include_preprocessing=True
    )
    layer = model.get_layer("preprocessing")
    assert layer.compute_dtype == "float32"
    assert layer.output.dtype == "float32"
    keras.config.set_dtype_policy("float64")
    model = applications.build_model(
        "resnet18", input_shape=(SIZE, SIZE, 3), include_preprocessing=True
    )
    assert model.get_layer("preprocessing").output.dtype == "float64"


def test_builders_take_it():
    model = applications.ECAResNet18(
        weights=None, input_shape=(SIZE, SIZE, 3), include_preprocessing=True
    )
    assert model.get_layer("preprocessing").get_config()["mean"] == [
        pytest.approx(255 * m) for m in (0.485, 0.456, 0.406)
    ]
    assert not any(
        l.name == "preprocessing"
        for l in applications.ECAResNet18(
            weights=None, input_shape=(SIZE, SIZE, 3)
        ).layers
    )


def test_keras_file_round_trip(tmp_path):
    model = applications.build_model(
        "eca_resnet18",
        input_shape=(SIZE, SIZE, 3),
        classes=10,
        include_preprocessing=True,
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("preprocessing")
    assert isinstance(layer, keras.layers.Normalization)
    assert layer.get_config() == model.get_layer("preprocessing").get_config()
    x = raw_images()
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    # Its weights also load into a model without the layer, and back.
    plain = applications.build_model(
        "eca_resnet18",
        input_shape=(SIZE, SIZE, 3),
        classes=10,
        weights=str(path),
    )
    assert_close(
        numpy(plain(applications.preprocess_input(x))), numpy(model(x))
    )


@pytest.mark.tensorflow_only
def test_saved_model_round_trip(tmp_path):
    import tensorflow as tf

    model = applications.build_model(
        "eca_mobilenet_v2",
        input_shape=(SIZE, SIZE, 3),
        classes=10,
        classifier_activation=None,
        include_preprocessing=True,
    )
    x = raw_images()
    expected = model.predict(x, verbose=0)
    # The model's own graph: bit-identical; the inference form (the
    # default): float32 round-off.
    own = export.export_saved_model(
        model, tmp_path / "own", inference_form=False
    )
    served = tf.saved_model.load(own)
    np.testing.assert_array_equal(served.serve(x).numpy(), expected)
    lean = tf.saved_model.load(export.export_saved_model(model, tmp_path / "lean"))
    got = lean.serve(x).numpy()
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
