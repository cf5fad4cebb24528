"""Serving speed of the attention models against their plain backbones.

Every model is exported as users export it (`keras_eca.export`: the
inference form, BatchNorm folded and the gates in their fewest ops) and
served three ways on the host CPU:

- `tflite`: the float32 TFLite model in the TFLite interpreter (XNNPACK,
  `threads` threads), as `keras_eca.export.to_tflite` converts it;
- `tflite_int8`: its int8 post-training quantization (calibrated on
  random images: speed does not depend on the ranges);
- `tf`: the SavedModel's `serve` function (`tf.saved_model.load`), i.e.
  TensorFlow's compiled graph with Grappler's fusions;
- `tf_xla`: the same for `export_saved_model(model, path, xla=True)`, the
  TensorFlow form: each SA layer, residual add and ReLU one XLA kernel
  (channel-gate and plain models export the `tf` form there).

The models of one setting (format, image size, batch) take turns call by
call, in rotating order, so the machine's drift hits all of them alike;
`ratio` is the candidate's throughput over the baseline's from the fastest
of `calls` calls each (noise only ever adds time), `median_ratio` the same
from the medians.

    python -m keras_eca.benchmark.deployment                 # the issue's targets
    python -m keras_eca.benchmark.deployment --calls 10 --image-size 96 \\
        --pair eca_resnet18:resnet18 --formats tflite,tf --batch-sizes 1
"""

import argparse
import dataclasses
import gc
import os
import statistics
import tempfile
import time

import numpy as np

FORMATS = ("tflite", "tflite_int8", "tf", "tf_xla")


@dataclasses.dataclass(frozen=True)
class Row:
    """`candidate / baseline` throughput in `format` at `image_size` px and
    `batch`; `target`: the least acceptable ratio, or None."""

    candidate: str
    baseline: str
    format: str
    image_size: int = 224
    batch: int = 1
    target: float = None

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(
                f"`format` must be one of {FORMATS}. Received: format={self.format!r}"
            )

    @property
    def setting(self):
        return (self.format, self.image_size, self.batch)


# Issue 15's targets, and the int8 rows reported beside them.
DEFAULT_ROWS = (
    Row("eca_mobilenet_v2", "mobilenet_v2", "tflite", target=0.95),
    Row("eca_resnet50", "resnet50", "tflite", target=0.98),
    Row("sa_resnet50", "resnet50", "tflite", target=0.90),
    Row("eca_mobilenet_v2", "mobilenet_v2", "tflite_int8"),
    Row("eca_resnet50", "resnet50", "tflite_int8"),
    Row("sa_resnet50", "resnet50", "tflite_int8"),
    Row("eca_resnet50", "resnet50", "tf", 224, 1, target=0.98),
    Row("eca_resnet50", "resnet50", "tf", 224, 8, target=0.98),
    Row("eca_resnet50", "resnet50", "tf", 128, 1, target=0.95),
    Row("sa_resnet50", "resnet50", "tf", 224, 8, target=0.90),
    Row("se_resnet50", "resnet50", "tf", 224, 8),
    Row("sa_resnet50", "resnet50", "tf_xla", 224, 8, target=0.90),
)


