"""int8 TFLite of a fine-tuning run, and what quantization costs.

`quantize_run(run_dir)` converts a `keras-eca finetune` run's model to an
int8 TFLite model (post-training quantization, `keras_eca.export.to_tflite`
with `quantization="int8"`), calibrated on the run's own training images
prepared as for evaluation, then measures on the run's validation images:

- accuracy of the Keras model, the float32 TFLite model and the int8 one,
  and how many predictions the int8 model changes;
- the attention gates' error: the int8 model's sigmoid outputs against the
  float model's (`keras_eca.export.gate_errors`), max and mean over gates;
- sizes, and batch-1 latency of both TFLite models (the fastest of
  interleaved calls, XNNPACK, 2 threads).

It writes `model_int8.tflite` and `quantization.json` into the run folder
(atomically). The command line is `keras-eca quantize RUN_DIR`.
"""

import json
import pathlib
import statistics
import time

import numpy as np

from keras_eca import export
from keras_eca import files
from keras_eca.data import pipeline as data_lib
from keras_eca.finetune import data as finetune_data

TFLITE_FILE = "model_int8.tflite"
REPORT_FILE = "quantization.json"
# finetune's models take RGB on 0..255: the data pipeline's identity stats.
_IDENTITY_MEAN = (0.0, 0.0, 0.0)
_IDENTITY_STD = (1 / 255, 1 / 255, 1 / 255)


