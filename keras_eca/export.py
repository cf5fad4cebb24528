"""TensorFlow deployment helpers: SavedModel export and TFLite conversion.

This module needs TensorFlow (it imports it) and is meant for models built
under the TensorFlow backend of Keras. The rest of `keras_eca` only uses
`keras.ops` and runs on every backend.

What the tests of `tests/export` check, on models of every family:

- `export_saved_model` exports the inference form
  (`keras_eca.inference.inference_model`: BatchNorm folded, lean gates):
  `tf.saved_model.load(path).serve(x)` equals `model.predict(x)` within
  1e-5 relative (BatchNorm statistics drawn at random), and exactly (a
  maximum difference of 0.0) with `inference_form=False`; a model built
  with `input_shape=(None, None, 3)` serves any image size.
- `export_saved_model` of a KerasCV detector (RetinaNet, YOLOV8): `serve`
  returns its decoded, NMS-filtered detections, exactly as
  `detector.decode_predictions(detector(x, training=False), x)`.
- `to_tflite` + `run_tflite`: float32 TFLite models match `model.predict`
  within 1e-5 relative; the TFLite graph of an ECA model has exactly six
  ops per gate more than its plain backbone and no BatchNorm multiply-add;
  int8 quantization keeps every gate (`gate_errors`).
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

import keras

from keras_eca import inference


def export_saved_model(model, path, inference_form=True, xla=False):
    """Exports `model` as a TensorFlow SavedModel with a `serve` endpoint.

    `model.export(path, format="tf_saved_model")` of the model's inference
    form (`keras_eca.inference.inference_model`: BatchNorm folded into the
    convs, the attention gates in their fewest ops; outputs equal to float32
    round-off): the endpoint takes a float32 image batch of the model's
    input shape (any batch size, and any image size where the model's input
    has `None` dimensions) and returns the model's output in inference mode.
    A subclassed model is exported as it is.

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
        inference_form: bool. Export the inference form (default) or the
            model's own graph.
        xla: bool. Export the TensorFlow form of the inference form
            (`inference_model(model, xla=True)`): every SA layer, residual
            add and ReLU one XLA kernel, SA's fastest form in TensorFlow on
            CPU (channel-gate models export their default form). The
            SavedModel then needs XLA's JIT where it runs: TensorFlow's
            Python and C++ packages have it, TF Serving only with
            `--xla_cpu_compilation_enabled`; `to_tflite` converts it, but
            convert the model itself for TFLite. Detectors and subclassed
            models are exported as they are, whatever `xla` says. Default
            False.

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
    if not isinstance(inference_form, bool):
        raise ValueError(
            "`inference_form` must be True or False. "
            f"Received: inference_form={inference_form!r}"
        )
    if not isinstance(xla, bool) or (xla and not inference_form):
        raise ValueError(
            "`xla` must be True or False, and True only with "
            f"inference_form=True. Received: xla={xla!r}, "
            f"inference_form={inference_form!r}"
        )
    path = os.fspath(path)
    if _is_detector(model):
        _export_detector(model, path)
        return path
    if inference_form and inference.is_rewritable(model):
        model = inference.inference_model(model, xla=xla)
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


QUANTIZATIONS = (None, "int8", "dynamic_range", "float16")


