"""Detected boxes drawn on images, for `keras-eca detect` and the
notebooks; matplotlib figures on an Agg canvas, without pyplot."""

import numpy as np

from keras_eca.visualization.figure import save_figure_atomically


def draw_boxes(axes, image, boxes, classes, scores=None, class_names=None):
    """Draws `xyxy` pixel boxes with their class (and score) on `axes`.

    Rows with a negative class are padding and are skipped.
    """
    import matplotlib
    from matplotlib.patches import Rectangle

    axes.imshow(np.clip(np.asarray(image), 0, 255).astype("uint8"))
    axes.set_axis_off()
    colours = matplotlib.colormaps["tab10"]
    for index, (box, cls) in enumerate(zip(np.asarray(boxes), np.asarray(classes))):
        if cls < 0:
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        colour = colours(int(cls) % 10)
        axes.add_patch(Rectangle(
            (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=2
        ))
        label = class_names[int(cls)] if class_names is not None else str(int(cls))
        if scores is not None:
            label += f" {float(scores[index]):.2f}"
        axes.text(x0, y0, label, fontsize=8, color="white", va="bottom",
                  bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0})


def write_detection_figure(image, boxes, classes, path, *, scores=None,
                           class_names=None, title=None):
    """One image with its boxes, saved atomically to `path` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = np.asarray(image).shape[:2]
    figure = Figure(figsize=(max(3.0, width / 100), max(3.0, height / 100)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    draw_boxes(axes, image, boxes, classes, scores, class_names)
    if title:
        axes.set_title(title, fontsize=9)
    return save_figure_atomically(figure, path)