def quantize_run(
    run_dir, output=None, calibration_steps=100, timing_calls=20, say=None
):
    """Quantizes a fine-tuning run's model to int8 TFLite and reports.

    Args:
        run_dir: a `keras-eca finetune` run folder (with `model.keras` and
            `report.json`).
        output: the `.tflite` file to write; defaults to
            `RUN_DIR/model_int8.tflite`.
        calibration_steps: training images to calibrate on (default 100).
        timing_calls: timed batch-1 calls per model (0: no timing).
        say: callable for progress lines, or None.

    Returns:
        The dict written to `RUN_DIR/quantization.json`.
    """
    import keras

    import keras_eca.layers  # noqa: F401  (registers the layers)

    say = say or (lambda text: None)
    run_dir = pathlib.Path(run_dir)
    report_path = run_dir / "report.json"
    model_path = run_dir / "model.keras"
    if not report_path.is_file() or not model_path.is_file():
        raise ValueError(
            "`run_dir` must be a keras-eca finetune run folder with "
            f"report.json and model.keras. Received: run_dir={str(run_dir)!r}"
        )
    for name, value, low in (
        ("calibration_steps", calibration_steps, 1),
        ("timing_calls", timing_calls, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(
                f"`{name}` must be an integer >= {low}. Received: {name}={value!r}"
            )
    report = json.loads(report_path.read_text())
    settings, preprocessing = report["settings"], report["preprocessing"]
    dataset = settings["dataset"]
    if dataset == "arrays":
        raise ValueError(
            "This run was trained on in-memory arrays, which the run folder "
            "does not keep: quantize its model with keras_eca.export."
            "to_tflite(model, 'int8', representative_data=images) instead. "
            f"Received: run_dir={str(run_dir)!r}"
        )
    output = pathlib.Path(output) if output else run_dir / TFLITE_FILE
    data = finetune_data.resolve_data(
        dataset,
        image_size=preprocessing["image_size"],
        data_dir=settings.get("data_dir"),
        validation_fraction=settings.get("validation_fraction"),
        seed=settings["seed"],
    )

    def prepared(source):
        return data_lib.evaluation_dataset(
            source,
            image_size=preprocessing["image_size"],
            crop_pct=preprocessing["crop_pct"],
            interpolation=preprocessing["interpolation"],
            mean=_IDENTITY_MEAN,
            std=_IDENTITY_STD,
            batch_size=32,
        )

    say(f"Loading {model_path} ...")
    model = keras.saving.load_model(model_path)
    say("Converting to float32 TFLite (the inference form) ...")
    float_model = export.to_tflite(model)
    calibration = prepared(data.train).map(lambda images, labels: images)
    say(f"Quantizing to int8, calibrated on {calibration_steps} training images ...")
    int8_model = export.to_tflite(
        model, "int8", representative_data=calibration,
        calibration_steps=calibration_steps,
    )
    say(f"Evaluating on {data.validation.num_examples} validation images ...")
    labels, predictions, gate_errors = [], {"keras": [], "float32": [], "int8": []}, {}
    for images, batch_labels in prepared(data.validation):
        images = images.numpy()
        labels.append(batch_labels.numpy())
        predictions["keras"].append(model.predict_on_batch(images))
        predictions["float32"].append(export.run_tflite(float_model, images))
        predictions["int8"].append(export.run_tflite(int8_model, images))
        if not gate_errors:
            gate_errors = export.gate_errors(float_model, int8_model, images)
    labels = np.concatenate(labels)
    classes = {
        name: np.argmax(np.concatenate(values), axis=1)
        for name, values in predictions.items()
    }
    probabilities = {
        name: np.concatenate(values) for name, values in predictions.items()
    }
    result = {
        "run_dir": str(run_dir),
        "output": str(output),
        "calibration_images": min(calibration_steps, data.train.num_examples),
        "validation_images": int(labels.size),
        "accuracy": {
            name: float(np.mean(predicted == labels))
            for name, predicted in classes.items()
        },
        "int8_changed_predictions": int(np.sum(classes["int8"] != classes["float32"])),
        "max_probability_error": {
            "float32": float(np.max(np.abs(probabilities["float32"] - probabilities["keras"]))),
            "int8": float(np.max(np.abs(probabilities["int8"] - probabilities["keras"]))),
        },
        "gates": {
            "count": len(gate_errors),
            "max_abs_error": max(gate_errors.values(), default=0.0),
            "mean_of_max_abs_errors": (
                float(np.mean(list(gate_errors.values()))) if gate_errors else 0.0
            ),
            "per_gate": gate_errors,
        },
        "bytes": {"float32": len(float_model), "int8": len(int8_model)},
    }
    if timing_calls:
        image = prepared(data.validation).take(1).get_single_element()[0][:1].numpy()
        result["latency_ms_batch1"] = _latency(
            {"float32": float_model, "int8": int8_model}, image, timing_calls
        )
    files.write_atomically(output, lambda file: file.write(int8_model))
    files.write_text_atomically(
        run_dir / REPORT_FILE, json.dumps(result, indent=2) + "\n"
    )
    say(format_summary(result))
    return result


def _latency(models, image, calls, threads=2):
    """`{name: {"min", "median"}}` ms of batch-1 calls, interleaved."""
    interpreters = {}
    for name, content in models.items():
        interpreter = export._interpreter(content, num_threads=threads)
        interpreter.allocate_tensors()
        interpreters[name] = interpreter
    times = {name: [] for name in models}
    for turn in range(calls + 2):
        for name, interpreter in interpreters.items():
            (inputs,) = interpreter.get_input_details()
            (outputs,) = interpreter.get_output_details()
            start = time.perf_counter()
            interpreter.set_tensor(inputs["index"], image)
            interpreter.invoke()
            interpreter.get_tensor(outputs["index"])
            if turn >= 2:  # warm-up calls
                times[name].append(1000 * (time.perf_counter() - start))
    return {
        name: {"min": min(values), "median": statistics.median(values)}
        for name, values in times.items()
    }


def format_summary(result):
    accuracy = result["accuracy"]
    changed = result["int8_changed_predictions"]
    lines = [
        f"Accuracy on {result['validation_images']} validation images: "
        f"Keras {accuracy['keras']:.4f}, float32 TFLite {accuracy['float32']:.4f}, "
        f"int8 TFLite {accuracy['int8']:.4f} "
        f"({changed} prediction{'' if changed == 1 else 's'} changed)",
        f"Gates ({result['gates']['count']}): max error "
        f"{result['gates']['max_abs_error']:.4f}, mean of per-gate maxima "
        f"{result['gates']['mean_of_max_abs_errors']:.4f}",
        f"Size: float32 {result['bytes']['float32'] / 1e6:.2f} MB, int8 "
        f"{result['bytes']['int8'] / 1e6:.2f} MB",
    ]
    if "latency_ms_batch1" in result:
        latency = result["latency_ms_batch1"]
        lines.append(
            f"Batch-1 latency (fastest): float32 {latency['float32']['min']:.2f} ms, "
            f"int8 {latency['int8']['min']:.2f} ms"
        )
    lines.append(f"Wrote {result['output']} and {REPORT_FILE}")
    return "\n".join(lines)