def to_tflite(
    model_or_path,
    quantization=None,
    representative_data=None,
    calibration_steps=100,
):
    """Converts a model or a SavedModel directory to a TFLite model.

    The conversion goes through a SavedModel of the model's inference form
    (see `export_saved_model`) and `tf.lite.TFLiteConverter.
    from_saved_model`, built-in TFLite ops only.

    Args:
        model_or_path: a built `keras.Model` (exported to a temporary
            SavedModel first) or the path of a SavedModel directory, e.g.
            from `export_saved_model`.
        quantization: `None` (float32), `"int8"` (post-training
            quantization of weights and activations to int8, calibrated on
            `representative_data`; input and output stay float32, and an op
            without an int8 kernel stays float), `"dynamic_range"` (int8
            weights, float activations) or `"float16"` (float16 weights).
        representative_data: for `"int8"`: images the model will see, an
            array `(N, H, W, C)` or an iterable of such batches (a
            `tf.data.Dataset` of batches too), in the model's input
            scaling. The activation ranges come from their first
            `calibration_steps` images.
        calibration_steps: int. Images used to calibrate (default 100).

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
    >>> quantized = export.to_tflite(model, "int8", representative_data=x)
    >>> errors = export.gate_errors(flatbuffer, quantized, x)
    >>> len(errors), max(errors.values()) < 0.05   # one gate, in [0, 1]
    (1, True)
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}"
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "`quantization='int8'` calibrates activation ranges on "
            "`representative_data` (images the model will see). Received: "
            "representative_data=None"
        )
    if not isinstance(calibration_steps, int) or calibration_steps < 1:
        raise ValueError(
            "`calibration_steps` must be a positive integer. "
            f"Received: calibration_steps={calibration_steps!r}"
        )
    options = (quantization, representative_data, calibration_steps)
    if isinstance(model_or_path, keras.Model):
        with tempfile.TemporaryDirectory() as directory:
            path = export_saved_model(
                model_or_path, os.path.join(directory, "saved_model")
            )
            return _convert(path, *options)
    if isinstance(model_or_path, (str, os.PathLike)) and os.path.isdir(
        model_or_path
    ):
        return _convert(os.fspath(model_or_path), *options)
    raise ValueError(
        "`model_or_path` must be a built `keras.Model` or the directory of "
        f"a SavedModel. Received: model_or_path={model_or_path!r}"
    )


def _convert(path, quantization, representative_data, calibration_steps):
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = _calibration_images(
            representative_data, calibration_steps
        )
    return converter.convert()


def _calibration_images(data, steps):
    """A generator function of `[image batch of 1]` lists, `steps` of them,
    from an array or an iterable of batches."""
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        data = [data]

    def images():
        count = 0
        for batch in data:
            batch = np.asarray(batch, dtype="float32")
            if batch.ndim < 2:
                raise ValueError(
                    "`representative_data` must hold image batches "
                    f"(N, H, W, C). Received a batch of shape {batch.shape}"
                )
            for image in batch:
                yield [image[None]]
                count += 1
                if count >= steps:
                    return
        if count == 0:
            raise ValueError("`representative_data` holds no images.")

    return images


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


def _interpreter(model_content, num_threads=None, keep_tensors=False):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(
        model_content=model_content,
        num_threads=num_threads,
        experimental_preserve_all_tensors=keep_tensors,
    )


def gate_errors(float_model, quantized_model, x):
    """How far a quantized TFLite model's attention gates are from the
    float model's, on the inputs `x`.

    The gates are the outputs of the sigmoid (TFLite `LOGISTIC`) ops: the
    channel gates of ECA and SE, SA's gates. Both models run on `x` with
    every intermediate tensor kept; the quantized gates are dequantized
    and matched to the float ones in graph order.

    Args:
        float_model: bytes. The float32 TFLite model.
        quantized_model: bytes. Its quantized conversion (same graph).
        x: the input batch.

    Returns:
        `{gate tensor name: max absolute error}`, gates in graph order
        (a gate lies in [0, 1]).
    """
    float_gates = _gate_values(float_model, x)
    quantized_gates = _gate_values(quantized_model, x)
    if len(float_gates) != len(quantized_gates):
        raise ValueError(
            "The two models have different numbers of gates (sigmoid ops): "
            f"{len(float_gates)} and {len(quantized_gates)}."
        )
    return {
        name: float(np.max(np.abs(value - quantized)))
        for (name, value), (_, quantized) in zip(float_gates, quantized_gates)
    }


def _gate_values(model_content, x):
    interpreter = _interpreter(bytes(model_content), keep_tensors=True)
    x = np.asarray(x, dtype="float32")
    (inputs,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(inputs["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs["index"], x)
    interpreter.invoke()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    gates = []
    for op in interpreter._get_ops_details():
        if op["op_name"] != "LOGISTIC":
            continue
        detail = tensors[op["outputs"][0]]
        value = interpreter.get_tensor(detail["index"]).astype("float64")
        scales = detail["quantization_parameters"]["scales"]
        if detail["dtype"] != np.float32 and len(scales):
            zero_points = detail["quantization_parameters"]["zero_points"]
            value = (value - zero_points[0]) * scales[0]
        gates.append((detail["name"], value))
    return gates
