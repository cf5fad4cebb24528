"""PyTorch state_dict -> Keras weights for the `keras_eca.applications` models.

Pure NumPy: a state_dict is a mapping from parameter name to array, so
torch is never imported here. Supported sources: the official ECA-Net and
SA-Net code and torchvision (`layout="official"`), and timm's ResNet family
(`layout="timm"`).
"""

from keras_eca.conversion.state_dict import detect_layout
from keras_eca.conversion.state_dict import load_state_dict
from keras_eca.conversion.state_dict import stage_of_layer

__all__ = ["detect_layout", "load_state_dict", "stage_of_layer"]
