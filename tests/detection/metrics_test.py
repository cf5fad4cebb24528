"""COCO metrics through pycocotools: known cases, crowd regions, scaling
back to the original image, and a detector evaluated end to end."""

import numpy as np
import pytest

import keras

from keras_eca.detection import detectors
from keras_eca.detection import data
from keras_eca.detection.metrics import METRIC_NAMES
from keras_eca.detection.metrics import CocoEvaluator

pytestmark = pytest.mark.tensorflow_only


def _one(evaluator, truth, found, scores=None, truth_classes=None, crowd=None,
         found_classes=None, scale=1.0, image_id=1):
    truth = np.asarray(truth, "float32")[None]
    found = np.asarray(found, "float32").reshape(1, -1, 4)
    n = found.shape[1]
    evaluator.add(
        image_ids=[image_id], gt_boxes=truth,
        gt_classes=np.asarray(truth_classes if truth_classes is not None
                              else [0] * truth.shape[1], "float32")[None],
        is_crowd=None if crowd is None else np.asarray(crowd)[None],
        boxes=found, scores=np.asarray(scores or [0.9] * n, "float32")[None],
        classes=np.asarray(found_classes if found_classes is not None
                           else [0] * n, "float32")[None],
        num_detections=[n], scale=[scale],
    )


def test_perfect_detections_score_one_and_misses_zero():
    box = [[10, 10, 60, 60]]
    perfect = CocoEvaluator(1)
    _one(perfect, box, box)
    result = perfect.result()
    assert set(result) == set(METRIC_NAMES)
    assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)
    missed = CocoEvaluator(1)
    _one(missed, box, [[100, 100, 120, 120]])
    assert missed.result()["AP50"] == 0.0
    empty = CocoEvaluator(1)
    empty.add(image_ids=[1], gt_boxes=np.array([box], "float32"),
              gt_classes=np.array([[0]], "float32"), boxes=np.zeros((1, 0, 4)),
              scores=np.zeros((1, 0)), classes=np.zeros((1, 0)), num_detections=[0])
    assert empty.result()["AP"] == 0.0


def test_iou_between_the_thresholds_counts_for_ap50_only():
    # IoU of [0,0,100,100] and [0,0,100,62] is 0.62: a hit at 0.5, a miss
    # at 0.75; COCO's AP averages 0.5:0.05:0.95, so 3 of 10 thresholds hit.
    evaluator = CocoEvaluator(1)
    _one(evaluator, [[0, 0, 100, 100]], [[0, 0, 100, 62]])
    result = evaluator.result()
    assert result["AP50"] == pytest.approx(1.0)
    assert result["AP75"] == 0.0
    assert result["AP"] == pytest.approx(0.3, abs=1e-6)
    assert result["AP_large"] == pytest.approx(0.3, abs=1e-6)  # 100x100 px > 96^2


def test_a_detection_on_a_crowd_region_is_ignored_not_false():
    evaluator = CocoEvaluator(1)
    _one(evaluator, [[0, 0, 40, 40], [60, 60, 120, 120]],
         [[0, 0, 40, 40], [62, 62, 118, 118]], scores=[0.5, 0.9],
         crowd=[False, True])
    # Without the crowd flag, the high-scoring detection would match a
    # second object; with it, AP is that of one object found first.
    assert evaluator.result()["AP"] == pytest.approx(1.0)


def test_boxes_are_scaled_back_to_the_original_image():
    # 30x30 px in a 2x resized image is 15x15 px originally: "small".
    evaluator = CocoEvaluator(2)
    _one(evaluator, [[0, 0, 30, 30]], [[0, 0, 30, 30]], truth_classes=[1],
         found_classes=[1], scale=2.0)
    result = evaluator.result()
    assert result["AP_small"] == pytest.approx(1.0)
    assert result["AP_medium"] == -1.0  # no object of that size


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        CocoEvaluator(0)
    with pytest.raises(ValueError, match="at least one add"):
        CocoEvaluator(1).result()
    with pytest.raises(ValueError, match="Received: detector='ssd'"):
        detectors.build_detector("ssd", "eca_resnet18", 3)


def test_evaluate_detector_runs_pycocotools_on_a_source():
    keras.utils.set_random_seed(0)
    model = detectors.build_detector("retinanet", "eca_resnet18", 3, image_size=128)
    source = data.resolve_detection_source("synthetic", "validation", num_examples=6)
    seen = []
    result = detectors.evaluate_detector(
        model, source, batch_size=4, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1, 2), (2, 2)]
    assert set(result) == set(METRIC_NAMES)
    assert all(-1.0 <= value <= 1.0 for value in result.values())
    # The evaluation threshold is temporary.
    assert model.prediction_decoder.confidence_threshold == 0.5
