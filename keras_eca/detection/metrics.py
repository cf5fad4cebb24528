"""COCO detection metrics, computed by pycocotools' `COCOeval`.

`CocoEvaluator` collects ground truth and detections batch by batch (in
the original image's pixels) and hands them to pycocotools, which does all
the matching, crowd handling and averaging: the numbers are the official
COCO ones, not a re-implementation.
"""

import contextlib
import io

import numpy as np

# COCOeval.stats, in its order.
METRIC_NAMES = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)


def _import_pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as error:
        raise ImportError(
            "COCO metrics need pycocotools: pip install 'keras_eca[detection]' "
            f"(the import failed: {error})"
        ) from error
    return COCO, COCOeval


class CocoEvaluator:
    """Accumulates boxes and returns COCO's AP / AR summary.

    Boxes are `xyxy` pixels of the images the detector saw; `scale`
    (resized / original, as `evaluation_dataset` gives it) maps them back
    to the original image, where COCO's small / medium / large area ranges
    apply.

    Example:

    >>> evaluator = keras_eca.detection.CocoEvaluator(num_classes=2)
    >>> boxes = np.array([[[10, 10, 50, 50]]], "float32")
    >>> evaluator.add(
    ...     image_ids=[1], gt_boxes=boxes, gt_classes=np.array([[1.0]]),
    ...     boxes=boxes, scores=np.array([[0.9]]), classes=np.array([[1.0]]),
    ...     num_detections=[1])
    >>> round(evaluator.result()["AP50"], 6)  # pycocotools' float sums
    1.0
    """

    def __init__(self, num_classes):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                "`num_classes` must be a positive int. "
                f"Received: num_classes={num_classes!r}"
            )
        self.num_classes = num_classes
        self._images = []
        self._annotations = []
        self._detections = []

    def add(
        self, *, image_ids, gt_boxes, gt_classes, boxes, scores, classes,
        num_detections, is_crowd=None, scale=None,
    ):
        """One batch: ground truth padded with class -1, and decoded
        detections (`num_detections` valid rows of each image)."""
        image_ids = np.asarray(image_ids).reshape(-1)
        gt_boxes = np.asarray(gt_boxes, "float64")
        gt_classes = np.asarray(gt_classes)
        boxes = np.asarray(boxes, "float64")
        scores = np.asarray(scores, "float64")
        classes = np.asarray(classes)
        num_detections = np.asarray(num_detections).reshape(-1)
        count = len(image_ids)
        crowd = (
            np.zeros(gt_classes.shape, bool) if is_crowd is None
            else np.asarray(is_crowd, bool)
        )
        scale = np.ones(count) if scale is None else np.asarray(scale, "float64")
        for i in range(count):
            image_id = int(image_ids[i])
            self._images.append({"id": image_id})
            valid = gt_classes[i] >= 0
            for box, cls, crowded in zip(
                gt_boxes[i][valid] / scale[i], gt_classes[i][valid], crowd[i][valid]
            ):
                xywh = _xywh(box)
                self._annotations.append({
                    "id": len(self._annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls),
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": int(crowded),
                })
            n = int(num_detections[i])
            for box, score, cls in zip(
                boxes[i][:n] / scale[i], scores[i][:n], classes[i][:n]
            ):
                if cls < 0:
                    continue
                self._detections.append(
                    [image_id, *_xywh(box), float(score), int(cls)]
                )

    def result(self):
        """A dict of `METRIC_NAMES` -> float in 0..1 (COCO gives -1 where
        no ground truth falls in an area range)."""
        if not self._images:
            raise ValueError("CocoEvaluator.result() needs at least one add().")
        COCO, COCOeval = _import_pycocotools()
        truth = COCO()
        truth.dataset = {
            "images": self._images,
            "annotations": self._annotations,
            "categories": [{"id": c} for c in range(self.num_classes)],
        }
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):
            truth.createIndex()
            if not self._detections:
                return {name: 0.0 for name in METRIC_NAMES}
            found = truth.loadRes(np.asarray(self._detections, "float64"))
            evaluation = COCOeval(truth, found, iouType="bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return {
            name: float(value) for name, value in zip(METRIC_NAMES, evaluation.stats)
        }


def _xywh(box):
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)]
