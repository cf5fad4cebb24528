"""ResNet and MobileNetV2 classifiers with ECA, SE and SA attention.

Every architecture is a row of `registry.MODELS`; `build_model(name)`
builds any of them, and the named functions (`ECAResNet50`, ...) are thin
wrappers with the `keras.applications` signature.
"""

from keras_eca.applications.factory import build_model
from keras_eca.applications.feature_extraction import feature_extractor
from keras_eca.applications.feature_extraction import feature_layer_names
from keras_eca.applications.models import ECAMobileNetV2
from keras_eca.applications.models import ECAResNet18
from keras_eca.applications.models import ECAResNet26T
from keras_eca.applications.models import ECAResNet34
from keras_eca.applications.models import ECAResNet50
from keras_eca.applications.models import ECAResNet50D
from keras_eca.applications.models import ECAResNet50T
from keras_eca.applications.models import ECAResNet101
from keras_eca.applications.models import ECAResNet101D
from keras_eca.applications.models import ECAResNet152
from keras_eca.applications.models import ECAResNet200D
from keras_eca.applications.models import ECAResNet269D
from keras_eca.applications.models import ECAResNetLight
from keras_eca.applications.models import MobileNetV2
from keras_eca.applications.models import ResNet18
from keras_eca.applications.models import ResNet34
from keras_eca.applications.models import ResNet50
from keras_eca.applications.models import ResNet101
from keras_eca.applications.models import ResNet152
from keras_eca.applications.models import SAResNet50
from keras_eca.applications.models import SAResNet101
from keras_eca.applications.models import SAResNet152
from keras_eca.applications.models import SEMobileNetV2
from keras_eca.applications.models import SEResNet18
from keras_eca.applications.models import SEResNet34
from keras_eca.applications.models import SEResNet50
from keras_eca.applications.models import SEResNet101
from keras_eca.applications.models import SEResNet152
from keras_eca.applications.models import TimmResNet50
from keras_eca.applications.models import TimmSEResNet50
from keras_eca.applications.preprocessing import decode_predictions
from keras_eca.applications.preprocessing import preprocess_input
from keras_eca.applications.registry import list_models
from keras_eca.applications.registry import model_config
from keras_eca.applications.weights import WeightsDownloadError

__all__ = [
    "ECAMobileNetV2",
    "ECAResNet18",
    "ECAResNet26T",
    "ECAResNet34",
    "ECAResNet50",
    "ECAResNet50D",
    "ECAResNet50T",
    "ECAResNet101",
    "ECAResNet101D",
    "ECAResNet152",
    "ECAResNet200D",
    "ECAResNet269D",
    "ECAResNetLight",
    "MobileNetV2",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "SAResNet50",
    "SAResNet101",
    "SAResNet152",
    "SEMobileNetV2",
    "SEResNet18",
    "SEResNet34",
    "SEResNet50",
    "SEResNet101",
    "SEResNet152",
    "TimmResNet50",
    "TimmSEResNet50",
    "WeightsDownloadError",
    "build_model",
    "decode_predictions",
    "feature_extractor",
    "feature_layer_names",
    "list_models",
    "model_config",
    "preprocess_input",
]
