"""Grad-CAM (Selvaraju et al., 2017) for any functional model.

TensorFlow only: the gradients come from `tf.GradientTape`, so the Keras
backend must be TensorFlow. The attention gates (`gates.py`) need no
TensorFlow.
"""

import numpy as np
import tensorflow as tf

import keras

from keras_eca.visualization.gates import call_tensors
from keras_eca.visualization.gates import check_images


def _check_backend():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            "Grad-CAM takes its gradients with tf.GradientTape and needs the "
            "TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend={backend!r}"
        )


def _rank(tensor):
    return len(tensor.shape)


def _is_feature_map(tensor):
    """A 4D map with some spatial extent (not a 1x1 pooled map)."""
    if isinstance(tensor, (list, tuple)) or _rank(tensor) != 4:
        return False
    if keras.config.image_data_format() == "channels_last":
        spatial = tensor.shape[1:3]
    else:
        spatial = tensor.shape[2:4]
    return not all(d == 1 for d in spatial)


def _output_of(model, layer):
    """`layer`'s output tensor in `model`'s graph (a nested model's own
    `output` is its internal tensor, not the one of its call)."""
    if isinstance(layer, keras.Model):
        return call_tensors(model, layer)[1]
    return layer.output


def feature_layer_path(model):
    """The path (`[sub-model, ..., layer]`) of the last feature map."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        output = _output_of(model, layer)
        if isinstance(layer, keras.Model) and not _is_feature_map(output):
            inner = feature_layer_path(layer)
            if inner:
                return [layer] + inner
        elif _is_feature_map(output):
            return [layer]
    return []


def _feature_map_names(model, prefix=""):
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            names += _feature_map_names(layer, f"{prefix}{layer.name}/")
        if _is_feature_map(_output_of(model, layer)):
            names.append(prefix + layer.name)
    return names


def _path_of(model, layer_name):
    """`layer_name` (`"conv5_block2_out"` or `"backbone/conv5_block2_out"`)
    resolved to a path of layers, nested models searched."""
    names = _feature_map_names(model)
    matches = [
        n for n in names if n == layer_name or n.endswith("/" + layer_name)
    ]
    if not matches:
        raise ValueError(
            f"Model {model.name!r} has no layer {layer_name!r} with a 4D "
            "feature map output. Layers that have one (last 5): "
            f"{names[-5:]}. Received: layer_name={layer_name!r}"
        )
    if len(matches) > 1 and layer_name not in matches:
        raise ValueError(
            f"{layer_name!r} names several layers: {matches}; pass the full "
            f"path. Received: layer_name={layer_name!r}"
        )
    full = layer_name if layer_name in matches else matches[0]
    path, current = [], model
    for part in full.split("/"):
        current = current.get_layer(part)
        path.append(current)
    return path


def _single_output(model):
    outputs = keras.tree.flatten(model.outputs)
    if len(outputs) != 1 or _rank(outputs[0]) != 2:
        raise ValueError(
            "Grad-CAM needs a model with one (batch, classes) output of "
            f"class scores. Received: model={model.name!r} with outputs "
            f"{[tuple(t.shape) for t in outputs]} (build it with "
            "include_top=True, or add a classifier)"
        )
    return outputs[0]


def _feature_and_scores(model, path, output):
    """A function `x -> (feature map, output)` for the layer at `path` in
    `model`, made of models over the existing graph (no layer rebuilt);
    `output` is `model`'s single output tensor."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    head = path[0]
    if len(path) == 1:
        both = keras.Model(inputs, [_output_of(model, head), output])
        return lambda x: both(x, training=False)
    # Inside a nested model: the outer graph up to its call, the nested
    # model's own feature map and output, then the outer graph after it.
    inner_outputs = keras.tree.flatten(head.outputs)
    if len(inner_outputs) != 1:
        raise ValueError(
            f"Grad-CAM through nested model {head.name!r} needs it to have "
            f"one output. Received: {len(inner_outputs)} outputs"
        )
    fed, produced = call_tensors(model, head)
    prefix = None if fed is inputs else keras.Model(inputs, fed)
    inner = _feature_and_scores(head, path[1:], inner_outputs[0])
    try:
        suffix = keras.Model(produced, output)
    except ValueError as error:
        raise ValueError(
            f"Grad-CAM inside {head.name!r} needs the rest of model "
            f"{model.name!r} to depend on {head.name!r}'s output only; "
            "pass a layer_name outside it. "
            f"Received: layer_name={'/'.join(l.name for l in path)!r}"
        ) from error

    def run(x):
        feature, out = inner(x if prefix is None else prefix(x, training=False))
        return feature, suffix(out, training=False)

    return run


