"""SavedModel export: `serve` returns exactly what `model.predict` does."""

import numpy as np
import pytest

from keras_eca import applications
from keras_eca import export
from tests.export import models
from tests.inference_form_test import RELATIVE_TOLERANCE
from tests.inference_form_test import relative_error

pytestmark = pytest.mark.tensorflow_only


def serve(path, x):
    import tensorflow as tf

    # Keep the loaded object alive while `serve` runs: a one-liner
    # `tf.saved_model.load(path).serve(x)` lets it be collected after the
    # attribute lookup and fails with "variables which have been deleted".
    served = tf.saved_model.load(path)
    return served.serve(x).numpy()


@pytest.mark.parametrize("name", models.FAMILIES)
def test_saved_model_of_the_models_own_graph_serves_predict_outputs(
    name, tmp_path
):
    # The inference form (the default) is tested in inference_export_test.
    model = models.model(name)
    path = export.export_saved_model(model, tmp_path / name, inference_form=False)
    x = models.images()
    # Both sides are graph-compiled: bit-identical (eager calls may round
    # the last bit differently).
    np.testing.assert_array_equal(serve(path, x), model.predict(x, verbose=0))


def test_dynamic_size_saved_model_serves_two_image_sizes(tmp_path):
    model = applications.build_model(
        "eca_resnet18",
        input_shape=(None, None, 3),
        classes=10,
        classifier_activation=None,
    )
    path = export.export_saved_model(model, tmp_path / "dynamic")
    import tensorflow as tf

    served = tf.saved_model.load(path)
    for batch, size in [(2, 64), (1, 96)]:
        x = models.images(batch, size)
        got = served.serve(x).numpy()
        assert got.shape == (batch, 10)
        expected = model.predict(x, verbose=0)
        assert relative_error(got, expected) < RELATIVE_TOLERANCE


def test_export_saved_model_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Received: model='resnet18'"):
        export.export_saved_model("resnet18", tmp_path)
    with pytest.raises(ValueError, match="Received: path=3"):
        export.export_saved_model(models.model("eca_resnet18"), 3)
