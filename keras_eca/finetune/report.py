"""The run's metrics (from the confusion matrix, NumPy only) and figures
(`curves.png`, `confusion_matrix.png`), drawn with matplotlib's Agg
canvas: no display, no pyplot state."""

import numpy as np

from keras_eca import files


def confusion_matrix(labels, predictions, num_classes):
    """`(K, K)` int64 counts: row = true class, column = predicted.

    Example:

    >>> keras_eca.finetune.confusion_matrix([0, 0, 1], [0, 1, 1], 2)
    array([[1, 1],
           [0, 1]])
    """
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    matrix = np.zeros([num_classes, num_classes], np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, np.float64)
    denominator = np.asarray(denominator, np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def classification_metrics(matrix, class_names):
    """Accuracy and per-class precision, recall, F1 and support of a
    confusion matrix; an undefined ratio (no predictions or no images of
    a class) is 0, as scikit-learn's `zero_division=0`.

    Returns:
        A dict: `accuracy`, `correct`, `total`, `per_class` (`{name:
        {precision, recall, f1, support}}`), `macro_avg` and
        `weighted_avg` (`{precision, recall, f1}`).
    """
    matrix = np.asarray(matrix, np.int64)
    true_positive = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * true_positive, predicted + support)
    total = int(matrix.sum())
    weights = _ratio(support, total) if total else np.zeros_like(precision)
    per_class = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "correct": int(true_positive.sum()),
        "total": total,
        "per_class": per_class,
        "macro_avg": {
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
        },
        "weighted_avg": {
            "precision": float((precision * weights).sum()),
            "recall": float((recall * weights).sum()),
            "f1": float((f1 * weights).sum()),
        },
    }


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure, path):
    with files.staged_path(path) as staged:
        figure.savefig(staged, format="png")


def write_curves(history, phases, path):
    """Loss and accuracy per epoch, training and validation, with the
    phases shaded and their boundary marked.

    Args:
        history: a list of dicts per epoch with `epoch` (1-based),
            `loss`, `accuracy`, `val_loss`, `val_accuracy`.
        phases: a list of dicts with `name`, `first_epoch`, `last_epoch`.
        path: the `.png` to write.

    Returns:
        The matplotlib `Figure`.
    """
    figure = _figure(10, 4)
    axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for ax, metric, title in (
        (axes[0], "loss", "Loss"),
        (axes[1], "accuracy", "Accuracy"),
    ):
        for key, label, style in (
            (metric, "training", "o-"),
            (f"val_{metric}", "validation", "s-"),
        ):
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=label, markersize=4)
        for index, phase in enumerate(phases):
            if index:
                boundary = phase["first_epoch"] - 0.5
                ax.axvline(boundary, color="0.4", linestyle="--", linewidth=1)
            ax.axvspan(
                phase["first_epoch"] - 0.5,
                phase["last_epoch"] + 0.5,
                color=f"C{index + 2}",
                alpha=0.08,
                label=f"phase {index + 1}: {phase['name']}",
            )
        if metric == "loss" and all(
            (row.get(k) or 0) > 0 for row in history for k in ("loss", "val_loss")
        ):
            ax.set_yscale("log")  # a first epoch's validation loss can be 100x
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if epochs:
            ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(figure, path)
    return figure


def write_confusion_matrix(matrix, class_names, path):
    """The confusion matrix (rows: true class, columns: predicted), with
    counts written in the cells for up to 30 classes; returns the
    `Figure`."""
    matrix = np.asarray(matrix)
    count = len(class_names)
    side = min(max(4.0, 0.45 * count + 2.0), 20.0)
    figure = _figure(side + 1.0, side)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = np.arange(count)
    labels = [str(name) for name in class_names]
    if count <= 60:
        ax.set_xticks(ticks, labels, rotation=90 if count > 10 else 0)
        ax.set_yticks(ticks, labels)
    if count <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), value in np.ndenumerate(matrix):
            if value:
                ax.text(
                    column, row, str(int(value)), ha="center", va="center",
                    fontsize=8, color="white" if value > threshold else "black",
                )
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else 0.0
    ax.set_title(f"Validation confusion matrix (accuracy {accuracy:.2%})")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    _save(figure, path)
    return figure
