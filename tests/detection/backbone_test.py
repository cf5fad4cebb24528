"""keras_eca.detection.backbone in KerasCV's RetinaNet: the pyramid, fit,
predict with NMS, and a `.keras` round trip (in a fresh process too)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import keras
import keras_cv  # the `detection` extra, in the lock

from keras_eca import applications
from keras_eca import detection
from keras_eca.applications import registry

pytestmark = pytest.mark.tensorflow_only

SIZE = 128
REPO = pathlib.Path(__file__).resolve().parents[2]


def _boxes():
    """Two images, up to two boxes each (xywh, pixels), padded with -1."""
    boxes = np.array(
        [[[8, 8, 40, 40], [60, 50, 50, 60]], [[20, 30, 70, 60], [0, 0, 0, 0]]],
        dtype="float32",
    )
    classes = np.array([[0, 2], [1, -1]], dtype="float32")
    boxes[classes < 0] = -1
    return {"boxes": boxes, "classes": classes}


@pytest.mark.parametrize("name", ["eca_resnet18", "eca_mobilenet_v2"])
def test_pyramid_levels_are_the_registry_feature_maps(name):
    net = detection.backbone(name, input_shape=(SIZE, SIZE, 3))
    assert isinstance(net, keras_cv.models.Backbone)
    row = registry.MODELS[name]
    assert net.pyramid_level_inputs == row["feature_layers"]
    for level, stride in (("P2", 4), ("P3", 8), ("P4", 16), ("P5", 32)):
        output = net.get_layer(net.pyramid_level_inputs[level]).output
        side = SIZE // stride
        assert output.shape == (None, side, side, row["feature_channels"][level])


def test_classification_weights_load_into_the_backbone(tmp_path):
    classifier = applications.build_model(
        "eca_resnet18", weights=None, input_shape=(64, 64, 3), classes=5
    )
    path = tmp_path / "classifier.weights.h5"
    classifier.save_weights(path)
    net = detection.backbone(
        "eca_resnet18", weights=str(path), input_shape=(SIZE, SIZE, 3)
    )
    for layer_name in ("conv1_conv", "conv3_block1_1_conv", "conv5_block2_2_conv"):
        np.testing.assert_array_equal(
            net.get_layer(layer_name).kernel.numpy(),
            classifier.get_layer(layer_name).kernel.numpy(),
        )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Received: api='detectron'"):
        detection.backbone("eca_resnet18", api="detectron")
    with pytest.raises(ValueError, match="Unknown model 'eca_resnet9'"):
        detection.backbone("eca_resnet9")


def _train_predict_reload(detector, tmp_path, classification_loss, box_loss):
    """Two epochs of `fit`, `predict` (decoded, NMS), then a `.keras`
    round trip with identical raw outputs. Returns the images, the raw
    outputs and the file."""
    detector.compile(
        optimizer=keras.optimizers.SGD(0.01),
        classification_loss=classification_loss,
        box_loss=box_loss,
    )
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3))
    images = images.astype("float32")
    history = detector.fit(images, _boxes(), batch_size=2, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))

    predicted = detector.predict(images, verbose=0)
    assert predicted["boxes"].shape[:2] == predicted["classes"].shape
    assert predicted["num_detections"].shape == (2,)

    path = tmp_path / "detector.keras"
    detector.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.backbone, detection.KerasCVBackbone)
    raw = detector(images, training=False)
    for key, value in loaded(images, training=False).items():
        np.testing.assert_array_equal(value.numpy(), raw[key].numpy())
    return images, raw, path


def test_retinanet_trains_predicts_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    detector = keras_cv.models.RetinaNet(
        num_classes=3,
        bounding_box_format="xywh",
        backbone=detection.backbone("eca_resnet18", input_shape=(SIZE, SIZE, 3)),
    )
    images, raw, path = _train_predict_reload(
        detector, tmp_path, "focal", "smoothl1"
    )

    # A fresh process: importing keras_eca.detection registers the class.
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, json, numpy as np, keras, keras_eca.detection\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "out = model(np.load(sys.argv[2]), training=False)\n"
        "print(json.dumps({k: np.asarray(v).tolist() for k, v in out.items()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "images.npy")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    for key, value in served.items():
        np.testing.assert_array_equal(np.asarray(value, "float32"), raw[key].numpy())


def test_yolov8_trains_predicts_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    detector = keras_cv.models.YOLOV8Detector(
        num_classes=3,
        bounding_box_format="xywh",
        backbone=detection.backbone(
            "eca_mobilenet_v2", input_shape=(SIZE, SIZE, 3)
        ),
        fpn_depth=1,
    )
    _train_predict_reload(detector, tmp_path, "binary_crossentropy", "ciou")


# --- keras-hub (the keras_hub extra, in the lock) -------------------------------


def test_keras_hub_backbone_has_pyramid_output_tensors():
    import keras_hub

    net = detection.backbone("eca_resnet18", input_shape=(SIZE, SIZE, 3), api="keras_hub")
    assert isinstance(net, keras_hub.models.FeaturePyramidBackbone)
    row = registry.MODELS["eca_resnet18"]
    assert sorted(net.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    for level, stride in (("P2", 4), ("P3", 8), ("P4", 16), ("P5", 32)):
        side = SIZE // stride
        tensor = net.pyramid_outputs[level]
        assert tensor.shape == (None, side, side, row["feature_channels"][level])
        assert tensor is net.get_layer(row["feature_layers"][level]).output


def test_keras_hub_retinanet_trains_predicts_and_round_trips(tmp_path):
    import keras_hub

    keras.utils.set_random_seed(0)
    detector = detection.build_detector(
        "retinanet", "eca_resnet18", 3, api="keras_hub", image_size=SIZE
    )
    assert isinstance(detector, keras_hub.models.RetinaNetObjectDetector)
    detection.compile_detector(detector, keras.optimizers.SGD(0.01))
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3))
    images = images.astype("float32")
    targets = _boxes()
    # keras-hub's labels are {"boxes", "labels"}; the boxes here are xyxy.
    targets["boxes"] = np.where(
        targets["boxes"] < 0, -1,
        np.concatenate([targets["boxes"][..., :2],
                        targets["boxes"][..., :2] + targets["boxes"][..., 2:]], -1),
    ).astype("float32")
    _, labels = detection.adapt_targets("keras_hub")(images, targets)
    assert set(labels) == {"boxes", "labels"}
    history = detector.fit(images, labels, batch_size=2, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))

    found = detection.decode(detector, images)
    assert found["boxes"].shape[:2] == found["classes"].shape
    assert found["num_detections"].shape == (2,)
    predicted = detector.predict(images, verbose=0)  # keras-hub's predict_step
    np.testing.assert_array_equal(predicted["num_detections"], found["num_detections"])
    np.testing.assert_array_equal(predicted["classes"], found["classes"])  # KerasCV NMS

    path = tmp_path / "detector.keras"
    detector.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.backbone.image_encoder, detection.KerasHubBackbone)
    raw = detector(images, training=False)
    for key, value in loaded(images, training=False).items():
        np.testing.assert_array_equal(value.numpy(), raw[key].numpy())


def test_keras_hub_offers_retinanet_only():
    with pytest.raises(ValueError, match=r"\['retinanet'\] with api='keras_hub'"):
        detection.build_detector("yolov8", "eca_resnet18", 3, api="keras_hub", image_size=SIZE)
