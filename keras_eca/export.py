"""TensorFlow deployment helpers: SavedModel export and TFLite conversion.

This module needs TensorFlow (it imports it) and is meant for models built
under the TensorFlow backend of Keras. The rest of `keras_eca` only uses
`keras.ops` and runs on every backend.

What the tests of `tests/export` check, on models of every family:

- `export_saved_model`: `tf.saved_model.load(path).serve(x)` returns
  exactly `model.predict(x)` (a maximum difference of 0.0); a model built
  with `input_shape=(None, None, 3)` serves any image size.
- `export_saved_model` of a KerasCV detector (RetinaNet, YOLOV8): `serve`
  returns its decoded, NMS-filtered detections, exactly as
  `detector.decode_predictions(detector(x, training=False), x)`.
- `to_tflite` + `run_tflite`: float32 TFLite models match
  `model.predict` within 1e-4 (observed maximum differences: 4e-8 on
  ECA-MobileNetV2 logits of magnitude < 0.04 at 96x96, 3e-6 on
  ECA-ResNet-50 logits of magnitude < 2 at 64x64).
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

import keras


def export_saved_model(model, path):
    """Exports `model` as a TensorFlow SavedModel with a `serve` endpoint.

    A thin wrapper of `model.export(path, format="tf_saved_model")`: the
    endpoint takes a float32 image batch of the model's input shape (any
    batch size, and any image size where the model's input has `None`
    dimensions) and returns the model's output in inference mode.

    A detector (anything with `decode_predictions` and a
    `prediction_decoder`: `keras_cv.models.RetinaNet`, `YOLOV8Detector`,
    `keras_hub.models.RetinaNetObjectDetector`) is exported
    with its box decoding and non-max suppression in the graph: `serve`
    returns a dict of `boxes` (B, N, 4, in the detector's box format),
    `scores` (B, N), `classes` (B, N) and `num_detections` (B,), rows past
    `num_detections` padded with -1. (`detector.export` alone serves the
    raw heads, without NMS.)

    Args:
        model: a built `keras.Model` with one input.
        path: str or `os.PathLike`. Directory to write; it must not exist
            or be empty.

    Returns:
        `path` as a string. Load it with `served = tf.saved_model.load(path)`
        and call `served.serve(x)`. Keep `served` in a variable: in the
        one-liner `tf.saved_model.load(path).serve(x)` the loaded object is
        collected before the call, which then fails with "variables which
        have been deleted".
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            f"`model` must be a built `keras.Model`. Received: model={model!r}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            "`path` must be a directory path (str or os.PathLike). "
            f"Received: path={path!r}"
        )
    path = os.fspath(path)
    if _is_detector(model):
        _export_detector(model, path)
    else:
        model.export(path, format="tf_saved_model", verbose=False)
    return path


def _is_detector(model):
    # Duck-typed: this module does not import the optional keras_cv.
    return callable(getattr(model, "decode_predictions", None)) and hasattr(
        model, "prediction_decoder"
    )


