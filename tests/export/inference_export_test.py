"""SavedModel and TFLite export the inference form: outputs equal within
1e-5 relative, every family; the TFLite graph has the minimal gates; int8
post-training quantization keeps the gates."""

import collections

import keras
import numpy as np
import pytest

from keras_eca import applications
from keras_eca import export
from keras_eca import inference
from tests.export import models
from tests.inference_form_test import RELATIVE_TOLERANCE
from tests.inference_form_test import randomize_statistics
from tests.inference_form_test import relative_error

pytestmark = pytest.mark.tensorflow_only


def model_with_statistics(name):
    model = applications.build_model(
        name, input_shape=(models.SIZE, models.SIZE, 3), classes=10,
        classifier_activation=None,
    )
    return randomize_statistics(model, seed=7)


def test_the_training_form_is_still_exported_on_request(tmp_path):
    import tensorflow as tf

    model = model_with_statistics("eca_resnet18")
    x = models.images()
    path = export.export_saved_model(model, tmp_path / "m", inference_form=False)
    served = tf.saved_model.load(path)
    # The model's own graph, both sides compiled: bit-identical.
    np.testing.assert_array_equal(served.serve(x).numpy(), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="Received: inference_form='yes'"):
        export.export_saved_model(model, tmp_path / "n", inference_form="yes")


def tflite_ops(flatbuffer):
    interpreter = export._interpreter(flatbuffer)
    return collections.Counter(
        op["op_name"] for op in interpreter._get_ops_details()
    )


def test_tflite_eca_gates_are_six_ops_and_batchnorm_is_gone():
    plain = tflite_ops(export.to_tflite(models.model("resnet18")))
    eca = tflite_ops(export.to_tflite(models.model("eca_resnet18")))
    gates = 8  # one per BasicBlock
    extra = eca - plain
    # mean, reshape, the channel conv, reshape, sigmoid, product.
    assert extra == collections.Counter(
        {"MEAN": gates, "RESHAPE": 2 * gates, "CONV_2D": gates,
         "LOGISTIC": gates, "MUL": gates}
    )
    assert not plain.get("MUL") and not plain.get("ADD", 0) > 8


def test_int8_quantization_keeps_the_gates(tmp_path):
    model = model_with_statistics("eca_mobilenet_v2")
    calibration = models.images(16, seed=11)
    x = models.images(4, seed=12)
    flatbuffer = export.to_tflite(model)
    quantized = export.to_tflite(model, "int8", representative_data=calibration)
    assert len(quantized) < 0.4 * len(flatbuffer)
    ops = tflite_ops(quantized)
    assert ops["LOGISTIC"] == 17
    expected = model.predict(x, verbose=0)
    got = export.run_tflite(quantized, x)
    # int8 end to end: a few percent of the logits' range.
    assert relative_error(got, expected) < 0.2
    errors = export.gate_errors(flatbuffer, quantized, x)
    assert len(errors) == 17
    assert max(errors.values()) < 0.1


def test_quantization_arguments_are_checked():
    model = models.model("eca_resnet18")
    with pytest.raises(ValueError, match="Received: quantization='int4'"):
        export.to_tflite(model, "int4")
    with pytest.raises(ValueError, match="representative_data=None"):
        export.to_tflite(model, "int8")
    with pytest.raises(ValueError, match="Received: calibration_steps=0"):
        export.to_tflite(model, "int8", models.images(), calibration_steps=0)


def test_inference_model_and_a_hand_made_keras_export_agree(tmp_path):
    import tensorflow as tf

    model = model_with_statistics("eca_resnet18")
    lean = inference.inference_model(model)
    lean.export(str(tmp_path / "hand"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(lean)
    flatbuffer = converter.convert()
    x = models.images()
    expected = model.predict(x, verbose=0)
    served = tf.saved_model.load(str(tmp_path / "hand"))
    assert relative_error(served.serve(x).numpy(), expected) < RELATIVE_TOLERANCE
    assert relative_error(export.run_tflite(flatbuffer, x), expected) < RELATIVE_TOLERANCE
    assert isinstance(lean, keras.Model)
