"""KerasCV (and keras-hub) detectors on keras_eca backbones, and their
COCO evaluation.

Both libraries' detectors are handled through the same functions: targets
go in as `{"boxes", "classes"}` (`adapt_targets` renames them for
keras-hub, which wants `"labels"`), decoded detections come out with
`"classes"` whichever library made them.
"""

import keras
import keras_cv
import numpy as np

from keras_eca.detection import data as data_lib
from keras_eca.detection.backbones import backbone as make_backbone
from keras_eca.detection.metrics import CocoEvaluator

DETECTOR_NAMES = ("retinanet", "yolov8")
# The detectors each library offers on these backbones.
DETECTORS_BY_API = {"keras_cv": DETECTOR_NAMES, "keras_hub": ("retinanet",)}
# The detection thresholds: the detectors' defaults for `predict`, and
# COCO's customary 0.05 for evaluation (AP integrates over all scores).
PREDICT_CONFIDENCE = 0.5
EVALUATION_CONFIDENCE = 0.05


def build_detector(
    detector,
    backbone,
    num_classes,
    *,
    api="keras_cv",
    weights=None,
    image_size=512,
    include_preprocessing=True,
    fpn_depth=1,
):
    """A KerasCV or keras-hub detector on a keras_eca backbone, boxes in
    `"xyxy"` pixels.

    Args:
        detector: `"retinanet"` (`keras_cv.models.RetinaNet`, or with
            `api="keras_hub"` `keras_hub.models.RetinaNetObjectDetector`)
            or `"yolov8"` (`keras_cv.models.YOLOV8Detector`).
        backbone: a registry key, e.g. `"eca_resnet50"`.
        num_classes: int.
        weights: the backbone's initial weights (any `build_model(weights=)`).
        image_size: the square input side (a multiple of 128).
        include_preprocessing: see `keras_eca.detection.backbone`.
        fpn_depth: YOLOV8's feature pyramid depth.
        api: `"keras_cv"` or `"keras_hub"` (needs the `keras_hub` extra).

    Returns:
        The detector, not compiled (see `compile_detector`).
    """
    if api not in DETECTORS_BY_API:
        raise ValueError(
            f"`api` must be one of {list(DETECTORS_BY_API)}. Received: api={api!r}"
        )
    if detector not in DETECTORS_BY_API[api]:
        raise ValueError(
            f"`detector` must be one of {list(DETECTORS_BY_API[api])} with "
            f"api={api!r}. Received: detector={detector!r}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
        )
    image_size = data_lib._check_image_size(image_size)
    shape = (image_size, image_size, 3)
    net = make_backbone(
        backbone, weights, shape, include_preprocessing=include_preprocessing,
        api=api,
    )
    if api == "keras_hub":
        import keras_hub

        # P3-P7 with P6 computed from C5, as in the RetinaNet paper.
        pyramid = keras_hub.models.RetinaNetBackbone(
            image_encoder=net, min_level=3, max_level=7, use_p5=False,
            image_shape=shape,
        )
        model = keras_hub.models.RetinaNetObjectDetector(
            backbone=pyramid, num_classes=num_classes,
            bounding_box_format=data_lib.BOX_FORMAT,
            # KerasCV's NMS (tf.image's), with KerasCV RetinaNet's defaults:
            # keras-hub 0.32's own keeps fewer boxes inside a tf.function
            # than eagerly (61 against 66 in a test; tf.image: 66), and
            # evaluation and SavedModels run it traced.
            prediction_decoder=keras_cv.layers.NonMaxSuppression(
                bounding_box_format=data_lib.BOX_FORMAT, from_logits=True,
                iou_threshold=0.5, confidence_threshold=PREDICT_CONFIDENCE,
                max_detections=100,
            ),
        )
        _retinanet_paper_head_init(model)
    elif detector == "retinanet":
        model = keras_cv.models.RetinaNet(
            num_classes=num_classes, bounding_box_format=data_lib.BOX_FORMAT,
            backbone=net,
        )
    else:
        model = keras_cv.models.YOLOV8Detector(
            num_classes=num_classes, bounding_box_format=data_lib.BOX_FORMAT,
            backbone=net, fpn_depth=fpn_depth,
        )
    _float32_decoder(model)
    return model