def _class_indices(class_index, scores):
    count, classes = scores.shape
    if class_index is None:
        return np.argmax(scores, axis=-1)
    indices = np.asarray(class_index)
    if indices.ndim == 0:
        indices = np.full(count, indices)
    valid = (
        indices.shape == (count,)
        and np.issubdtype(indices.dtype, np.integer)
        and ((indices >= 0) & (indices < classes)).all()
    )
    if not valid:
        raise ValueError(
            f"`class_index` must be None, an int or {count} ints in "
            f"[0, {classes}). Received: class_index={class_index!r}"
        )
    return indices


def grad_cam(model, images, class_index=None, layer_name=None):
    """Grad-CAM heatmaps of a class for every image (TensorFlow backend).

    The gradient of the class score with respect to a feature map `A`
    (`tf.GradientTape`), averaged over the positions, weighs `A`'s
    channels: `relu(sum_k mean_ij(dy/dA_kij) A_k)`, divided by its
    maximum per image. The score is the model's output for the class (the
    softmax probability of a registry model: the same maps, after the
    division, as its logarithm). BatchNorm runs in inference mode, and a
    frozen (non-trainable) backbone works too.

    Args:
        model: a functional `keras.Model` with one `(batch, classes)`
            output: any registry model with `include_top=True`, or a
            model holding a backbone as a nested functional sub-model.
        images: a batch the model takes, e.g. `(N, H, W, 3)`.
        class_index: `None` (each image's top class), an int, or one int
            per image. Defaults to `None`.
        layer_name: optional name of the layer whose output is the feature
            map, e.g. `"conv4_block2_out"`; in a nested model its plain
            name or its path (`"backbone/conv5_block2_out"`). Defaults to
            the last layer with a 4D, not 1x1, output (the last stage's
            output of a registry model).

    Returns:
        A float32 NumPy array `(N, h, w)` in [0, 1] at the feature map's
        resolution (see `plot_grad_cam` to draw it over the images).

    Raises:
        ValueError: for a backend other than TensorFlow, a model without a
            single 2D output, an unknown `layer_name`, a `class_index` out
            of range, or images that do not fit the model.

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(64, 64, 3), classes=10
    ... )
    >>> images = np.random.default_rng(0).normal(size=(2, 64, 64, 3))
    >>> heatmaps = keras_eca.visualization.grad_cam(model, images)
    >>> heatmaps.shape, bool(heatmaps.min() >= 0), bool(heatmaps.max() <= 1)
    ((2, 2, 2), True, True)
    """
    _check_backend()
    if not isinstance(model, keras.Model) or not model.inputs:
        raise ValueError(
            "`model` must be a functional keras.Model. "
            f"Received: model={model!r}"
        )
    output = _single_output(model)
    if layer_name is None:
        path = feature_layer_path(model)
        if not path:
            raise ValueError(
                f"Model {model.name!r} has no layer with a 4D feature map "
                "output for Grad-CAM. Received: layer_name=None"
            )
    else:
        path = _path_of(model, layer_name)
    run = _feature_and_scores(model, path, output)
    x = tf.convert_to_tensor(check_images(model, images))
    with tf.GradientTape() as tape:
        # Watch the input: a frozen backbone has no watched variables.
        tape.watch(x)
        feature, scores = run(x)
        indices = _class_indices(
            class_index, keras.ops.convert_to_numpy(scores)
        )
        chosen = tf.gather(scores, indices, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, feature)
    channels_last = keras.config.image_data_format() == "channels_last"
    axes = (1, 2) if channels_last else (2, 3)
    weights = tf.reduce_mean(grads, axis=axes, keepdims=True)
    cam = tf.reduce_sum(weights * feature, axis=-1 if channels_last else 1)
    cam = tf.nn.relu(tf.cast(cam, "float32")).numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0).astype(
        "float32"
    )
