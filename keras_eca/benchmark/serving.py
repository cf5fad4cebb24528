"""What a fine-tuned model costs to serve, and what the first command costs.

`serving_latency(run_dir)` times the run's SavedModel as a server would
call it -- encoded JPEG bytes in, class names out (`serve_bytes`: decode,
resize, crop, the model, top-k names) -- at batch 1 and 32: warm-up calls,
then the median (and min..max) of timed calls, each ending when the names
are in host memory. `time_default_finetune()` runs the README's first
command, `keras-eca finetune --output RUN_DIR` with its defaults, in a
fresh process (imports and export included) and returns its wall time and
validation accuracy.

    python -m keras_eca.benchmark.serving RUN_DIR [--batch-sizes 1,32]
    python -m keras_eca.benchmark.serving --finetune [RUN_DIR]
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras_eca._checks import batch_sizes_argument

DEFAULT_BATCH_SIZES = (1, 32)
# The crop fraction the test images are made for: a serving image is
# larger than the model's input, as a photo would be.
SOURCE_CROP = 0.875


def sample_images(image_size, count=32, quality=90):
    """`count` JPEG files (bytes) of the embedded digits, upscaled to
    `image_size / 0.875` pixels, so that serving resizes and crops them."""
    import tensorflow as tf

    from keras_eca.finetune import data as finetune_data

    side = int(round(image_size / SOURCE_CROP))
    images, _ = finetune_data.load_digits(side)
    return [
        tf.io.encode_jpeg(tf.constant(image), quality=quality).numpy()
        for image in images[:count]
    ]


def serving_latency(
    run_dir, batch_sizes=DEFAULT_BATCH_SIZES, repeats=20, warmup=3, images=None
):
    """Latency of the bytes-in, names-out signature of a run's SavedModel.

    Args:
        run_dir: a `keras-eca finetune` run folder (or its `saved_model/`).
        batch_sizes: images per call.
        repeats: timed calls per batch size.
        warmup: untimed calls first (tracing, allocations).
        images: encoded images to serve (cycled); defaults to
            `sample_images` at the run's image size.

    Returns:
        A dict: `image_size`, `source_image_size` and `batches`:
        `{batch: {median_ms, min_ms, max_ms, images_per_s}}`.
    """
    import tensorflow as tf

    from keras_eca.finetune import serving

    for name, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(
                f"`{name}` must be an integer >= {low}. Received: {name}={value!r}"
            )
    if not batch_sizes or any(
        not isinstance(b, int) or b < 1 for b in batch_sizes
    ):
        raise ValueError(
            "`batch_sizes` must be positive integers. "
            f"Received: batch_sizes={batch_sizes!r}"
        )
    saved_model = serving.find_saved_model(run_dir)
    report = saved_model.parent / "report.json"
    image_size = 224
    if report.is_file():
        image_size = json.loads(report.read_text())["preprocessing"]["image_size"]
    loaded = serving.load_serving_model(saved_model)
    if images is None:
        images = sample_images(image_size, count=max(batch_sizes))
    result = {
        "run_dir": str(run_dir),
        "image_size": image_size,
        "source_image_size": int(round(image_size / SOURCE_CROP)),
        "repeats": repeats,
        "batches": {},
    }
    for batch in batch_sizes:
        data = tf.constant([images[i % len(images)] for i in range(batch)])
        seconds = []
        for call in range(warmup + repeats):
            start = time.perf_counter()
            names = loaded.serve_bytes(data)["top_class_names"].numpy()
            elapsed = time.perf_counter() - start
            if call >= warmup:
                seconds.append(elapsed)
        if names.shape[0] != batch:
            raise RuntimeError(
                f"The SavedModel answered {names.shape[0]} names for {batch} images."
            )
        median = statistics.median(seconds)
        result["batches"][batch] = {
            "median_ms": 1000 * median,
            "min_ms": 1000 * min(seconds),
            "max_ms": 1000 * max(seconds),
            "images_per_s": batch / median,
        }
    return result


def format_latency(result):
    lines = [
        f"SavedModel serving (JPEG bytes of {result['source_image_size']} px "
        f"in, class names out; model input {result['image_size']} px), "
        f"median of {result['repeats']} calls:"
    ]
    for batch, row in result["batches"].items():
        lines.append(
            f"  batch {batch:>3}: {row['median_ms']:8.2f} ms "
            f"({row['min_ms']:.2f}..{row['max_ms']:.2f})  "
            f"{row['images_per_s']:8.1f} img/s"
        )
    return "\n".join(lines)


def time_default_finetune(output=None, extra_args=(), timeout=1800):
    """Runs `keras-eca finetune --output OUTPUT` (defaults: the embedded
    digits, eca_resnet18, 32 px, offline -> random initialisation) in a
    new process and times it.

    Args:
        output: the run folder; a temporary one (removed) when `None`.
        extra_args: more command-line arguments.
        timeout: seconds before the run is stopped.

    Returns:
        A dict: `wall_seconds` (the whole command: imports, training,
        export, figures), `accuracy`, `report_seconds` (the run's own
        timing), `epochs`, `weights` (what the run started from), `files`,
        and `output` (`None` for a temporary folder).
    """
    with tempfile.TemporaryDirectory() as scratch:
        target = pathlib.Path(output) if output else pathlib.Path(scratch) / "run"
        command = [
            sys.executable, "-m", "keras_eca.cli", "finetune",
            "--output", str(target), *extra_args,
        ]
        start = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        report = json.loads((target / "report.json").read_text())
    return {
        "command": "keras-eca finetune --output RUN_DIR "
        + " ".join(extra_args),
        "wall_seconds": wall,
        "accuracy": report["accuracy"],
        "report_seconds": report["seconds"],
        "epochs": len(report["history"]),
        "weights": report["weights"]["loaded"] or "random initialisation",
        "files": report["files"],
        "output": str(output) if output else None,
        "stdout": done.stdout,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dir", nargs="?", help="a keras-eca finetune run folder"
    )
    parser.add_argument(
        "--finetune", action="store_true",
        help="first time `keras-eca finetune --output RUN_DIR` with its "
        "defaults (a temporary folder without RUN_DIR)",
    )
    parser.add_argument(
        "--batch-sizes", type=batch_sizes_argument, default=DEFAULT_BATCH_SIZES,
        metavar="B1,B2",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.run_dir and not args.finetune:
        parser.error("give a RUN_DIR, or --finetune")
    results = {}
    run_dir = args.run_dir
    with tempfile.TemporaryDirectory() as scratch:
        if args.finetune:
            run_dir = run_dir or str(pathlib.Path(scratch) / "run")
            timed = time_default_finetune(run_dir)
            results["finetune"] = {
                k: v for k, v in timed.items() if k != "stdout"
            }
            print(
                f"keras-eca finetune (defaults): {timed['wall_seconds']:.1f} s "
                f"wall, validation accuracy {timed['accuracy']:.2%}, "
                f"{timed['epochs']} epochs from {timed['weights']}",
                flush=True,
            )
        latency = serving_latency(
            run_dir, batch_sizes=args.batch_sizes, repeats=args.repeats,
            warmup=args.warmup,
        )
        results["serving"] = latency
        print(format_latency(latency))
    return results


if __name__ == "__main__":
    main()
