"""Cross-entropy on sparse integer labels with label smoothing.

Keras' `SparseCategoricalCrossentropy` has no `label_smoothing` and its
`CategoricalCrossentropy` wants one-hot labels; the data pipeline yields
int labels, so this loss one-hots them inside the loss.
"""

import keras
from keras import ops

from keras_eca._checks import is_finite_number


@keras.saving.register_keras_serializable(package="keras_eca")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of int labels against `(batch, classes)` predictions,
    with targets `(1 - label_smoothing) * one_hot + label_smoothing /
    classes` (PyTorch's `CrossEntropyLoss(label_smoothing=...)`).

    Args:
        from_logits: bool. Whether predictions are logits rather than
            probabilities. Defaults to `False` (the applications end in a
            softmax).
        label_smoothing: float in [0, 1). Defaults to 0.
        **kwargs: `keras.losses.Loss` arguments (`reduction`, `name`, ...).

    Example:

    >>> loss = keras_eca.training.SparseCategoricalCrossentropy(
    ...     label_smoothing=0.1)
    >>> probabilities = np.array([[0.7, 0.2, 0.1]], "float32")
    >>> round(float(loss(np.array([0]), probabilities)), 4)
    0.4633
    """

    def __init__(self, from_logits=False, label_smoothing=0.0,
                 name="sparse_categorical_crossentropy", **kwargs):
        if not isinstance(from_logits, bool):
            raise TypeError(
                f"from_logits must be a bool. Received: from_logits={from_logits!r}"
            )
        if not is_finite_number(label_smoothing) or not 0 <= label_smoothing < 1:
            raise ValueError(
                "label_smoothing must be in [0, 1). Received: "
                f"label_smoothing={label_smoothing!r}"
            )
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        targets = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )
        return config
