"""Input preprocessing and prediction decoding for the ImageNet models.

All architectures here come from PyTorch code (the official ECA / SA
repositories, torchvision and timm), trained on RGB images scaled to [0, 1]
and normalized with the ImageNet mean and standard deviation
(`keras.applications.imagenet_utils.preprocess_input(mode="torch")`).
"""

import numpy as np

import keras
from keras import ops

from keras_eca.layers.base import standardize_data_format

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_input(x, data_format=None):
    """Scales RGB images from [0, 255] and normalizes them per channel.

    Computes `(x / 255 - mean) / std` with the ImageNet `mean`
    `(0.485, 0.456, 0.406)` and `std` `(0.229, 0.224, 0.225)`. Unlike
    `keras.applications.imagenet_utils.preprocess_input`, it never modifies
    its input in place.

    Args:
        x: RGB images with values in [0, 255]: a NumPy array (or anything
            `np.asarray` accepts) or a tensor, with 3 channels on the
            channel axis.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.

    Returns:
        The normalized images: a float32 NumPy array for NumPy input, else
        a tensor.

    Example:

    >>> x = np.full((1, 2, 2, 3), 255.0)
    >>> y = keras_eca.applications.preprocess_input(x)
    >>> np.round(y[0, 0, 0], 4)
    array([2.2489, 2.4286, 2.64  ], dtype=float32)
    """
    data_format = standardize_data_format(data_format)
    is_tensor = ops.is_tensor(x) or keras.backend.is_keras_tensor(x)
    if not is_tensor:
        x = np.asarray(x)
    axis = -1 if data_format == "channels_last" else 1
    if len(x.shape) < 3 or x.shape[axis] != 3:
        raise ValueError(
            "`x` must hold RGB images with 3 channels on axis "
            f"{axis} (data_format={data_format!r}). "
            f"Received: x.shape={tuple(x.shape)}"
        )
    stat_shape = (3,) if axis == -1 else (3,) + (1,) * (len(x.shape) - 2)
    mean = np.reshape(np.asarray(IMAGENET_MEAN, "float32"), stat_shape)
    std = np.reshape(np.asarray(IMAGENET_STD, "float32"), stat_shape)
    if not is_tensor:
        return ((x.astype("float32") / 255.0 - mean) / std).astype("float32")
    x = ops.cast(x, "float32")
    return (x / 255.0 - mean) / std


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into `(wnid, name, score)` tuples.

    Works offline: the 1000 class names ship with the package.

    Args:
        preds: array of shape `(samples, 1000)`: probabilities or logits of
            an ImageNet classifier.
        top: int. Number of best classes to return per sample. Defaults to
            `5`.

    Returns:
        One list per sample of `top` tuples `(wnid, class_name, score)`,
        best first.

    Example:

    >>> preds = np.zeros((1, 1000), dtype="float32")
    >>> preds[0, 1] = 0.5
    >>> keras_eca.applications.decode_predictions(preds, top=1)
    [[('n01443537', 'goldfish', 0.5)]]
    """
    # The 1000-name table is imported here: `import keras_eca` stays cheap.
    from keras_eca.applications.imagenet_classes import IMAGENET_CLASSES

    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] != len(IMAGENET_CLASSES):
        raise ValueError(
            "`preds` must be a batch of ImageNet predictions of shape "
            f"(samples, {len(IMAGENET_CLASSES)}). "
            f"Received: preds.shape={preds.shape}"
        )
    if (
        not isinstance(top, int)
        or isinstance(top, bool)
        or not 1 <= top <= len(IMAGENET_CLASSES)
    ):
        raise ValueError(
            f"`top` must be an integer in [1, {len(IMAGENET_CLASSES)}]. "
            f"Received: top={top!r}"
        )
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append(
            [IMAGENET_CLASSES[i] + (float(row[i]),) for i in best]
        )
    return results
