"""Looking inside a model: attention gates, Grad-CAM and their figures.

`attention_gates` reads the gate of every attention block (ECA and SE
family channel gates, Shuffle Attention's channel and spatial gates) from
one forward pass through the model's own graph, nested backbones and the
applications' folded layers included; it uses `keras.ops` only and runs on
every backend. The plots return matplotlib `Figure`s on an Agg canvas made
without pyplot (nothing opens a window; matplotlib is imported on first
use). `grad_cam` takes its gradients with `tf.GradientTape` and needs the
TensorFlow backend; its module (`tf_grad_cam`) is imported on first use.

Example:

>>> model = keras_eca.applications.build_model(
...     "eca_resnet18", input_shape=(32, 32, 3), classes=3
... )
>>> images = np.random.default_rng(0).normal(size=(6, 32, 32, 3))
>>> gates = keras_eca.visualization.attention_gates(model, images)
>>> by_class = keras_eca.visualization.gates_by_class(
...     gates, [0, 1, 2, 0, 1, 2], ["cat", "dog", "owl"]
... )
>>> figure = keras_eca.visualization.plot_channel_weights(by_class)
>>> [axes.get_title() for axes in figure.axes][:2]
['conv2_block2_attn', 'conv3_block2_attn']
"""

import importlib

from keras_eca.visualization.figure import write_attention_figure
from keras_eca.visualization.gates import attention_gates
from keras_eca.visualization.gates import attention_layers
from keras_eca.visualization.gates import attention_model
from keras_eca.visualization.plots import gates_by_class
from keras_eca.visualization.plots import last_block_of_each_stage
from keras_eca.visualization.plots import plot_channel_weights
from keras_eca.visualization.plots import plot_grad_cam
from keras_eca.visualization.plots import plot_spatial_gates

# TensorFlow-only, imported on first use.
_TF_NAMES = ("grad_cam",)

__all__ = [
    "attention_gates",
    "attention_layers",
    "attention_model",
    "gates_by_class",
    "grad_cam",
    "last_block_of_each_stage",
    "plot_channel_weights",
    "plot_grad_cam",
    "plot_spatial_gates",
    "write_attention_figure",
]


def __getattr__(name):
    if name in _TF_NAMES:
        module = importlib.import_module(f"{__name__}.tf_grad_cam")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_TF_NAMES))
