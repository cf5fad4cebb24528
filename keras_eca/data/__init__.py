"""Image classification input pipelines (TensorFlow `tf.data`).

`resolve_source` turns a TFDS name, a folder of class subfolders or
in-memory arrays into an `ImageSource`; `training_dataset` yields its
deterministic, augmented, sharded training batches (torchvision's
RandomResizedCrop and flip, stateless) and `evaluation_dataset` the
resized, centre-cropped evaluation batches (PIL's resize, closely).

The submodules load on first attribute access: walking the package does
not import TensorFlow.
"""

import importlib

_EXPORTS = {
    "IMAGE_EXTENSIONS": "sources",
    "ImageSource": "sources",
    "resolve_source": "sources",
    "evaluation_dataset": "pipeline",
    "steps_per_epoch": "pipeline",
    "training_dataset": "pipeline",
    "decode_image": "transforms",
    "evaluation_transform": "transforms",
    "random_resized_crop_box": "transforms",
    "training_transform": "transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
