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
