"""Figures of the attention gates and of Grad-CAM heatmaps.

Every function returns a `matplotlib.figure.Figure` on an Agg canvas,
made without pyplot: nothing opens a window and no global matplotlib state
changes. Save one with `figure.savefig(path)`; a notebook shows it as the
cell's value. matplotlib is imported on first use.
"""

import numpy as np

MAX_CLASSES = 10


def new_figure(width, height):
    """An empty Figure of `width` x `height` inches on an Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib is a dep
        raise ImportError(
            "The keras_eca.visualization plots need matplotlib: "
            "`pip install matplotlib`."
        ) from error
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _check_gates(gates, arg_name="gates"):
    if not isinstance(gates, dict) or not gates:
        raise ValueError(
            f"`{arg_name}` must be a non-empty dict from layer key to gates, "
            "as keras_eca.visualization.attention_gates returns. Received: "
            f"{arg_name}={_short(gates)}"
        )
    for key, value in gates.items():
        if not isinstance(value, dict) or "channel" not in value:
            raise ValueError(
                f"`{arg_name}[{key!r}]` must be a dict with a 'channel' "
                "array, as attention_gates returns. Received: "
                f"{arg_name}[{key!r}]={_short(value)}"
            )


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def last_block_of_each_stage(channels):
    """The key of the last block of every stage, in order.

    A stage is a run of consecutive blocks with the same channel count
    (every stage of the ResNets and every table row of MobileNetV2).

    Args:
        channels: dict from layer key to its channel count, in graph order;
            or the dict `attention_gates` returns.

    Returns:
        A list of keys.

    Example:

    >>> keras_eca.visualization.last_block_of_each_stage(
    ...     {"a1": 64, "a2": 64, "b1": 128, "b2": 128, "c1": 256}
    ... )
    ['a2', 'b2', 'c1']
    """
    counts = {
        key: value if np.isscalar(value) else np.shape(value["channel"])[-1]
        for key, value in channels.items()
    }
    keys = list(counts)
    return [
        key
        for i, key in enumerate(keys)
        if i + 1 == len(keys) or counts[keys[i + 1]] != counts[key]
    ]


def gates_by_class(gates, labels, class_names=None):
    """The mean channel gate of every attention block, per class.

    Args:
        gates: the dict `keras_eca.visualization.attention_gates` returns.
        labels: int array of shape `(N,)`, the class of every image.
        class_names: optional sequence of names indexed by class id.
            Defaults to the ids as strings.

    Returns:
        A dict from class name to `{layer key: (C,) float array}`, the
        mean `"channel"` gate over that class's images, for the classes
        present in `labels`, in class-id order.

    Raises:
        ValueError: if `labels` does not have one integer per image, or a
            label has no name in `class_names`.

    Example:

    >>> channel = np.array([[0.25, 0.5], [0.75, 1.0], [1.0, 0.0]])
    >>> gates = {"attn": {"channel": channel}}
    >>> by_class = keras_eca.visualization.gates_by_class(
    ...     gates, [0, 0, 1], ["cat", "dog"]
    ... )
    >>> by_class["cat"]["attn"].tolist(), by_class["dog"]["attn"].tolist()
    ([0.5, 0.75], [1.0, 0.0])
    """
    _check_gates(gates)
    count = len(next(iter(gates.values()))["channel"])
    labels = _check_labels(labels, count, class_names)
    names = _class_names(labels, class_names)
    return {
        names[label]: {
            key: np.asarray(value["channel"])[labels == label].mean(axis=0)
            for key, value in gates.items()
        }
        for label in np.unique(labels)
    }


def _check_labels(labels, count, class_names):
    array = np.asarray(labels)
    if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"`labels` must be {count} integer class ids, one per image. "
            f"Received: labels={_short(labels)} of shape {array.shape}"
        )
    if (array < 0).any() or (
        class_names is not None and (array >= len(class_names)).any()
    ):
        raise ValueError(
            "Every label must be a class id in [0, len(class_names)). "
            f"Received: labels with values {sorted(set(array.tolist()))} "
            f"and class_names={_short(class_names)}"
        )
    return array


def _class_names(labels, class_names):
    if class_names is None:
        return {int(label): str(label) for label in np.unique(labels)}
    return {i: str(name) for i, name in enumerate(class_names)}


def plot_channel_weights(gates_by_class, layers=None, title=None):
    """The distribution of channel weights across classes, per stage.

    The figure of the SE and ECA papers: for a few attention blocks (by
    default the last block of every stage), the mean gate of every
    channel for every class, as one line per class over the channel
    index. Where the lines part, the block's attention tells the classes
    apart; where they coincide, it is class-agnostic.

    Args:
        gates_by_class: dict from class name to `{layer key: gates}`, as
            `gates_by_class` returns; gates `(C,)`, or `(N, C)` averaged
            here. Up to 10 classes are drawn.
        layers: optional list of layer keys to draw. Defaults to the last
            block of each stage (see `last_block_of_each_stage`).
        title: optional figure title.

    Returns:
        A `matplotlib.figure.Figure`, one row of axes per layer.

    Raises:
        ValueError: for an empty `gates_by_class`, classes without the same
            layers, or an unknown key in `layers`.

    Example:

    >>> by_class = {
    ...     "cat": {"conv2_attn": np.full(8, 0.3),
    ...             "conv3_attn": np.full(16, 0.6)},
    ...     "dog": {"conv2_attn": np.full(8, 0.7),
    ...             "conv3_attn": np.full(16, 0.4)},
    ... }
    >>> figure = keras_eca.visualization.plot_channel_weights(by_class)
    >>> [axes.get_title() for axes in figure.axes]
    ['conv2_attn', 'conv3_attn']
    >>> len(figure.axes[0].lines)
    2
    """
    if not isinstance(gates_by_class, dict) or not gates_by_class:
        raise ValueError(
            "`gates_by_class` must be a non-empty dict from class name to "
            "{layer key: gates}. Received: "
            f"gates_by_class={_short(gates_by_class)}"
        )
    means = {}
    for name, per_layer in list(gates_by_class.items())[:MAX_CLASSES]:
        if not isinstance(per_layer, dict) or not per_layer:
            raise ValueError(
                f"`gates_by_class[{name!r}]` must be a non-empty dict from "
                f"layer key to gates. Received: {_short(per_layer)}"
            )
        means[name] = {
            key: np.asarray(value, "float64").reshape(
                -1, np.shape(value)[-1]
            ).mean(axis=0)
            for key, value in per_layer.items()
        }
    first = next(iter(means.values()))
    for name, per_layer in means.items():
        if list(per_layer) != list(first):
            raise ValueError(
                "Every class needs the gates of the same layers. Received: "
                f"{sorted(per_layer)} for class {name!r}, {sorted(first)} "
                "for the first"
            )
    if layers is None:
        layers = last_block_of_each_stage(
            {key: len(value) for key, value in first.items()}
        )
    unknown = [key for key in layers if key not in first]
    if unknown or not layers:
        raise ValueError(
            f"`layers` must name gates of `gates_by_class` ({list(first)}). "
            f"Received: layers={layers!r}"
        )
    figure = new_figure(8, 0.6 + 1.9 * len(layers))
    axes = figure.subplots(len(layers), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, layers):
        for name, per_layer in means.items():
            values = per_layer[key]
            ax.plot(np.arange(len(values)), values, linewidth=0.9, label=name)
        ax.set_title(key, fontsize=9)
        ax.set_xlim(0, len(first[key]) - 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("gate", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("channel index", fontsize=8)
    axes[0].legend(
        fontsize=7, ncol=min(len(means), 5), loc="lower right", framealpha=0.8
    )
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def display_image(image):
    """An image as floats in [0, 1], HWC or HW, for `imshow`: channels-first
    images are transposed and any range is stretched to [0, 1] (model
    inputs are often normalised)."""
    image = np.asarray(image, "float64")
    channels_first = image.ndim == 3 and image.shape[0] in (1, 3)
    if channels_first and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = np.nanmin(image), np.nanmax(image)
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _overlay(ax, image, heatmap, *, vmin=None, vmax=None):
    shown = display_image(image)
    height, width = shown.shape[:2]
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    ax.imshow(
        heatmap,
        cmap="jet",
        alpha=0.45,
        extent=(0, width, height, 0),
        interpolation="bilinear",
        vmin=vmin,
        vmax=vmax,
    )
    ax.set_axis_off()


def plot_spatial_gates(images, gates, layers=None, max_images=4):
    """Shuffle Attention's spatial gates over the images.

    For every image (a row) and a few SA blocks (columns; by default the
    last block of every stage), the mean spatial gate over the block's
    spatial-branch channels, upsampled over the image. Each map has its
    own colour range, given in its title.

    Args:
        images: the batch the gates were computed on, `(N, H, W, C)` (or
            channels-first); shown stretched to [0, 1].
        gates: the dict `keras_eca.visualization.attention_gates` returns
            for a model with ShuffleAttention.
        layers: optional list of SA layer keys. Defaults to the last SA
            block of each stage.
        max_images: int. At most this many images (rows). Defaults to `4`.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ValueError: if `gates` has no spatial gates (no ShuffleAttention),
            `layers` names a key without them, or `images` do not match
            the gates' batch.

    Example:

    >>> images = np.random.default_rng(0).random((2, 16, 16, 3))
    >>> spatial = np.random.default_rng(1).random((2, 4, 4, 4))
    >>> gates = {"sa": {"channel": np.full((2, 4), 0.5), "spatial": spatial}}
    >>> figure = keras_eca.visualization.plot_spatial_gates(images, gates)
    >>> len(figure.axes)  # 2 images x (image + 1 block)
    4
    """
    _check_gates(gates)
    spatial = {key: value for key, value in gates.items() if "spatial" in value}
    if not spatial:
        raise ValueError(
            "`gates` has no spatial gates: only ShuffleAttention blocks have "
            f"them. Received: gates for {list(gates)} without 'spatial'"
        )
    if layers is None:
        layers = last_block_of_each_stage(spatial)
    unknown = [key for key in layers if key not in spatial]
    if unknown or not layers:
        raise ValueError(
            f"`layers` must name ShuffleAttention gates ({list(spatial)}). "
            f"Received: layers={layers!r}"
        )
    max_images = _check_positive_int("max_images", max_images)
    images = np.asarray(images)
    count = len(spatial[layers[0]]["spatial"])
    if images.ndim not in (3, 4) or len(images) != count:
        raise ValueError(
            f"`images` must be the {count} images the gates were computed "
            f"on. Received: images of shape {images.shape}"
        )
    rows = min(count, max_images)
    figure = new_figure(1.9 * (1 + len(layers)), 2.0 * rows + 0.3)
    axes = figure.subplots(rows, 1 + len(layers), squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(
            display_image(images[row]),
            cmap="gray" if display_image(images[row]).ndim == 2 else None,
        )
        axes[row, 0].set_axis_off()
        if row == 0:
            axes[row, 0].set_title("image", fontsize=8)
        for col, key in enumerate(layers, start=1):
            heatmap = np.asarray(spatial[key]["spatial"][row], "float64")
            heatmap = heatmap.reshape(*heatmap.shape[:2], -1).mean(axis=-1)
            _overlay(axes[row, col], images[row], heatmap)
            axes[row, col].set_title(
                f"{key}\n{heatmap.shape[0]}x{heatmap.shape[1]}, "
                f"{heatmap.min():.2f}-{heatmap.max():.2f}",
                fontsize=7,
            )
    return figure


def _check_positive_int(arg_name, value):
    integer = isinstance(value, (int, np.integer)) and not isinstance(
        value, bool
    )
    if not integer or value < 1:
        raise ValueError(
            f"`{arg_name}` must be a positive integer. "
            f"Received: {arg_name}={value!r}"
        )
    return int(value)


def plot_grad_cam(images, heatmaps, titles=None, max_images=8):
    """Grad-CAM heatmaps over their images, one panel per image.

    Args:
        images: `(N, H, W, C)` (or channels-first) images; shown stretched
            to [0, 1].
        heatmaps: `(N, h, w)` maps in [0, 1], as
            `keras_eca.visualization.grad_cam` returns; upsampled over the
            image.
        titles: optional list of `N` panel titles (e.g. class names).
        max_images: int. At most this many panels. Defaults to `8`.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ValueError: if `heatmaps` is not `(N, h, w)` for the `N` images, or
            `titles` has the wrong length.

    Example:

    >>> images = np.random.default_rng(0).random((2, 16, 16, 3))
    >>> heatmaps = np.random.default_rng(1).random((2, 4, 4))
    >>> figure = keras_eca.visualization.plot_grad_cam(
    ...     images, heatmaps, titles=["cat", "dog"]
    ... )
    >>> [axes.get_title() for axes in figure.axes]
    ['cat', 'dog']
    """
    images, heatmaps = np.asarray(images), np.asarray(heatmaps)
    if (
        heatmaps.ndim != 3
        or images.ndim not in (3, 4)
        or len(images) != len(heatmaps)
    ):
        raise ValueError(
            "`heatmaps` must be (N, h, w), one map per image of `images`. "
            f"Received: heatmaps of shape {heatmaps.shape}, images of shape "
            f"{images.shape}"
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(
            f"`titles` must have one title per image ({len(images)}). "
            f"Received: titles={_short(titles)}"
        )
    count = min(len(images), _check_positive_int("max_images", max_images))
    figure = new_figure(2.0 * count, 2.3)
    axes = figure.subplots(1, count, squeeze=False)[0]
    for i, ax in enumerate(axes):
        _overlay(ax, images[i], heatmaps[i], vmin=0.0, vmax=1.0)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    return figure
