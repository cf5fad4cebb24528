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


def test_detect_command_draws_boxes_on_image_files(tmp_path, capsys):
    from PIL import Image

    from keras_eca import cli
    from keras_eca.detection import synthetic

    keras.utils.set_random_seed(0)
    model = detectors.build_detector("retinanet", "eca_resnet18", 3, image_size=128)
    model.save(tmp_path / "detector.keras")
    images, _, _ = synthetic.generate(2, split="test")
    paths = []
    for index, image in enumerate(images):
        # Another size than the model's: resized with padding, boxes back.
        path = tmp_path / f"shape{index}.png"
        Image.fromarray(image).resize((200, 150)).save(path)
        paths.append(str(path))
    assert cli.main([
        "detect", *paths, "--model", str(tmp_path / "detector.keras"),
        "--output", str(tmp_path / "out"), "--threshold", "0.0",
        "--class-names", "circle,square,triangle",
    ]) in (0, None)
    printed = capsys.readouterr().out
    for index in range(2):
        figure = tmp_path / "out" / f"shape{index}_boxes.png"
        assert figure.stat().st_size > 1000
        assert f"shape{index}_boxes.png" in printed
    found = detectors.detect_files(model, paths, confidence_threshold=0.0)
    assert found[0]["image"].shape == (150, 200, 3)
    boxes = found[0]["boxes"]
    assert len(boxes) > 0
    # Clipped to the file's own image, not the padded square.
    assert (boxes >= 0).all()
    assert (boxes[:, [0, 2]] <= 200).all() and (boxes[:, [1, 3]] <= 150).all()
    with pytest.raises(SystemExit, match="keras-eca detect: .*missing.png.*not an existing"):
        cli.main(["detect", str(tmp_path / "missing.png"), "--model", "x.keras",
                  "--output", str(tmp_path)])
