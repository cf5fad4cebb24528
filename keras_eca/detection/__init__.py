"""keras_eca backbones in Keras detectors (TensorFlow; `pip install
keras_eca[detection]`).

`backbone(name, ...)` turns any ResNet or MobileNetV2 model of the registry
into the backbone a KerasCV detector takes (`keras_cv.models.RetinaNet`,
`keras_cv.models.YOLOV8Detector`) or, with `api="keras_hub"`, the image
encoder of keras-hub's `RetinaNetObjectDetector`; `build_detector` builds
one on it and `train_detector` trains it in a resumable run folder
(`keras-eca detect-train`).
`resolve_detection_source` reads TFDS `coco/2017`-style datasets or the
embedded synthetic set, `training_dataset` / `evaluation_dataset` make
their fixed-size batches, and `evaluate_detector` / `CocoEvaluator` give
COCO's AP and AR through pycocotools. `keras_eca.export.export_saved_model`
exports a detector with its NMS.

Import this module before `keras.saving.load_model` of a saved detector:
importing it registers the backbone classes the file names (the keras-hub
one where keras-hub is installed).
"""

import importlib.util

try:
    import keras_cv  # noqa: F401
except ImportError as error:
    raise ImportError(
        "keras_eca.detection needs KerasCV: pip install 'keras_eca[detection]' "
        f"(the import failed: {error})"
    ) from error

from keras_eca.detection.backbones import API_NAMES
from keras_eca.detection.backbones import backbone
from keras_eca.detection.data import BOX_FORMAT
from keras_eca.detection.data import DetectionSource
from keras_eca.detection.data import evaluation_dataset
from keras_eca.detection.data import resolve_detection_source
from keras_eca.detection.data import training_dataset
from keras_eca.detection.detectors import DETECTOR_NAMES
from keras_eca.detection.detectors import DETECTORS_BY_API
from keras_eca.detection.detectors import build_detector
from keras_eca.detection.detectors import compile_detector
from keras_eca.detection.detectors import adapt_targets
from keras_eca.detection.detectors import decode
from keras_eca.detection.detectors import evaluate_detector
from keras_eca.detection.keras_cv_backbone import KerasCVBackbone  # registered
from keras_eca.detection.metrics import METRIC_NAMES
from keras_eca.detection.metrics import CocoEvaluator
from keras_eca.detection.recipes import DetectionRecipe
from keras_eca.detection.recipes import get_detection_recipe
from keras_eca.detection.recipes import list_detection_recipes
from keras_eca.detection.training import DetectionRun
from keras_eca.detection.training import load_run
from keras_eca.detection.training import train_detector

if importlib.util.find_spec("keras_hub") is not None:  # the optional extra
    from keras_eca.detection.keras_hub_backbone import KerasHubBackbone
else:
    KerasHubBackbone = None

__all__ = [
    "API_NAMES", "BOX_FORMAT", "CocoEvaluator", "DETECTORS_BY_API",
    "DETECTOR_NAMES", "DetectionRecipe", "DetectionRun", "DetectionSource",
    "KerasCVBackbone", "KerasHubBackbone", "METRIC_NAMES", "backbone", "build_detector",
    "adapt_targets", "compile_detector", "decode", "evaluate_detector", "evaluation_dataset",
    "get_detection_recipe", "list_detection_recipes", "load_run",
    "resolve_detection_source", "train_detector", "training_dataset",
]
