"""keras_eca: ECA-Net, SE and Shuffle Attention layers and models for Keras 3.

Submodules: `layers` (attention layers, registry), `applications` (model
builders), `conversion` (PyTorch state_dict mapping), `checkpoints`
(reading .pth/.safetensors without torch), `complexity` (parameter and
FLOP counts), `testing` (the layer test harness), `files` (atomic writes),
and the TensorFlow parts: `export` (SavedModel and TFLite), `data`
(tf.data input pipelines), `training` (recipes, strategies, exact resume,
evaluation), `finetune` (transfer learning, serving exports) and
`visualization` (attention gates, Grad-CAM, plots).

Each submodule is imported on first use (`keras_eca.layers`, ...), so
`import keras_eca` itself does not import Keras or TensorFlow and the
`keras-eca` command answers `--help` at once. Keras finds the layers of a
`.keras` file once `keras_eca.layers` has been imported: `import keras_eca`
does it when Keras is already imported (with the training optimizer, loss
and schedules a run's `.keras` files name); otherwise touch
`keras_eca.layers` (and `keras_eca.training.optimizers`) before
`keras.saving.load_model`.
"""

import importlib
import sys

from keras_eca.version import __version__

_SUBMODULES = (
    "applications",
    "checkpoints",
    "complexity",
    "conversion",
    "data",
    "detection",
    "export",
    "files",
    "finetune",
    "layers",
    "testing",
    "training",
    "visualization",
)

# Without `export` and `data`: a star import would import TensorFlow.
__all__ = [
    "applications",
    "checkpoints",
    "complexity",
    "conversion",
    "files",
    "layers",
    "testing",
    "training",
    "__version__",
]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


# With Keras loaded, registering the layers costs milliseconds, and
# `import keras; import keras_eca; keras.saving.load_model(...)` works.
if "keras" in sys.modules:
    importlib.import_module(f"{__name__}.layers")
    for _module in ("optimizers", "schedules", "losses"):
        importlib.import_module(f"{__name__}.training.{_module}")
