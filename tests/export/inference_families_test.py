"""SavedModel and TFLite of the inference form, one model of every family:
outputs within 1e-5 relative, no BatchNorm multiply-add left."""

import pytest

from keras_eca import export
from tests.export import models
from tests.export.inference_export_test import model_with_statistics
from tests.export.inference_export_test import tflite_ops
from tests.inference_form_test import RELATIVE_TOLERANCE
from tests.inference_form_test import relative_error

pytestmark = pytest.mark.tensorflow_only


@pytest.mark.parametrize("name", models.FAMILIES + ["resnet18"])
def test_saved_model_and_tflite_of_the_inference_form(name, tmp_path):
    import tensorflow as tf

    model = model_with_statistics(name)
    x = models.images()
    expected = model.predict(x, verbose=0)
    path = export.export_saved_model(model, tmp_path / name)
    served = tf.saved_model.load(path)
    assert relative_error(served.serve(x).numpy(), expected) < RELATIVE_TOLERANCE
    flatbuffer = export.to_tflite(path)
    for batch in (1, 2):
        got = export.run_tflite(flatbuffer, x[:batch])
        assert relative_error(got, expected[:batch]) < RELATIVE_TOLERANCE
    ops = tflite_ops(flatbuffer)
    if name != "sa_resnet50":
        # No BatchNorm left as a multiply-add: one product per gate.
        assert ops.get("MUL", 0) == ops.get("LOGISTIC", 0)
    else:
        # SUB + MUL for the variance: int8 TFLite has no fast
        # SQUARED_DIFFERENCE (20x slower than both on a 56x56x256 map).
        assert "SQUARED_DIFFERENCE" not in ops and ops["SUB"] >= 16


def test_the_xla_saved_model_of_sa(tmp_path):
    import tensorflow as tf

    from keras_eca import inference

    model = model_with_statistics("sa_resnet50")
    x = models.images()
    lean = inference.inference_model(model, xla=True)
    expected = lean.predict(x, verbose=0)
    path = export.export_saved_model(model, tmp_path / "xla", xla=True)
    with open(f"{path}/saved_model.pb", "rb") as graph:
        assert b"_XlaMustCompile" in graph.read()  # the fused kernels
    served = tf.saved_model.load(path)
    assert relative_error(served.serve(x).numpy(), expected) < RELATIVE_TOLERANCE
    # TFLite converts it too (the XLA calls inlined as plain ops); XLA's
    # own rounding order puts it ~1e-5 from the unfused model.
    got = export.run_tflite(export.to_tflite(path), x)
    assert relative_error(got, model.predict(x, verbose=0)) < 10 * RELATIVE_TOLERANCE
    with pytest.raises(ValueError, match="True only with inference_form=True"):
        export.export_saved_model(model, tmp_path / "no", inference_form=False, xla=True)
