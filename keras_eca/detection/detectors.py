"""KerasCV detectors on keras_eca backbones, and their COCO evaluation."""

import keras
import keras_cv
import numpy as np

from keras_eca.detection import data as data_lib
from keras_eca.detection.backbones import backbone as make_backbone
from keras_eca.detection.metrics import CocoEvaluator

DETECTOR_NAMES = ("retinanet", "yolov8")
# The detection thresholds: the detectors' defaults for `predict`, and
# COCO's customary 0.05 for evaluation (AP integrates over all scores).
PREDICT_CONFIDENCE = 0.5
EVALUATION_CONFIDENCE = 0.05


def build_detector(
    detector,
    backbone,
    num_classes,
    *,
    weights=None,
    image_size=512,
    include_preprocessing=True,
    fpn_depth=1,
):
    """A KerasCV detector on a keras_eca backbone, boxes in `"xyxy"` pixels.

    Args:
        detector: `"retinanet"` (`keras_cv.models.RetinaNet`) or `"yolov8"`
            (`keras_cv.models.YOLOV8Detector`).
        backbone: a registry key, e.g. `"eca_resnet50"`.
        num_classes: int.
        weights: the backbone's initial weights (any `build_model(weights=)`).
        image_size: the square input side (a multiple of 128).
        include_preprocessing: see `keras_eca.detection.backbone`.
        fpn_depth: YOLOV8's feature pyramid depth.

    Returns:
        The detector, not compiled (see `compile_detector`).
    """
    if detector not in DETECTOR_NAMES:
        raise ValueError(
            f"`detector` must be one of {list(DETECTOR_NAMES)}. "
            f"Received: detector={detector!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
        )
    image_size = data_lib._check_image_size(image_size)
    net = make_backbone(
        backbone, weights, (image_size, image_size, 3),
        include_preprocessing=include_preprocessing,
    )
    if detector == "retinanet":
        return keras_cv.models.RetinaNet(
            num_classes=num_classes, bounding_box_format=data_lib.BOX_FORMAT,
            backbone=net,
        )
    return keras_cv.models.YOLOV8Detector(
        num_classes=num_classes, bounding_box_format=data_lib.BOX_FORMAT,
        backbone=net, fpn_depth=fpn_depth,
    )


def detector_kind(model):
    """`"retinanet"` or `"yolov8"` for a KerasCV detector, else an error."""
    if isinstance(model, keras_cv.models.RetinaNet):
        return "retinanet"
    if isinstance(model, keras_cv.models.YOLOV8Detector):
        return "yolov8"
    raise ValueError(
        "`detector` must be a keras_cv RetinaNet or YOLOV8Detector. "
        f"Received: {type(model).__name__}"
    )


def compile_detector(model, optimizer, *, jit_compile=False):
    """Compiles with the losses of the detector's paper: focal + smooth L1
    (RetinaNet), binary cross-entropy + CIoU (YOLOV8)."""
    if detector_kind(model) == "retinanet":
        losses = {"classification_loss": "focal", "box_loss": "smoothl1"}
    else:
        losses = {"classification_loss": "binary_crossentropy", "box_loss": "ciou"}
    model.compile(optimizer=optimizer, jit_compile=jit_compile, **losses)
    return model


def with_confidence(model, confidence_threshold):
    """Sets the NMS decoder's confidence threshold (a new decoder of the
    same kind); returns the previous decoder."""
    previous = model.prediction_decoder
    config = previous.get_config()
    config["confidence_threshold"] = float(confidence_threshold)
    model.prediction_decoder = type(previous).from_config(config)
    return previous


def decode(model, images):
    """Decoded, NMS-filtered detections of one batch (inference mode):
    dict of `boxes` (xyxy), `confidence`, `classes`, `num_detections`."""
    return model.decode_predictions(model(images, training=False), images)


