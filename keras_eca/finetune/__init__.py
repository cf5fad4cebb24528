"""Fine-tuning a registry model on your images (TensorFlow).

`finetune()` (the command `keras-eca finetune`) trains a new classifier on
a pretrained backbone, then the backbone with its BatchNorm statistics
kept, and writes a run folder: `model.keras`, a SavedModel with a bytes
and an images serving signature, `labels.txt`, `report.json` (validation
accuracy, per-class precision / recall / F1, confusion matrix, settings,
versions), `log.csv`, `curves.png`, `confusion_matrix.png` and an
attention figure. `predict()` (`keras-eca predict`) classifies images with
a run's SavedModel. Without a dataset it trains on 1,797 handwritten
digits embedded in the package (`load_digits`), offline.
"""

from keras_eca.finetune.data import class_weights
from keras_eca.finetune.data import load_digits
from keras_eca.finetune.data import resolve_data
from keras_eca.finetune.report import classification_metrics
from keras_eca.finetune.report import confusion_matrix
from keras_eca.finetune.run import FinetuneResult
from keras_eca.finetune.run import finetune
from keras_eca.finetune.run import is_finetune_run
from keras_eca.finetune.serving import export_serving_model
from keras_eca.finetune.serving import load_serving_model
from keras_eca.finetune.serving import predict

__all__ = [
    "FinetuneResult",
    "class_weights",
    "classification_metrics",
    "confusion_matrix",
    "export_serving_model",
    "finetune",
    "is_finetune_run",
    "load_digits",
    "load_serving_model",
    "predict",
    "resolve_data",
]