def _export_detector(model, path):
    shape = tuple(model.input_shape)
    if None in shape[1:]:
        raise ValueError(
            "A detector is exported at a fixed image size (its anchors "
            f"depend on it). Received: input_shape={shape}"
        )

    # keras-hub's NMS needs a static batch size: its images are decoded one
    # by one (the network still runs on the whole batch).
    one_by_one = type(model.prediction_decoder).__module__.startswith("keras_hub")

    def decode(predictions, images):
        decoded = model.decode_predictions(predictions, images)
        return {
            "boxes": decoded["boxes"],
            "scores": decoded["confidence"],
            # keras-hub's decoders name them "labels".
            "classes": decoded["classes"] if "classes" in decoded else decoded["labels"],
            "num_detections": decoded["num_detections"],
        }

    def serve(images):
        # float32 heads: mixed-precision ones do not mix with the anchors.
        predictions = tf.nest.map_structure(
            lambda t: tf.cast(t, tf.float32), model(images, training=False)
        )
        if not one_by_one:
            return decode(predictions, images)

        def decode_one(item):
            one = decode(*tf.nest.map_structure(lambda t: t[None], item))
            return {key: value[0] for key, value in one.items()}

        # The output signature from a trace of one image, not a run of it.
        item = tf.nest.map_structure(
            lambda t: tf.TensorSpec(t.shape[1:], t.dtype), (predictions, images)
        )
        traced = tf.function(decode_one).get_concrete_function(item)
        return tf.map_fn(
            decode_one, (predictions, images),
            fn_output_signature=tf.nest.map_structure(
                lambda t: tf.TensorSpec(t.shape, t.dtype), traced.structured_outputs
            ),
        )

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", serve,
        input_signature=[tf.TensorSpec(shape, tf.float32, name="images")],
    )
    archive.write_out(path, verbose=False)


def to_tflite(model_or_path):
    """Converts a model or a SavedModel directory to a float32 TFLite model.

    The conversion goes through a SavedModel (`tf.lite.TFLiteConverter.
    from_saved_model`) with the converter's defaults: float32 weights, no
    quantization, built-in TFLite ops only.

    Args:
        model_or_path: a built `keras.Model` (exported to a temporary
            SavedModel first) or the path of a SavedModel directory, e.g.
            from `export_saved_model`.

    Returns:
        The TFLite flatbuffer, as `bytes`. Run it with `run_tflite` or
        write it to a `.tflite` file.

    Example:

    >>> inputs = keras.Input((8, 8, 16))
    >>> model = keras.Model(
    ...     inputs, keras_eca.layers.EfficientChannelAttention()(inputs))
    >>> x = np.random.default_rng(0).random((1, 8, 8, 16), "float32")
    >>> from keras_eca import export
    >>> flatbuffer = export.to_tflite(model)
    >>> y = export.run_tflite(flatbuffer, x)
    >>> bool(np.allclose(y, model.predict(x, verbose=0), atol=1e-6))
    True
    """
    if isinstance(model_or_path, keras.Model):
        with tempfile.TemporaryDirectory() as directory:
            path = export_saved_model(
                model_or_path, os.path.join(directory, "saved_model")
            )
            return _convert(path)
    if isinstance(model_or_path, (str, os.PathLike)) and os.path.isdir(
        model_or_path
    ):
        return _convert(os.fspath(model_or_path))
    raise ValueError(
        "`model_or_path` must be a built `keras.Model` or the directory of "
        f"a SavedModel. Received: model_or_path={model_or_path!r}"
    )


def _convert(path):
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    return converter.convert()


def run_tflite(model_content, x):
    """Runs a single-input, single-output TFLite model on one batch.

    The input tensor is resized to `x.shape` first, so any batch size (and
    any image size the model allows) works.

    Uses the LiteRT interpreter (`ai_edge_litert`) when it is installed,
    else `tf.lite.Interpreter` (deprecated by TensorFlow in favour of
    LiteRT, still shipped with TensorFlow 2.21).

    Args:
        model_content: bytes. A TFLite flatbuffer, e.g. from `to_tflite`.
        x: array-like. The input batch; cast to float32.

    Returns:
        The output as a NumPy array.
    """
    if not isinstance(model_content, (bytes, bytearray)):
        raise ValueError(
            "`model_content` must be the bytes of a TFLite model. "
            f"Received: model_content={type(model_content).__name__}"
        )
    x = np.asarray(x, dtype="float32")
    interpreter = _interpreter(bytes(model_content))
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            "`model_content` must have one input and one output. Received: "
            f"{len(inputs)} inputs, {len(outputs)} outputs"
        )
    interpreter.resize_tensor_input(inputs[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs[0]["index"], x)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(outputs[0]["index"]))


def _interpreter(model_content):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model_content)
