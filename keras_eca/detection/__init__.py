"""keras_eca backbones in Keras detectors (TensorFlow; `pip install
keras_eca[detection]`).

`backbone(name, ...)` turns any ResNet or MobileNetV2 model of the registry
into the backbone a KerasCV detector takes (`keras_cv.models.RetinaNet`,
`keras_cv.models.YOLOV8Detector`). Import this module before
`keras.saving.load_model` of a saved detector: importing it registers the
backbone class the file names.
"""

try:
    import keras_cv  # noqa: F401
except ImportError as error:
    raise ImportError(
        "keras_eca.detection needs KerasCV: pip install 'keras_eca[detection]' "
        f"(the import failed: {error})"
    ) from error

from keras_eca.detection.backbones import API_NAMES
from keras_eca.detection.backbones import backbone
from keras_eca.detection.keras_cv_backbone import KerasCVBackbone  # registered

__all__ = ["API_NAMES", "KerasCVBackbone", "backbone"]
