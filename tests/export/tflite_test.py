"""TFLite conversion: float32 models match Keras within 1e-4."""

import numpy as np
import pytest

from keras_eca import applications
from keras_eca import export
from tests.export import models

pytestmark = pytest.mark.tensorflow_only


def check_tflite(model, flatbuffer, size):
    for batch in (1, 2):
        x = models.images(batch, size, seed=batch)
        expected = model.predict(x, verbose=0)
        got = export.run_tflite(flatbuffer, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_eca_mobilenet_v2_converts_to_tflite():
    model = models.model("eca_mobilenet_v2", size=96)
    check_tflite(model, export.to_tflite(model), size=96)


def test_eca_resnet50_converts_to_tflite_from_a_saved_model(tmp_path):
    model = applications.build_model(
        "eca_resnet50",
        input_shape=(64, 64, 3),
        classifier_activation=None,
    )
    path = export.export_saved_model(model, tmp_path / "eca_resnet50")
    check_tflite(model, export.to_tflite(path), size=64)


def test_to_tflite_and_run_tflite_reject_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Received: model_or_path="):
        export.to_tflite(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="Received: model_content=str"):
        export.run_tflite("not a model", np.zeros((1, 2)))
