"""The one attention figure a fine-tuning run writes to its run folder."""

import pathlib

from keras_eca import files
from keras_eca.layers import ShuffleAttention
from keras_eca.visualization import gates as gates_lib
from keras_eca.visualization import plots


def save_figure_atomically(figure, path, dpi=110):
    """Saves `figure` as a PNG at `path` through a temporary sibling
    renamed over it (`keras_eca.files.staged_path`): a reader sees the old
    file or the new one, never part of one, and a failed save leaves
    nothing behind."""
    with files.staged_path(path) as staged:
        with open(staged, "wb") as file:
            figure.savefig(file, format="png", dpi=dpi)
    return str(path)


def write_attention_figure(
    model, images, labels, class_names, path, max_images=4
):
    """Draws what `model` attends to on `images` and writes it as a PNG.

    - Models with channel gates (ECA, SE family): the distribution of
      channel weights across classes, for the last block of every stage
      (`plot_channel_weights` of `gates_by_class`), over all `images`.
    - Models with ShuffleAttention: its spatial gates over the first
      `max_images` images (`plot_spatial_gates`).
    - Models without attention: Grad-CAM of every image's true class
      (`grad_cam`, TensorFlow backend), over the first `max_images`.

    The file is written atomically (a temporary file in the same folder,
    then `os.replace`).

    Args:
        model: a functional `keras.Model`: a registry model (with or
            without `include_preprocessing`) or a fine-tuning model with the
            backbone nested as a sub-model.
        images: the batch to look at, `(N, H, W, C)`, as the model takes it.
        labels: `N` integer class ids of the images.
        class_names: the names of the classes, indexed by class id.
        path: str or `os.PathLike` ending in `.png`.
        max_images: int. Images drawn by the spatial-gate and Grad-CAM
            figures. Defaults to `4`.

    Returns:
        A one-line description of what the figure shows.

    Raises:
        ValueError: if `path` does not end in `.png`, `labels` are not one
            class id of `class_names` per image, or `images` do not fit the
            model; Grad-CAM's errors for a model without attention.

    Example:

    >>> import pathlib, tempfile
    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(32, 32, 3), classes=2
    ... )
    >>> images = np.random.default_rng(0).normal(size=(4, 32, 32, 3))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "attention.png"
    >>> description = keras_eca.visualization.write_attention_figure(
    ...     model, images, [0, 1, 0, 1], ["cat", "dog"], path
    ... )
    >>> print(description.replace(": ", ":\\n"))
    Channel weights (mean gate per channel, 2 classes, 4 images) of 4 ECA blocks:
    conv2_block2_attn, conv3_block2_attn, conv4_block2_attn, conv5_block2_attn
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(
            "`path` must name a .png file. "
            f"Received: path={str(path)!r}"
        )
    if (
        class_names is None
        or isinstance(class_names, str)
        or not len(class_names)
    ):
        raise ValueError(
            "`class_names` must be a non-empty sequence of names. "
            f"Received: class_names={class_names!r}"
        )
    max_images = plots._check_positive_int("max_images", max_images)
    images = gates_lib.check_images(model, images)
    labels = plots._check_labels(labels, len(images), class_names)
    layers = gates_lib.attention_layers(model)
    if any(isinstance(layer, ShuffleAttention) for layer in layers.values()):
        shown = images[:max_images]
        gates = gates_lib.attention_gates(model, shown)
        keys = plots.last_block_of_each_stage(
            {k: v for k, v in gates.items() if "spatial" in v}
        )
        figure = plots.plot_spatial_gates(
            shown, gates, layers=keys, max_images=max_images
        )
        description = (
            f"SA spatial gates (mean over the spatial-branch channels) of "
            f"{len(keys)} blocks over {len(shown)} images: {', '.join(keys)}"
        )
    elif layers:
        gates = gates_lib.attention_gates(model, images)
        by_class = plots.gates_by_class(gates, labels, class_names)
        keys = plots.last_block_of_each_stage(gates)
        figure = plots.plot_channel_weights(
            by_class,
            layers=keys,
            title=f"{model.name}: channel weights per class",
        )
        kinds = sorted({_kind(layers[k]) for k in keys})
        classes = f"{len(by_class)} classes"
        if len(by_class) > plots.MAX_CLASSES:
            classes = f"first {plots.MAX_CLASSES} of {classes}"
        description = (
            f"Channel weights (mean gate per channel, {classes}, "
            f"{len(images)} images) of {len(keys)} "
            f"{'/'.join(kinds)} blocks: {', '.join(keys)}"
        )
    else:
        from keras_eca.visualization import tf_grad_cam as grad_cam_lib

        shown, chosen = images[:max_images], labels[:max_images]
        path_layers = grad_cam_lib.feature_layer_path(model)
        heatmaps = grad_cam_lib.grad_cam(model, shown, class_index=chosen)
        names = [str(class_names[i]) for i in chosen]
        figure = plots.plot_grad_cam(shown, heatmaps, titles=names)
        layer = "/".join(layer.name for layer in path_layers)
        description = (
            f"Grad-CAM of the true class at {layer} over {len(shown)} "
            "images (the model has no attention layer)"
        )
    save_figure_atomically(figure, path)
    return description


def _kind(layer):
    name = type(layer).__name__
    if "EfficientChannelAttention" in name:
        return "ECA"
    if "SqueezeExcitation" in name:
        return "SE"
    return name
