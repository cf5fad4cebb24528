"""Detection benchmarks: AP50 against training steps on the synthetic set,
and a detector's training step with an attention backbone against the
plain one.

    python -m keras_eca.benchmark.detection ap-vs-steps [--max-steps 3000]
    python -m keras_eca.benchmark.detection step-ratio [--repeats 5]

`ap-vs-steps` trains a RetinaNet on ECA-ResNet-18 (from scratch: there
are no pretrained weights offline) on the embedded synthetic set and
evaluates COCO AP50 (pycocotools) on its validation split every
`--eval-every` steps, until AP50 reaches `--target` or `--max-steps`.
`step-ratio` times training steps of the same detector with each
backbone (default: RetinaNet on ECA-ResNet-50 against ResNet-50 at 512 px,
the paper's Table 5 detector), interleaved call by call so the machine's
noise cancels, and reports the ratio of the fastest (and of the median)
steps/s.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np

import keras

from keras_eca import files
from keras_eca.detection import data as data_lib
from keras_eca.detection import detectors

AP50_TARGET = 0.5
STEP_RATIO_TARGET = 0.97


def ap_vs_steps(
    *, detector="retinanet", backbone="eca_resnet18", image_size=128,
    batch_size=8, learning_rate=1e-3, max_steps=3000, eval_every=250,
    target=AP50_TARGET, train_examples=2000, eval_examples=200, seed=0,
    stream=sys.stdout,
):
    """Trains until AP50 >= target; returns the evaluation rows."""
    keras.utils.set_random_seed(seed)
    train = data_lib.resolve_detection_source(
        "synthetic", "train", num_examples=train_examples, seed=seed
    )
    validation = data_lib.resolve_detection_source(
        "synthetic", "validation", num_examples=eval_examples, seed=seed
    )
    model = detectors.build_detector(
        detector, backbone, train.num_classes, image_size=image_size
    )
    detectors.compile_detector(model, detectors.default_optimizer(learning_rate))
    steps_per_epoch = data_lib.steps_per_epoch(train, batch_size)
    rows = []
    done, seconds, next_eval = 0, 0.0, eval_every
    stream.write(
        f"{detector} on {backbone}, {image_size} px, batch {batch_size}, "
        f"Adam {learning_rate:g}; {train.num_examples} training images, "
        f"AP50 on {validation.num_examples} every {eval_every} steps\n"
    )
    while done < max_steps:
        start, epoch = done % steps_per_epoch, done // steps_per_epoch
        # Within one epoch at a time: each chunk is a pure function of its
        # (epoch, step), as in a resumed run.
        taken = min(next_eval, max_steps) - done
        taken = min(taken, steps_per_epoch - start)
        dataset = data_lib.training_dataset(
            train, image_size=image_size, batch_size=batch_size, seed=seed,
            epoch=epoch, start_step=start, steps=start + taken, max_boxes=8,
        )
        began = time.perf_counter()
        history = model.fit(dataset, epochs=1, verbose=0)
        seconds += time.perf_counter() - began
        done += taken
        if done < min(next_eval, max_steps):
            continue
        next_eval += eval_every
        metrics = detectors.evaluate_detector(
            model, validation, batch_size=16
        )
        row = {
            "steps": done,
            "images": done * batch_size,
            "train_seconds": round(seconds, 1),
            "loss": float(history.history["loss"][-1]),
            **{k: round(v, 4) for k, v in metrics.items()},
        }
        rows.append(row)
        stream.write(
            f"step {done:5d}  {seconds / 60:6.1f} min  loss {row['loss']:.3f}  "
            f"AP {row['AP']:.3f}  AP50 {row['AP50']:.3f}  AP75 {row['AP75']:.3f}\n"
        )
        stream.flush()
        if row["AP50"] >= target:
            break
    return rows


def step_ratio(
    *, detector="retinanet", backbones=("eca_resnet50", "resnet50"),
    image_size=512, batch_size=2, repeats=5, steps=2, seed=0, stream=sys.stdout,
):
    """Steps/s of each backbone's detector, interleaved; the fastest and
    median of `repeats` timings of `steps` steps each (one `fit` call of
    `steps` steps on one repeated batch; KerasCV's `train_step` does not
    take `train_on_batch`'s `(x, y, sample_weight)`)."""
    import tensorflow as tf

    source = data_lib.resolve_detection_source(
        "synthetic", "train", num_examples=batch_size * 2, seed=seed
    )
    images, targets = next(iter(data_lib.training_dataset(
        source, image_size=image_size, batch_size=batch_size, seed=seed,
        epoch=0, max_boxes=8,
    )))
    batches = tf.data.Dataset.from_tensors((images, targets)).repeat()
    models = {}
    for name in backbones:
        keras.utils.set_random_seed(seed)
        model = detectors.build_detector(
            detector, name, source.num_classes, image_size=image_size
        )
        detectors.compile_detector(model, detectors.default_optimizer())
        model.fit(batches, steps_per_epoch=2, verbose=0)  # trace, warm up
        models[name] = model
    timings = {name: [] for name in backbones}
    for _ in range(repeats):
        for name, model in models.items():
            began = time.perf_counter()
            model.fit(batches, steps_per_epoch=steps, verbose=0)
            timings[name].append(steps / (time.perf_counter() - began))
    base = backbones[-1]
    result = {
        "detector": detector, "image_size": image_size, "batch_size": batch_size,
        "repeats": repeats, "steps": steps,
        "steps_per_second": {k: [round(v, 4) for v in t] for k, t in timings.items()},
    }
    for name in backbones[:-1]:
        result[f"{name}/{base} fastest"] = round(max(timings[name]) / max(timings[base]), 4)
        result[f"{name}/{base} median"] = round(
            statistics.median(timings[name]) / statistics.median(timings[base]), 4
        )
    for name, values in timings.items():
        stream.write(
            f"{name:16s} fastest {max(values):.3f} steps/s, median "
            f"{statistics.median(values):.3f}\n"
        )
    for key, value in result.items():
        if key.endswith(("fastest", "median")):
            stream.write(f"{key}: {value:.3f} (target >= {STEP_RATIO_TARGET})\n")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ap = commands.add_parser("ap-vs-steps", help="AP50 against training steps")
    ap.add_argument("--detector", default="retinanet", choices=detectors.DETECTOR_NAMES)
    ap.add_argument("--backbone", default="eca_resnet18")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--target", type=float, default=AP50_TARGET)
    ap.add_argument("--train-examples", type=int, default=2000)
    ap.add_argument("--eval-examples", type=int, default=200)
    ap.add_argument("--output", help="write the rows as JSON here")
    ratio = commands.add_parser("step-ratio", help="ECA vs plain training step")
    ratio.add_argument("--detector", default="retinanet", choices=detectors.DETECTOR_NAMES)
    # Default: the ECA paper's detector backbone (Table 5: RetinaNet R-50).
    ratio.add_argument("--backbones", nargs="+", default=["eca_resnet50", "resnet50"],
                       help="attention backbones, then the plain one last")
    ratio.add_argument("--image-size", type=int, default=512)
    ratio.add_argument("--batch-size", type=int, default=2)
    ratio.add_argument("--repeats", type=int, default=5)
    ratio.add_argument("--steps", type=int, default=2)
    ratio.add_argument("--output", help="write the result as JSON here")
    args = vars(parser.parse_args(argv))
    command, output = args.pop("command"), args.pop("output")
    if command == "ap-vs-steps":
        result = ap_vs_steps(**args)
    else:
        args["backbones"] = tuple(args["backbones"])
        result = step_ratio(**args)
    if output:
        files.write_text_atomically(output, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
