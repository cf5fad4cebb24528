"""keras_eca: ECA-Net, SE and Shuffle Attention layers and models for Keras 3."""

from keras_eca import layers
from keras_eca.version import __version__

__all__ = ["layers", "__version__"]
