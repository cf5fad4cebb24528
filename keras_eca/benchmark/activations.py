"""Stored activations of a training step, read off its TensorFlow graph.

The allocator's peak moves by a few percent from process to process (which
temporaries the executor overlaps, how the allocator rounds its chunks).
The forward tensors that the backward pass reads are the part of training
memory that grows with the batch, and the graph states them exactly: trace
one training step (forward under a `tf.GradientTape`, then the gradients of
every trainable weight) and sum the bytes of every model tensor that a
gradient op takes as input. Weights, constants and shapes are not counted.
The graph is the one TensorFlow builds before its optimiser runs.
"""

import keras
import tensorflow as tf

# Producers whose outputs are not activations.
_NOT_ACTIVATIONS = frozenset(
    {"ReadVariableOp", "Const", "Placeholder", "Shape", "ShapeN", "VarHandleOp"}
)


def stored_activation_bytes(model, batch_size):
    """Bytes of the forward tensors one training step keeps for backward.

    Args:
        model: a Keras model with a single image input of known size and
            a classifier output (sparse categorical cross-entropy).
        batch_size: int. The batch the step is traced for.

    Returns:
        An int: the summed sizes of the distinct tensors of `model` that
        the gradient computation reads.

    Example:

    >>> from keras_eca import applications
    >>> from keras_eca.benchmark.activations import stored_activation_bytes
    >>> model = applications.build_model(
    ...     "eca_resnet18", weights=None, input_shape=(32, 32, 3), classes=10)
    >>> stored_activation_bytes(model, batch_size=2) > 0
    True
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    input_shape = tuple(model.inputs[0].shape[1:])
    if None in input_shape:
        raise ValueError(
            "stored_activation_bytes needs a model with a fixed input size. "
            f"Received: a model with input shape {model.inputs[0].shape}"
        )
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(
        tf.TensorSpec((batch_size,) + input_shape, model.inputs[0].dtype),
        tf.TensorSpec((batch_size,), tf.int32),
    ).graph
    stored = {}
    for op in graph.get_operations():
        if not op.name.startswith("gradient_tape/"):
            continue
        for tensor in op.inputs:
            producer = tensor.op
            if (
                not producer.name.startswith(model.name)
                or producer.type in _NOT_ACTIVATIONS
                or tensor.dtype == tf.resource
            ):
                continue
            elements = tensor.shape.num_elements()
            if elements is None:
                raise ValueError(
                    f"The tensor {tensor.name} of {model.name!r} has no static "
                    f"shape ({tensor.shape}), so its size is unknown."
                )
            stored[tensor.name] = elements * tensor.dtype.size
    return sum(stored.values())
