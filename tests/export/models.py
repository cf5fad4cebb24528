"""The models the export tests use: one of every family, at 64x64."""

import functools

import numpy as np

from keras_eca import applications

# One per family: torchvision ResNet + ECA / SE (BasicBlock), SA-ResNet
# (Bottleneck), ECA-MobileNetV2, a timm ResNet-T with avg-pool shortcuts.
FAMILIES = [
    "eca_resnet18",
    "se_resnet18",
    "sa_resnet50",
    "eca_mobilenet_v2",
    "ecaresnet26t",
]
SIZE = 64


@functools.lru_cache(maxsize=None)
def model(name, size=SIZE):
    """A 10-class model returning logits, built once per test session."""
    return applications.build_model(
        name,
        input_shape=(size, size, 3),
        classes=10,
        classifier_activation=None,
    )


def images(batch=2, size=SIZE, seed=0):
    """Fixed inputs in the range `preprocess_input` produces."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, size, size, 3)).astype("float32")
