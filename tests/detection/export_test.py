"""`keras_eca.export.export_saved_model` of a KerasCV detector: `serve`
returns decoded, NMS-filtered detections equal to the Keras model's."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_eca import export
from keras_eca.detection import data
from keras_eca.detection import detectors

pytestmark = pytest.mark.tensorflow_only


@pytest.mark.parametrize("kind, backbone", [
    ("retinanet", "eca_resnet18"),
    # The same endpoint code; outside the default run (`make test-all`).
    pytest.param("yolov8", "eca_mobilenet_v2", marks=pytest.mark.slow),
])
def test_served_detections_equal_the_models_decoded_ones(tmp_path, kind, backbone):
    keras.utils.set_random_seed(0)
    model = detectors.build_detector(kind, backbone, 3, image_size=128)
    source = data.resolve_detection_source("synthetic", num_examples=4)
    images, targets = next(iter(data.training_dataset(
        source, image_size=128, batch_size=4, seed=0, epoch=0, max_boxes=4
    )))
    detectors.compile_detector(model, detectors.default_optimizer())
    model.fit(images, targets, epochs=1, verbose=0)
    # A low threshold, so that the untrained model's NMS keeps boxes.
    detectors.with_confidence(model, 0.01)
    expected = detectors.decode(model, images)
    assert int(np.max(expected["num_detections"])) > 0

    path = export.export_saved_model(model, tmp_path / "saved_model")
    served = tf.saved_model.load(path)
    result = served.serve(images)
    assert set(result) == {"boxes", "scores", "classes", "num_detections"}
    np.testing.assert_array_equal(
        result["num_detections"].numpy(), np.asarray(expected["num_detections"])
    )
    np.testing.assert_allclose(
        result["boxes"].numpy(), np.asarray(expected["boxes"]), atol=1e-3
    )
    np.testing.assert_allclose(
        result["scores"].numpy(), np.asarray(expected["confidence"]), atol=1e-5
    )
    np.testing.assert_array_equal(
        result["classes"].numpy(), np.asarray(expected["classes"])
    )
    # Rows past num_detections are padding.
    n = int(result["num_detections"][0])
    assert (result["classes"].numpy()[0, n:] == -1).all()


def test_a_detector_needs_a_fixed_image_size(tmp_path):
    import keras_cv

    from keras_eca import detection

    model = keras_cv.models.RetinaNet(
        num_classes=2, bounding_box_format="xyxy",
        backbone=detection.backbone("eca_resnet18", input_shape=(None, None, 3)),
    )
    with pytest.raises(ValueError, match="fixed image size.*Received: input_shape"):
        export.export_saved_model(model, tmp_path / "saved_model")
