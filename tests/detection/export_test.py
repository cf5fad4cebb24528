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


@pytest.mark.parametrize("kind, backbone, api", [
    ("retinanet", "eca_resnet18", "keras_cv"),
    # keras-hub's RetinaNetObjectDetector, with KerasCV's NMS.
    ("retinanet", "eca_resnet18", "keras_hub"),
    # The same endpoint code; outside the default run (`make test-all`).
    pytest.param("yolov8", "eca_mobilenet_v2", "keras_cv", marks=pytest.mark.slow),
])
def test_served_detections_equal_the_models_decoded_ones(tmp_path, kind, backbone, api):
    keras.utils.set_random_seed(0)
    model = detectors.build_detector(kind, backbone, 3, image_size=128, api=api)
    source = data.resolve_detection_source("synthetic", num_examples=4)
    images, targets = next(iter(data.training_dataset(
        source, image_size=128, batch_size=4, seed=0, epoch=0, max_boxes=4
    )))
    images, targets = detectors.adapt_targets(api)(images, targets)
    detectors.compile_detector(model, detectors.default_optimizer())
    model.fit(images, targets, epochs=1, verbose=0)
    _calibrate_batchnorm(model, images)
    # A low threshold, so that the untrained model's NMS keeps boxes.
    threshold = 0.01
    if api == "keras_hub":
        # Its scores cluster closer: the top 1 % of anchors, so that NMS's
        # cut at 100 boxes does not choose among near-ties.
        logits = np.asarray(model(images, training=False)["cls_logits"])
        threshold = float(np.quantile(1 / (1 + np.exp(-logits.max(-1))), 0.99))
    detectors.with_confidence(model, threshold)
    expected = detectors.decode(model, images)
    assert int(np.max(expected["num_detections"])) > 0

    path = export.export_saved_model(model, tmp_path / "saved_model")
    served = tf.saved_model.load(path)
    result = served.serve(images)
    assert set(result) == {"boxes", "scores", "classes", "num_detections"}
    _assert_same_detections(result, expected)
    # Rows past num_detections are padding.
    n = int(result["num_detections"][0])
    assert (result["classes"].numpy()[0, n:] == -1).all()
    # Any batch size, the last image's detections unchanged.
    last = served.serve(images[-1:])
    np.testing.assert_allclose(
        last["scores"].numpy()[0], result["scores"].numpy()[-1], atol=1e-5
    )


def _calibrate_batchnorm(model, images):
    """BatchNorm's moving statistics set to this batch's: an untrained
    model's inference-mode features (mean 0, variance 1 assumed) grow
    through the network to logits of +-50, whose saturated, tied scores
    NMS orders arbitrarily."""
    def walk(layer):
        yield layer
        for inner in getattr(layer, "layers", []):
            yield from walk(inner)

    layers = [
        layer for layer in walk(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def _assert_same_detections(result, expected):
    """Image by image, the same detections in any order (NMS orders equal
    scores arbitrarily)."""
    np.testing.assert_array_equal(
        result["num_detections"].numpy(), np.asarray(expected["num_detections"])
    )
    for image, n in enumerate(result["num_detections"].numpy()):
        served = [
            (result["boxes"].numpy()[image, i], result["scores"].numpy()[image, i],
             result["classes"].numpy()[image, i]) for i in range(n)
        ]
        left = [
            (np.asarray(expected["boxes"])[image, i],
             np.asarray(expected["confidence"])[image, i],
             np.asarray(expected["classes"])[image, i]) for i in range(n)
        ]
        for box, score, cls in served:
            match = next(
                (k for k, (b, s, c) in enumerate(left)
                 if c == cls and abs(s - score) < 1e-5
                 and np.allclose(b, box, rtol=1e-4, atol=1e-2)),
                None,
            )
            assert match is not None, (image, box, score, cls)
            left.pop(match)


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


def test_keras_hubs_own_nms_is_served_image_by_image(tmp_path):
    """keras-hub's NonMaxSuppression needs a static batch size: the
    endpoint decodes each image of any batch on its own."""
    import keras_hub

    keras.utils.set_random_seed(0)
    model = detectors.build_detector(
        "retinanet", "eca_resnet18", 3, image_size=128, api="keras_hub"
    )
    model.prediction_decoder = keras_hub.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=True, confidence_threshold=0.0
    )
    images = np.random.default_rng(0).uniform(0, 255, (3, 128, 128, 3)).astype("float32")
    served = tf.saved_model.load(
        export.export_saved_model(model, tmp_path / "saved_model")
    )
    batch = served.serve(images)
    assert batch["boxes"].shape == (3, 100, 4)
    for i in range(3):
        one = served.serve(images[i:i + 1])
        np.testing.assert_allclose(one["scores"].numpy()[0], batch["scores"].numpy()[i], atol=1e-5)
        np.testing.assert_array_equal(one["classes"].numpy()[0], batch["classes"].numpy()[i])
