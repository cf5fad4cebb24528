"""report.json's metrics, computed with NumPy from the confusion matrix,
against scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as sk

from keras_eca import finetune


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    num_classes = 6
    labels = rng.integers(0, num_classes - 1, 200)  # class 5: no images
    predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 6, 200))
    predicted[predicted == 3] = 2  # class 3: never predicted
    names = [f"c{i}" for i in range(num_classes)]
    matrix = finetune.confusion_matrix(labels, predicted, num_classes)
    np.testing.assert_array_equal(
        matrix, sk.confusion_matrix(labels, predicted, labels=range(num_classes))
    )
    result = finetune.classification_metrics(matrix, names)
    assert result["accuracy"] == sk.accuracy_score(labels, predicted)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=range(num_classes), zero_division=0
    )
    for i, name in enumerate(names):
        row = result["per_class"][name]
        assert row["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert row["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert row["support"] == support[i]
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(
            labels, predicted, labels=range(num_classes), average=average,
            zero_division=0,
        )
        got = result[f"{average}_avg"]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(
            (p, r, f), abs=1e-12
        )


def test_undefined_ratios_are_zero():
    matrix = finetune.confusion_matrix([0, 0], [0, 0], 2)
    result = finetune.classification_metrics(matrix, ["a", "b"])
    assert result["per_class"]["b"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0
    }
    assert result["accuracy"] == 1.0 and result["total"] == 2


def test_curves_mark_the_phases(tmp_path):
    from keras_eca.finetune import report

    history = [
        dict(epoch=i + 1, loss=2 / (i + 1), accuracy=0.5 + 0.05 * i,
             val_loss=3 / (i + 1), val_accuracy=0.4 + 0.06 * i)
        for i in range(5)
    ]
    phases = [
        dict(name="head", first_epoch=1, last_epoch=2),
        dict(name="backbone", first_epoch=3, last_epoch=5),
    ]
    figure = report.write_curves(history, phases, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    loss, accuracy = figure.axes
    assert (loss.get_title(), accuracy.get_title()) == ("Loss", "Accuracy")
    for ax in (loss, accuracy):
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["training", "validation", "phase 1: head", "phase 2: backbone"]
        boundaries = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
        assert boundaries == [2.5]
        assert list(ax.lines[0].get_ydata()) == [r[ax.get_title().lower()] for r in history]
    assert loss.get_yscale() == "log"


def test_confusion_matrix_figure_counts(tmp_path):
    from keras_eca.finetune import report

    matrix = finetune.confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    figure = report.write_confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "cm.png")
    ax = figure.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1", "1", "1", "1"]
    assert "accuracy 60.00%" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
