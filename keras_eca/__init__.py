"""keras_eca: ECA-Net, SE and Shuffle Attention layers and models for Keras 3.

Submodules: `layers` (attention layers, registry), `applications` (model
builders), `conversion` (PyTorch state_dict mapping), `checkpoints`
(reading .pth/.safetensors without torch), `complexity` (parameter and
FLOP counts), `testing` (the layer test harness). `keras_eca.export` needs
TensorFlow and is imported on demand.
"""

from keras_eca import applications
from keras_eca import checkpoints
from keras_eca import complexity
from keras_eca import conversion
from keras_eca import layers
from keras_eca.version import __version__

__all__ = [
    "applications",
    "checkpoints",
    "complexity",
    "conversion",
    "layers",
    "__version__",
]