def _float32_decoder(model):
    """Box decoding and NMS in float32 under a mixed precision policy (the
    decoder layer would cast the boxes to float16 / bfloat16, which the
    NMS ops then mix with float32 thresholds)."""
    decoder = model.prediction_decoder
    if decoder.compute_dtype != "float32":
        config = decoder.get_config()
        config["dtype"] = "float32"
        model.prediction_decoder = type(decoder).from_config(config)


def _retinanet_paper_head_init(model, prior=0.01):
    """The RetinaNet paper's head init (section 4.1), as KerasCV does it:
    every head conv N(0, 0.01) with zero bias, the class logits' bias at
    the `prior`. keras-hub 0.32 draws N(0, 0.05) (logits of +-50 through
    the five 3x3x256 convs) and biases the box deltas, not the class
    logits, with the prior."""
    import math

    generator = keras.random.SeedGenerator()  # from the global seed
    for head in (model.classification_head, model.box_head):
        for conv in list(head.conv_layers) + [head.prediction_layer]:
            conv.kernel.assign(
                keras.random.normal(conv.kernel.shape, stddev=0.01, seed=generator)
            )
            if conv.bias is not None:
                conv.bias.assign(keras.ops.zeros(conv.bias.shape))
    classes = model.classification_head.prediction_layer.bias
    classes.assign(keras.ops.full(classes.shape, -math.log((1 - prior) / prior)))


def _keras_hub_retinanet():
    try:
        import keras_hub
    except ImportError:
        return None
    return keras_hub.models.RetinaNetObjectDetector


def detector_api(model):
    """`"keras_cv"` or `"keras_hub"`: the library of a detector, else an
    error."""
    if isinstance(model, (keras_cv.models.RetinaNet, keras_cv.models.YOLOV8Detector)):
        return "keras_cv"
    hub_retinanet = _keras_hub_retinanet()
    if hub_retinanet is not None and isinstance(model, hub_retinanet):
        return "keras_hub"
    raise ValueError(
        "`detector` must be a keras_cv RetinaNet or YOLOV8Detector, or a "
        f"keras_hub RetinaNetObjectDetector. Received: {type(model).__name__}"
    )


def detector_kind(model):
    """`"retinanet"` or `"yolov8"` for a supported detector, else an error."""
    detector_api(model)
    return "yolov8" if isinstance(model, keras_cv.models.YOLOV8Detector) else "retinanet"


def adapt_targets(api):
    """The map from the pipelines' `(images, {"boxes", "classes"})` to what
    `api`'s detectors train on (keras-hub names the classes `"labels"`)."""
    if api == "keras_hub":
        return lambda images, targets: (
            images, {"boxes": targets["boxes"], "labels": targets["classes"]}
        )
    return lambda images, targets: (images, targets)


def compile_detector(model, optimizer, *, jit_compile=False):
    """Compiles with the losses of the detector's paper: focal + smooth L1
    (KerasCV RetinaNet), binary cross-entropy + CIoU (YOLOV8); keras-hub's
    RetinaNet keeps its own (focal + Huber)."""
    if detector_api(model) == "keras_hub":
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        return model
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


def float32_outputs(model, images):
    """The raw heads in inference mode, as float32: under a mixed precision
    policy they are float16 / bfloat16, which KerasCV's box decoding
    cannot mix with its float32 anchors."""
    return keras.tree.map_structure(
        lambda t: keras.ops.cast(t, "float32"), model(images, training=False)
    )


def decode(model, images):
    """Decoded, NMS-filtered detections of one batch (inference mode):
    dict of `boxes` (xyxy), `confidence`, `classes`, `num_detections`."""
    found = dict(model.decode_predictions(float32_outputs(model, images), images))
    if "labels" in found:  # keras-hub's name
        found["classes"] = found.pop("labels")
    return found


def evaluate_detector(
    model, source, *, image_size=None, batch_size=8, max_batches=None,
    confidence_threshold=EVALUATION_CONFIDENCE, progress=None,
):
    """COCO AP / AR of `model` on a `DetectionSource` (pycocotools).

    Args:
        model: a KerasCV or keras-hub detector trained on `xyxy` pixel
            boxes.
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

        # Traced for the full and the last batch (keras-hub's NMS needs a
        # static batch size, so shapes are not relaxed).
        step = tf.function(lambda images: decode(model, images))
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