def evaluate_detector(
    model, source, *, image_size=None, batch_size=8, max_batches=None,
    confidence_threshold=EVALUATION_CONFIDENCE, progress=None,
):
    """COCO AP / AR of `model` on a `DetectionSource` (pycocotools).

    Args:
        model: a KerasCV detector trained on `xyxy` pixel boxes.
        source: from `resolve_detection_source(..., split="validation")`.
        image_size: defaults to the model's input side.
        batch_size: evaluation batch size.
        max_batches: evaluate the first batches only.
        confidence_threshold: detections kept before NMS.
        progress: called with `(batches_done, batches_total)`.

    Returns:
        A dict of `keras_eca.detection.METRIC_NAMES` -> float.
    """
    detector_kind(model)
    if image_size is None:
        image_size = model.input_shape[1]
    dataset = data_lib.evaluation_dataset(
        source, image_size=image_size, batch_size=batch_size
    )
    total = -(-source.num_examples // batch_size)
    if max_batches is not None:
        dataset = dataset.take(max_batches)
        total = min(total, max_batches)
    evaluator = CocoEvaluator(source.num_classes)
    previous = with_confidence(model, confidence_threshold)
    try:
        import tensorflow as tf

        step = tf.function(lambda images: decode(model, images), reduce_retracing=True)
        for done, batch in enumerate(dataset, 1):
            found = step(batch["images"])
            evaluator.add(
                image_ids=batch["image_id"].numpy(),
                gt_boxes=batch["boxes"].numpy(),
                gt_classes=batch["classes"].numpy(),
                is_crowd=batch["is_crowd"].numpy(),
                scale=batch["scale"].numpy(),
                boxes=np.asarray(found["boxes"]),
                scores=np.asarray(found["confidence"]),
                classes=np.asarray(found["classes"]),
                num_detections=np.asarray(found["num_detections"]),
            )
            if progress is not None:
                progress(done, total)
    finally:
        model.prediction_decoder = previous
    return evaluator.result()


def detect_files(model, paths, *, confidence_threshold=PREDICT_CONFIDENCE):
    """Detections on image files, in each file's own pixels.

    Each image is resized with padding to the model's input side (as in
    evaluation), decoded with NMS, and its boxes scaled back.

    Returns:
        A list (one per file) of dicts: `image` (uint8 HWC), `boxes`
        (n, 4) xyxy clipped to the image, `scores` (n,), `classes` (n,) int.
    """
    import tensorflow as tf

    detector_kind(model)
    size = model.input_shape[1]
    previous = with_confidence(model, confidence_threshold)
    results = []
    try:
        for path in paths:
            data_bytes = tf.io.read_file(str(path))
            try:
                image = tf.io.decode_image(data_bytes, channels=3, expand_animations=False)
            except tf.errors.InvalidArgumentError:
                raise ValueError(
                    f"{str(path)!r} is not an image TensorFlow can decode "
                    "(JPEG, PNG, BMP, GIF)."
                ) from None
            example = {
                "image": image, "boxes": tf.zeros([0, 4]),
                "classes": tf.zeros([0], tf.int32), "is_crowd": tf.zeros([0], tf.bool),
            }
            resized, _, _, _, scale = data_lib.resize_with_padding(example, size)
            found = decode(model, resized[None])
            n = int(found["num_detections"][0])
            height, width = image.shape[:2]
            boxes = np.asarray(found["boxes"][0][:n]) / float(scale)
            # Boxes reaching into the padding end at the image's border.
            boxes = np.clip(boxes, 0, [width, height, width, height])
            results.append({
                "image": image.numpy(),
                "boxes": boxes,
                "scores": np.asarray(found["confidence"][0][:n]),
                "classes": np.asarray(found["classes"][0][:n]).astype(int),
            })
    finally:
        model.prediction_decoder = previous
    return results


def default_optimizer(learning_rate=1e-3):
    """Adam with global gradient clipping (detectors' box losses spike
    early in training)."""
    return keras.optimizers.Adam(learning_rate, global_clipnorm=10.0)