def run(rows=DEFAULT_ROWS, calls=30, warmup=3, threads=2, report=print):
    """Measures every row; returns a JSON-serialisable dict.

    Args:
        rows: `Row`s; rows of one setting share their measurement.
        calls: timed calls per model and setting.
        warmup: untimed calls first.
        threads: TFLite interpreter threads.
        report: callable for progress lines, or None.

    Returns:
        `{"device", "settings", "models": {format: {name: {"bytes"}}},
        "timings": [{format, image_size, batch, models: {name: {min_ms,
        median_ms}}}], "rows": [{...row, ratio, median_ratio, met}]}`.
    """
    from keras_eca.benchmark import devices

    report = report or (lambda line: None)
    for name, value, low in (("calls", calls, 1), ("warmup", warmup, 0),
                             ("threads", threads, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(
                f"`{name}` must be an integer >= {low}. Received: {name}={value!r}"
            )
    settings = {}
    for row in rows:
        names = settings.setdefault(row.setting, [])
        for name in (row.baseline, row.candidate):
            if name not in names:
                names.append(name)
    result = {
        "device": devices.describe(),
        "settings": {"calls": calls, "warmup": warmup, "threads": threads},
        "models": {},
        "timings": [],
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as directory:
        artifacts = _Artifacts(directory, report)
        for (form, size, batch), names in settings.items():
            report(f"{form}, {size} px, batch {batch}: {', '.join(names)}")
            callables = {
                name: artifacts.callable(name, form, size, batch, threads)
                for name in names
            }
            durations = _interleaved(callables, calls, warmup)
            result["timings"].append({
                "format": form, "image_size": size, "batch": batch,
                "models": {
                    name: {
                        "min_ms": 1000 * min(values),
                        "median_ms": 1000 * statistics.median(values),
                    }
                    for name, values in durations.items()
                },
            })
            for name, values in durations.items():
                report(
                    f"  {name}: fastest {1000 * min(values):.2f} ms, median "
                    f"{1000 * statistics.median(values):.2f} ms"
                )
            del callables
            gc.collect()
        result["models"] = artifacts.sizes
    for row in rows:
        timing = next(
            t for t in result["timings"]
            if (t["format"], t["image_size"], t["batch"]) == row.setting
        )["models"]
        ratio = timing[row.baseline]["min_ms"] / timing[row.candidate]["min_ms"]
        median_ratio = (
            timing[row.baseline]["median_ms"] / timing[row.candidate]["median_ms"]
        )
        result["rows"].append({
            **dataclasses.asdict(row),
            "ratio": ratio,
            "median_ratio": median_ratio,
            "met": None if row.target is None else ratio >= row.target,
        })
    return result


def _interleaved(callables, calls, warmup):
    names = list(callables)
    for name in names:
        for _ in range(warmup):
            callables[name]()
    durations = {name: [] for name in names}
    for turn in range(calls):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            callables[name]()
            durations[name].append(time.perf_counter() - start)
    return durations


class _Artifacts:
    """Builds, exports and converts each model once per image size."""

    def __init__(self, directory, report):
        self.directory, self.report = directory, report
        self.saved_models, self.flatbuffers, self.sizes = {}, {}, {}

    def saved_model(self, name, size, xla=False):
        key = (name, size, xla)
        if key not in self.saved_models:
            import keras

            from keras_eca import export
            from keras_eca.benchmark import runner

            self.report(f"  exporting {name} at {size} px")
            keras.utils.set_random_seed(0)
            model = runner.build(name, size)
            path = os.path.join(
                self.directory, f"{name}_{size}{'_xla' if xla else ''}"
            )
            export.export_saved_model(model, path, xla=xla)
            self.saved_models[key] = path
            del model
            gc.collect()
        return self.saved_models[key]

    def flatbuffer(self, name, size, form):
        key = (name, size, form)
        if key not in self.flatbuffers:
            from keras_eca import export

            self.report(f"  converting {name} to {form}")
            options = {}
            if form == "tflite_int8":
                rng = np.random.default_rng(0)
                options = {
                    "quantization": "int8",
                    "representative_data": rng.standard_normal(
                        (8, size, size, 3)
                    ).astype("float32"),
                }
            content = export.to_tflite(self.saved_model(name, size), **options)
            self.flatbuffers[key] = content
            self.sizes.setdefault(form, {})[f"{name}_{size}"] = {
                "bytes": len(content)
            }
        return self.flatbuffers[key]

    def callable(self, name, form, size, batch, threads):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((batch, size, size, 3)).astype("float32")
        if form in ("tf", "tf_xla"):
            import tensorflow as tf

            served = tf.saved_model.load(
                self.saved_model(name, size, xla=form == "tf_xla")
            )
            serve = served.serve
            tensor = tf.constant(x)

            def call():
                return serve(tensor).numpy()

            call.keep = served  # the variables live as long as the call
            return call
        from keras_eca import export

        interpreter = export._interpreter(
            self.flatbuffer(name, size, form), num_threads=threads
        )
        (inputs,) = interpreter.get_input_details()
        (outputs,) = interpreter.get_output_details()
        interpreter.resize_tensor_input(inputs["index"], x.shape)
        interpreter.allocate_tensors()

        def invoke():
            interpreter.set_tensor(inputs["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(outputs["index"])

        return invoke


def format_report(result):
    lines = [
        "| candidate / baseline | format | image | batch | ratio (fastest) | "
        "ratio (median) | candidate ms | baseline ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        timing = next(
            t for t in result["timings"]
            if (t["format"], t["image_size"], t["batch"])
            == (row["format"], row["image_size"], row["batch"])
        )["models"]
        target = ""
        if row["target"] is not None:
            target = f" (≥ {row['target']:g} {'✓' if row['met'] else '✗'})"
        lines.append(
            f"| {row['candidate']} / {row['baseline']} | {row['format']} | "
            f"{row['image_size']} | {row['batch']} | {row['ratio']:.3f}{target} | "
            f"{row['median_ratio']:.3f} | "
            f"{timing[row['candidate']]['min_ms']:.1f} | "
            f"{timing[row['baseline']]['min_ms']:.1f} |"
        )
    return "\n".join(lines)


def _rows_argument(pairs, formats, sizes, batches):
    return tuple(
        Row(candidate, baseline, form, size, batch)
        for form in formats
        for size in sizes
        for batch in batches
        for candidate, baseline in pairs
    )


def main(argv=None):
    from keras_eca._checks import batch_sizes_argument

    parser = argparse.ArgumentParser(
        prog="python -m keras_eca.benchmark.deployment",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--pair", action="append", metavar="CANDIDATE:BASELINE",
        help="instead of the default rows (repeatable)",
    )
    parser.add_argument(
        "--formats", default="tflite,tf",
        help=f"with --pair: comma-separated among {','.join(FORMATS)}",
    )
    parser.add_argument("--image-size", type=batch_sizes_argument, default=(224,),
                        help="with --pair: sizes, e.g. 224 or 128,224")
    parser.add_argument("--batch-sizes", type=batch_sizes_argument, default=(1,),
                        help="with --pair: e.g. 1,8")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="benchmark_results/deployment.json")
    args = parser.parse_args(argv)
    rows = DEFAULT_ROWS
    if args.pair:
        formats = tuple(f for f in args.formats.split(",") if f)
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            parser.error(f"--formats: unknown {bad}; choose among {FORMATS}")
        pairs = []
        for pair in args.pair:
            if pair.count(":") != 1:
                parser.error(f"--pair must be CANDIDATE:BASELINE. Received: {pair!r}")
            pairs.append(tuple(pair.split(":")))
        rows = _rows_argument(pairs, formats, args.image_size, args.batch_sizes)
    result = run(rows, calls=args.calls, warmup=args.warmup, threads=args.threads,
                 report=lambda line: print(line, flush=True))
    print(format_report(result))
    if args.output:
        from keras_eca.benchmark import report as reporting

        reporting.write_json(result, args.output)
        print(f"wrote {args.output}")
    # The number of missed targets (the CLI's --check exits 1 on any).
    return sum(row["met"] is False for row in result["rows"])


if __name__ == "__main__":
    main()
