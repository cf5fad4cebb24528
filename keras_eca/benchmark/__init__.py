"""Speed and memory of the attention models against their plain baselines.

`run_benchmark()` measures, in one process and interleaved, inference
throughput (Keras' compiled predict step at each inference batch size),
training step throughput and peak training memory of every model named in
the comparisons, then reports `candidate / baseline` ratios (median and
min..max over repeats) against the targets, plus the cost of
`import keras_eca` and of building ECAResNet50. The command line is
`keras-eca benchmark` (or `python benchmarks/run_benchmark.py`).

Example (a tiny run; the defaults are the full ResNet-50 / MobileNetV2
suite at 224 px):

>>> from keras_eca import benchmark
>>> result = benchmark.run_benchmark(
...     [benchmark.Comparison("eca_resnet18", "resnet18", {"inference": 0.5})],
...     benchmark.Settings(image_size=32, inference_batch_sizes=(2,),
...                        repeats=2, warmup=1, min_seconds=0.0),
...     memory=False, startup=False, report=None)
>>> [row["metric"] for row in result["comparisons"]]
['inference_b2']
"""

import os

import keras

from keras_eca.benchmark import devices
from keras_eca.benchmark import report as reporting
from keras_eca.benchmark import runner
from keras_eca.benchmark import suite
from keras_eca.benchmark.runner import Settings
from keras_eca.benchmark.suite import DEFAULT_COMPARISONS
from keras_eca.benchmark.suite import Comparison

__all__ = [
    "Comparison",
    "DEFAULT_COMPARISONS",
    "Settings",
    "run_benchmark",
    "save_results",
]


def _quiet(*args, **kwargs):
    pass


def run_benchmark(
    comparisons=DEFAULT_COMPARISONS,
    settings=None,
    *,
    memory=True,
    startup=True,
    build_pair=suite.DEFAULT_BUILD_PAIR,
    report=print,
):
    """Measures every model of `comparisons` and returns the result dict.

    Args:
        comparisons: `Comparison`s (candidate, baseline, targets per metric
            kind: `"inference"`, `"training"` (min ratios), `"memory"` (max
            ratio)). Every model is measured on every kind any comparison
            names. Defaults to the ResNet-50 / MobileNetV2 suite.
        settings: a `Settings`; defaults to `Settings()`.
        memory: measure peak training memory (one subprocess per model and
            repeat) when some comparison has a `"memory"` target, and with
            TensorFlow the stored activations of a training step (from its
            graph, exact).
        startup: also time `import keras_eca` (over `import keras`) and
            building `build_pair[0]` against `build_pair[1]`.
        report: callable for progress lines, or `None` for silence.

    Returns:
        A JSON-serialisable dict: `device`, `settings`, `measurements`
        (`{model: {metric: [value per repeat]}}`), `comparisons` (a row per
        comparison and metric with `ratios`, `median`, `min`, `max`,
        `target`, `met`) and `startup`.
    """
    settings = settings or Settings()
    report = report or _quiet
    comparisons = tuple(comparisons)
    if not all(isinstance(c, Comparison) for c in comparisons):
        raise ValueError(
            "`comparisons` must be `keras_eca.benchmark.Comparison` objects. "
            f"Received: comparisons={comparisons!r}"
        )
    names = suite.models_of(comparisons)
    runner.check_model_names(names + (list(build_pair) if startup else []))
    device = devices.describe()
    jit_compile, policy = settings.resolved(
        bool(device["accelerators"]), device["backend"]
    )
    report(
        f"keras_eca benchmark on {device['device']} ({device['backend']}): "
        f"{', '.join(names)}; jit_compile={jit_compile}, dtype_policy={policy}"
    )
    kinds = suite.metric_kinds_of(comparisons)
    previous_policy = keras.config.dtype_policy()
    result = {"device": device, "settings": _settings_dict(settings, jit_compile, policy)}
    try:
        keras.config.set_dtype_policy(policy)
        startup_rows = {}
        if startup:
            startup_rows = _measure_startup(settings, build_pair, report)
        report("throughput (img/s):")
        measurements = runner.measure_throughput(
            names, settings, kinds, jit_compile, report=report
        )
        if memory and "memory" in kinds:
            report("peak training memory:")
            peaks, rss = runner.measure_memory(
                names, settings, jit_compile, policy, report=report
            )
            batch = settings.training_batch_size
            for name in names:
                values = measurements.setdefault(name, {})
                values[f"memory_b{batch}"] = peaks[name]
                values[f"rss_b{batch}"] = rss[name]
            if device["backend"] == "tensorflow":
                stored = runner.measure_stored_activations(
                    names, settings, report=report
                )
                for name in names:
                    measurements[name][f"activations_b{batch}"] = stored[name]
    finally:
        keras.config.set_dtype_policy(previous_policy)
    result["measurements"] = measurements
    result["comparisons"] = _ratio_rows(comparisons, measurements)
    result["startup"] = startup_rows
    return result


def _settings_dict(settings, jit_compile, policy):
    values = dict(vars(settings))
    values["inference_batch_sizes"] = list(settings.inference_batch_sizes)
    values["jit_compile_resolved"] = jit_compile
    values["dtype_policy_resolved"] = policy
    return values


def _ratio_rows(comparisons, measurements):
    rows = []
    for comparison in comparisons:
        candidate = measurements.get(comparison.candidate, {})
        baseline = measurements.get(comparison.baseline, {})
        for metric in candidate:
            if metric in baseline:
                rows.append(
                    reporting.ratio_row(
                        comparison,
                        metric,
                        suite.kind_of(metric),
                        candidate[metric],
                        baseline[metric],
                    )
                )
    return rows


def _measure_startup(settings, build_pair, report):
    report("import time:")
    imports = runner.measure_import_time(settings.repeats)
    extra = imports["keras_eca_seconds"]
    import_row = {
        **reporting.spread(extra),
        "seconds": extra,
        "keras_seconds": imports["keras_seconds"],
        "keras_median": reporting.spread(imports["keras_seconds"])["median"],
        "target": suite.DEFAULT_IMPORT_TARGET_SECONDS,
        "better": "lower",
    }
    import_row["met"] = import_row["median"] <= import_row["target"]
    report(f"  import keras_eca: {import_row['median']:.3f} s over import keras")
    report("build time:")
    seconds = runner.measure_build_time(build_pair, settings, report=report)
    candidate, baseline = build_pair
    ratios = [c / b for c, b in zip(seconds[candidate], seconds[baseline])]
    build_row = {
        "candidate": candidate,
        "baseline": baseline,
        "seconds": seconds,
        "ratios": ratios,
        **reporting.spread(ratios),
        "target": suite.DEFAULT_BUILD_TARGET_RATIO,
        "better": "lower",
    }
    build_row["met"] = build_row["median"] <= build_row["target"]
    return {"import": import_row, "build": build_row}


def save_results(result, output_dir):
    """Writes `benchmark.json` and `benchmark.png` into `output_dir` and
    returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, "benchmark.json")
    png_path = os.path.join(output_dir, "benchmark.png")
    reporting.write_json(result, json_path)
    reporting.write_chart(result, png_path)
    return json_path, png_path


format_report = reporting.format_report
