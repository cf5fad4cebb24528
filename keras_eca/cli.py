"""The `keras-eca` command line: parses arguments, calls the library, prints.

Only the standard library is imported here and at `import keras_eca`, so
`--help` answers without loading TensorFlow; each command imports what it
needs when it runs.
"""

import argparse
import os
import sys
import tempfile

from keras_eca._checks import batch_sizes_argument

# What a user can cause (bad value, missing or unreadable file,
# keras_eca.checkpoints.UnsafeCheckpointError): one line, no traceback.
USER_ERRORS = (ValueError, OSError)


def _demo(args):
    from keras_eca import demo

    demo.check_backbone(args.backbone)
    print(
        f"keras_eca demo: {args.backbone} with every attention type, "
        f"{args.image_size}x{args.image_size} random input, offline."
    )
    rows = demo.attention_overhead(
        args.backbone, image_size=args.image_size, batch_size=args.batch_size
    )
    print(demo.format_table(rows, args.backbone))


def _list_attention(args):
    from keras_eca import layers

    for name in layers.list_attention():
        cls, defaults = layers.attention_defaults(name)
        extra = f" {defaults}" if defaults else ""
        print(f"{name:<10} {cls.__name__}{extra}")


def _list_models(args):
    from keras_eca import applications

    for name in applications.list_models(args.pattern):
        print(name)


def _summary(args):
    from keras_eca import applications
    from keras_eca import complexity

    unknown = [n for n in args.models if n not in applications.list_models()]
    if unknown:
        raise ValueError(
            f"unknown model(s) {unknown}; see `keras-eca list-models`."
        )
    rows = complexity.summary_table(args.models, image_size=args.image_size)
    print(complexity.format_summary(rows, image_size=args.image_size))


def _list_weights(args):
    from keras_eca.applications import weights

    keys = weights.list_weights(args.pattern)
    if not keys:
        raise ValueError(
            f"no weights match {args.pattern!r}; see `keras-eca list-weights`."
        )
    hashed = {
        "pinned": "sha256",
        "hub": "hub sha256",
        "prefix": "sha256 prefix",
        "unpublished": "unverified",
        "manual": "manual",
    }
    hosts = {
        "gdrive": "Google Drive",
        "hub": "Hugging Face hub",
        "url": "url",
        "manual": "manual download",
    }
    rows = [("weights", "top-1", "size", "source", "hash", "license")]
    for key in keys:
        entry = weights.WEIGHTS[key]
        size = entry["preprocessing"]["input_size"]
        rows.append(
            (
                key,
                f"{entry['top1']:.2f}",
                str(size),
                hosts.get(entry["host"], entry["host"]),
                hashed[entry["hash_source"]],
                entry["license"] or "none",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _trainable(model):
    import math

    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _synthetic_image(size):
    """A fixed RGB test image in [0, 255]: two gradients and a disc."""
    import numpy as np

    ramp = np.linspace(0.0, 255.0, size, dtype="float32")
    y, x = np.meshgrid(ramp, ramp, indexing="ij")
    centre = (size - 1) / 2.0
    disc = ((np.arange(size)[:, None] - centre) ** 2 + (
        np.arange(size)[None, :] - centre
    ) ** 2) < (size / 4.0) ** 2
    blue = np.where(disc, 230.0, 40.0).astype("float32")
    return np.stack([x, y, blue], axis=-1)[None]


def _kernel_sizes(text):
    """`--kernel-sizes`: None, 'adaptive' or a list of ints."""
    if text is None or text == "adaptive":
        return text
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise ValueError(
            "--kernel-sizes must be 'adaptive' or comma-separated integers, "
            f"e.g. 3,5,5,7. Received: {text!r}"
        ) from None


def _check_output(output, overwrite):
    """Refuses an output that cannot be written, before the conversion."""
    if not output.endswith(".weights.h5"):
        raise ValueError(
            f"--output must end in `.weights.h5`. Received: {output!r}"
        )
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"the folder of {output!r} does not exist; create {folder!r} "
            "first."
        )
    if os.path.isdir(output):
        raise IsADirectoryError(f"{output!r} is a folder.")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(
            f"{output!r} exists; pass --overwrite to replace it."
        )
    try:  # The staged file is written there: try it now.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".keras-eca-"):
            pass
    except OSError as error:
        raise PermissionError(
            f"cannot write to {folder!r}: {error.strerror or error}."
        ) from None


def _convert(args):
    checkpoint = args.checkpoint
    if not os.path.isfile(checkpoint):  # before seconds of imports
        raise FileNotFoundError(f"{checkpoint!r} is not an existing file.")
    import time

    import numpy as np

    import keras
    from keras_eca import applications
    from keras_eca import files
    from keras_eca.applications.imagenet_classes import IMAGENET_CLASSES

    if args.model not in applications.list_models():
        raise ValueError(
            f"unknown model {args.model!r}; see `keras-eca list-models`."
        )
    output = args.output or os.path.join(
        os.path.dirname(os.path.abspath(checkpoint)),
        f"{args.model}.weights.h5",
    )
    kernel_sizes = _kernel_sizes(args.kernel_sizes)
    _check_output(output, args.overwrite)
    size = args.image_size
    start = time.perf_counter()
    model = applications.build_model(
        args.model,
        weights=checkpoint,
        input_shape=(size, size, 3),
        classes=args.classes,
        classifier_activation=None,
        kernel_sizes=kernel_sizes,
    )
    load_time = time.perf_counter() - start
    with files.staged_path(output) as staged:
        model.save_weights(staged)

    image = applications.preprocess_input(_synthetic_image(size))
    logits = keras.ops.convert_to_numpy(model(image, training=False))[0]
    top5 = np.argsort(-logits)[:5]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    print(f"wrote {output} ({os.path.getsize(output) / 2**20:.1f} MiB)")
    print(
        f"model {args.model}: {model.count_params():,} weights "
        f"({_trainable(model):,} trainable), loaded in {load_time:.2f} s"
    )
    print(
        f"synthetic {size}x{size} image -> output shape "
        f"{tuple(int(d) for d in (1,) + tuple(logits.shape))}, "
        f"max|logit| {np.abs(logits).max():.4f}"
    )
    print("top-5:")
    for index in top5:
        name = " ".join(IMAGENET_CLASSES[index]) if len(logits) == 1000 else ""
        print(f"  {index:>5d}  p={probabilities[index]:.4f}  {name}".rstrip())


def _pair(text):
    candidate, sep, baseline = text.partition(":")
    if not sep or not candidate or not baseline:
        raise argparse.ArgumentTypeError(
            f"expected CANDIDATE:BASELINE, e.g. eca_resnet50:resnet50; got {text!r}"
        )
    return candidate, baseline


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer; got {text!r}"
        )
    return value


def _benchmark(args):
    if args.deployment:
        from keras_eca.benchmark import deployment

        argv = ["--output", os.path.join(args.output_dir, "deployment.json")]
        for candidate, baseline in args.pair or ():
            argv += ["--pair", f"{candidate}:{baseline}"]
        if args.pair:
            argv += ["--image-size", str(args.image_size), "--batch-sizes",
                     ",".join(str(b) for b in args.inference_batch_sizes),
                     "--formats", "tflite,tflite_int8,tf"]
        result = deployment.main(argv)
        if args.check and result:
            raise SystemExit(f"keras-eca benchmark: {result} target(s) missed")
        return
    if args.finetune:
        from keras_eca.benchmark import serving

        serving.main(["--finetune"])
        return
    if args.input_pipeline or args.training_harness:
        repeats = ["--repeats", str(args.repeats)]
        if args.input_pipeline:
            from keras_eca.benchmark import input_pipeline

            input_pipeline.main(repeats)
        if args.training_harness:
            from keras_eca.benchmark import training_harness

            training_harness.main(repeats)
        return
    from keras_eca import benchmark

    if args.pair:
        kinds = ["inference", "training"] + ([] if args.no_memory else ["memory"])
        # Targets of None: the ratios are reported, not judged.
        comparisons = [
            benchmark.Comparison(c, b, dict.fromkeys(kinds)) for c, b in args.pair
        ]
    else:
        comparisons = benchmark.DEFAULT_COMPARISONS
    settings = benchmark.Settings(
        image_size=args.image_size,
        inference_batch_sizes=args.inference_batch_sizes,
        training_batch_size=args.training_batch_size,
        repeats=args.repeats,
        warmup=args.warmup,
        min_seconds=args.min_seconds,
        memory_steps=args.memory_steps,
        memory_repeats=args.memory_repeats,
        jit_compile=args.jit_compile,
        dtype_policy=args.dtype_policy,
    )
    result = benchmark.run_benchmark(
        comparisons,
        settings,
        memory=not args.no_memory,
        startup=not args.no_startup,
        report=lambda line: print(line, flush=True),
    )
    json_path, png_path = benchmark.save_results(result, args.output_dir)
    print()
    print(benchmark.format_report(result))
    print(f"wrote {json_path} and {png_path}")
    missed = [
        row for row in benchmark.report.all_verdicts(result) if not row["met"]
    ]
    if args.check and missed:
        raise SystemExit(f"keras-eca benchmark: {len(missed)} target(s) missed")


def _profile_attention(args):
    from keras_eca.benchmark import layer_profile

    profile = layer_profile.profile_attention(
        args.model,
        baseline=args.baseline,
        batch_size=args.batch_size,
        image_size=args.image_size,
        repeats=args.repeats,
        report=lambda line: print(line, flush=True),
    )
    print()
    print(layer_profile.format_profile(profile))


def _key_value(text):
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE, e.g. epochs=10; got {text!r}"
        )
    return text


def _run_options(args):
    """The `_add_run_options` flags as keyword arguments."""
    names = ("image_size", "batch_size", "epochs", "steps_per_epoch", "seed",
             "mixed_precision", "strategy", "tpu", "backup_every")
    return dict({name: getattr(args, name) for name in names}, overrides=args.set or ())


def _train(args):
    from keras_eca import training

    training.train(
        args.model,
        args.dataset,
        args.output,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        recipe=args.recipe,
        sync_batchnorm=args.sync_batchnorm,
        **_run_options(args),
        weights=args.weights,
        validation_fraction=args.validation_fraction,
        deterministic=args.deterministic,
    )


def _evaluate(args):
    from keras_eca import training

    training.evaluate(
        args.model,
        args.weights,
        args.dataset,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        split=args.split,
        image_size=args.image_size,
        batch_size=args.batch_size,
    )


def _weights_flag(text):
    """`--weights none` (or `random`) is random initialisation."""
    return None if text.lower() in ("none", "random") else text


def _unfreeze(text):
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 4:
        raise argparse.ArgumentTypeError(
            f"expected 'all' or a number of top stages from 0 to 4; got {text!r}"
        )
    return value


def _quiet_tensorflow():
    # TensorFlow's C++ start-up notes (no CUDA driver, CPU features) are
    # not the command's output; an explicit setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _finetune(args):
    _quiet_tensorflow()
    from keras_eca import finetune

    finetune.finetune(
        args.dataset,
        model=args.model,
        weights=args.weights,
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        output=args.output,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        validation_fraction=args.validation_fraction,
        unfreeze=args.unfreeze,
        head_epochs=args.head_epochs,
        learning_rate=args.learning_rate,
        backbone_learning_rate=args.backbone_learning_rate,
        flip=args.flip,
        class_weights=not args.no_class_weights,
        patience=args.patience,
        overwrite=args.overwrite,
    )


def _predict(args):
    for image in args.images:  # before seconds of imports
        if not os.path.isfile(image):
            raise FileNotFoundError(f"{image!r} is not an existing file.")
    _quiet_tensorflow()
    from keras_eca import finetune

    results = finetune.predict(args.model_path, args.images, top=args.top)
    width = max(len(name) for result in results for name in result["classes"])
    for image, result in zip(args.images, results):
        print(image)
        for name, probability in zip(result["classes"], result["probabilities"]):
            print(f"  {name:<{width}}  {probability:.4f}")


def _quantize(args):
    if not os.path.isdir(args.run_dir):  # before seconds of imports
        raise FileNotFoundError(
            f"{args.run_dir!r} is not a keras-eca finetune run folder."
        )
    _quiet_tensorflow()
    from keras_eca.finetune import quantize

    quantize.quantize_run(
        args.run_dir,
        output=args.output,
        calibration_steps=args.calibration_steps,
        timing_calls=args.timing_calls,
        say=lambda text: print(text, flush=True),
    )


def _detect(args):
    for image in args.images:  # before seconds of imports
        if not os.path.isfile(image):
            raise FileNotFoundError(f"{image!r} is not an existing file.")
    if not os.path.exists(args.model):
        raise FileNotFoundError(
            f"--model {args.model!r} is neither a detect-train run folder nor "
            "a .keras file."
        )
    _quiet_tensorflow()
    import pathlib

    from keras_eca import detection
    from keras_eca.detection import detectors
    from keras_eca.visualization.boxes import write_detection_figure

    model, settings = detection.load_run(args.model)
    names = args.class_names.split(",") if args.class_names else settings.get(
        "class_names"
    )
    results = detectors.detect_files(
        model, args.images, confidence_threshold=args.threshold
    )
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for image, result in zip(args.images, results):
        target = output / f"{pathlib.Path(image).stem}_boxes.png"
        write_detection_figure(
            result["image"], result["boxes"], result["classes"], target,
            scores=result["scores"], class_names=names,
            title=f"{pathlib.Path(image).name}: {len(result['boxes'])} boxes",
        )
        print(f"{image}: {len(result['boxes'])} boxes -> {target}")
        for box, score, cls in zip(result["boxes"], result["scores"], result["classes"]):
            label = names[cls] if names and 0 <= cls < len(names) else str(cls)
            corners = ", ".join(f"{v:.1f}" for v in box)
            print(f"  {label}  {score:.3f}  [{corners}]")


def _detect_train(args):
    _quiet_tensorflow()
    from keras_eca import detection

    detection.train_detector(
        args.detector,
        args.backbone,
        args.dataset,
        args.output,
        api=args.api,
        weights=args.weights,
        recipe=args.recipe,
        data_dir=args.data_dir,
        **_run_options(args),
        train_examples=args.train_examples,
        eval_split=None if args.eval_split == "none" else args.eval_split,
        eval_examples=args.eval_examples,
    )


def _detect_eval(args):
    if not os.path.exists(args.model):
        raise FileNotFoundError(
            f"--model {args.model!r} is neither a run folder nor a .keras file."
        )
    _quiet_tensorflow()
    import keras

    from keras_eca import detection
    from keras_eca.training import run_folder

    model, settings = detection.load_run(args.model)
    dataset = args.dataset or settings.get("dataset")
    if dataset is None:
        raise ValueError(
            "--dataset is needed with a bare .keras file (a run folder "
            "names its own)."
        )
    source = detection.resolve_detection_source(
        dataset, args.split, data_dir=args.data_dir or settings.get("data_dir"),
        num_examples=args.num_examples,
        seed=(settings.get("recipe") or {}).get("seed", 0),
    )
    if settings.get("class_names") and len(settings["class_names"]) != source.num_classes:
        raise ValueError(
            f"The detector was trained on {len(settings['class_names'])} "
            f"classes, {dataset!r} has {source.num_classes}."
        )
    bars = []

    def progress(done, total):  # Keras' bar, with its ETA
        if not bars:
            bars.append(keras.utils.Progbar(total, unit_name="batch"))
        bars[0].update(done)

    metrics = detection.evaluate_detector(
        model, source, batch_size=args.batch_size, progress=progress,
    )
    print(
        f"COCO metrics of {args.model} on {dataset} {args.split} "
        f"({source.num_examples} images):"
    )
    for name, value in metrics.items():
        print(f"  {name:<10} {value:.4f}" if value >= 0 else f"  {name:<10} n/a (no such objects)")
    if args.output:
        run_folder.write_json(args.output, metrics)
        print(f"Written: {args.output}")


def _list_recipes(args):
    if args.detection:
        from keras_eca.detection import recipes

        names, get = recipes.list_detection_recipes(), recipes.get_detection_recipe
    else:
        from keras_eca import training

        names, get = training.list_recipes(), training.get_recipe
    for name in names:
        print(get(name).describe() if args.verbose else name)


def _add_run_options(parser, *, set_example, image_size_help=None):
    """The recipe, strategy and resume flags every training command takes."""
    parser.add_argument("--image-size", type=_positive_int, help=image_size_help)
    parser.add_argument(
        "--batch-size", type=_positive_int,
        help="global batch size (all replicas); the learning rate follows "
        "the recipe's scaling rule",
    )
    parser.add_argument("--epochs", type=_positive_int)
    parser.add_argument(
        "--steps-per-epoch", type=_positive_int,
        help="default: one pass over the training data",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--mixed-precision",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        help="default: the recipe's (auto: mixed_float16 on GPU, "
        "mixed_bfloat16 on TPU, float32 on CPU)",
    )
    parser.add_argument(
        "--strategy", default="auto",
        choices=("auto", "one_device", "mirrored", "multi_worker", "tpu"),
        help="auto: all local GPUs, else one device (default)",
    )
    parser.add_argument("--tpu", help="TPU resolver address (with --strategy tpu)")
    parser.add_argument(
        "--backup-every", type=_positive_int, metavar="N",
        help="write an exact backup every N steps (and after each epoch)",
    )
    parser.add_argument(
        "--set", action="append", type=_key_value, metavar="KEY=VALUE",
        help=f"override a recipe field (repeatable), e.g. --set {set_example}",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-eca",
        description="ECA-Net, SE and Shuffle Attention for Keras 3.",
        epilog="An error a user can fix (a bad value, a missing or unsafe "
        "file) prints one `keras-eca <command>: ...` message and exits with "
        "status 1; add --traceback after the command to see the full Python "
        "traceback instead. Any other exception is a bug and always shows "
        "its traceback.",
    )
    # Every command takes --traceback (after the command name).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--traceback",
        action="store_true",
        help="on an error, show the full Python traceback instead of one line",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="build a backbone with each attention type and run it",
    )
    demo.add_argument(
        "--backbone",
        default="resnet50",
        help="a model name of `keras-eca list-models`, e.g. resnet18 or "
        "mobilenet_v2 (default: resnet50)",
    )
    demo.add_argument("--image-size", type=_positive_int, default=224)
    demo.add_argument("--batch-size", type=_positive_int, default=1)
    demo.set_defaults(run=_demo)

    listing = commands.add_parser(
        "list-attention", parents=[common], help="print attention names"
    )
    listing.set_defaults(run=_list_attention)

    models = commands.add_parser(
        "list-models", parents=[common], help="print model names"
    )
    models.add_argument("pattern", nargs="?", default=None, help="e.g. '*eca*'")
    models.set_defaults(run=_list_models)

    summary = commands.add_parser(
        "summary",
        parents=[common],
        help="print parameters, MACs, the ECA paper's FLOPs and the "
        "attention overhead of models",
    )
    summary.add_argument(
        "models", nargs="+", help="registry names, e.g. resnet50"
    )
    summary.add_argument("--image-size", type=_positive_int, default=224)
    summary.set_defaults(run=_summary)

    weights = commands.add_parser(
        "list-weights",
        parents=[common],
        help="print the pretrained weights table (key, top-1, input size, "
        "source, hash, license)",
    )
    weights.add_argument(
        "pattern", nargs="?", default=None, help="e.g. 'ecaresnet*'"
    )
    weights.set_defaults(run=_list_weights)

    convert = commands.add_parser(
        "convert",
        parents=[common],
        help="convert a PyTorch / safetensors checkpoint to .weights.h5 and "
        "check it on a synthetic image",
    )
    convert.add_argument(
        "checkpoint",
        help="a .pth / .pth.tar / .bin / .safetensors file (or a Keras "
        ".weights.h5 / .keras file)",
    )
    convert.add_argument(
        "--model", required=True, help="registry name, e.g. eca_resnet50"
    )
    convert.add_argument(
        "--output",
        default=None,
        help="the .weights.h5 to write; default: <model>.weights.h5 next to "
        "the checkpoint",
    )
    convert.add_argument("--overwrite", action="store_true")
    convert.add_argument(
        "--classes", type=_positive_int, default=1000,
        help="classifier outputs of the checkpoint (default 1000)",
    )
    convert.add_argument(
        "--kernel-sizes",
        default=None,
        help="ECA kernel size per stage, e.g. 3,5,5,7, or 'adaptive'",
    )
    convert.add_argument(
        "--image-size", type=_positive_int, default=224,
        help="side of the synthetic test image, at least 32 (default 224)",
    )
    convert.set_defaults(run=_convert)

    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a model with a paper's recipe; the same command with the "
        "same --output resumes a killed run at the step it stopped",
    )
    train.add_argument("--model", required=True, help="see `keras-eca list-models`")
    train.add_argument(
        "--dataset", required=True,
        help="a TFDS name (imagenet2012, tf_flowers, ...) or a folder of "
        "class subfolders",
    )
    train.add_argument("--data-dir", help="TFDS data folder")
    train.add_argument(
        "--manual-dir", help="TFDS manual download folder (imagenet2012's tars)"
    )
    train.add_argument(
        "--recipe", help="see `keras-eca list-recipes`; default: the "
        "architecture's paper recipe",
    )
    _add_run_options(train, set_example="label_smoothing=0.1")
    train.add_argument(
        "--sync-batchnorm", action="store_true",
        help="BatchNorm statistics over the global batch (small per-replica "
        "batches)",
    )
    train.add_argument(
        "--validation-fraction", type=float, metavar="F",
        help="hold out this stratified fraction of a folder for validation "
        "(TFDS datasets use their validation split)",
    )
    train.add_argument("--weights", help="initial weights, as for the builders")
    train.add_argument(
        "--deterministic", action="store_true",
        help="also make TensorFlow's ops deterministic (slower on GPU)",
    )
    train.add_argument("--output", required=True, metavar="RUN_DIR")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="top-1 / top-5 with the weights' own evaluation preprocessing, "
        "beside the published figures",
    )
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument(
        "--weights", required=True,
        help="a table name (`keras-eca list-weights`), imagenet, or a file "
        "such as a run's model.keras",
    )
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--manual-dir")
    evaluate.add_argument("--split", default="validation")
    evaluate.add_argument("--image-size", type=_positive_int)
    evaluate.add_argument("--batch-size", type=_positive_int, default=64)
    evaluate.set_defaults(run=_evaluate)

    finetune = commands.add_parser(
        "finetune",
        parents=[common],
        help="fine-tune a model on your images (default: 1,797 embedded "
        "handwritten digits, offline) and write a run folder: model.keras, "
        "a SavedModel to serve, report.json and figures",
    )
    finetune.add_argument(
        "--dataset", metavar="SOURCE",
        help="a folder of class subfolders (ROOT/<class>/<image>, or "
        "ROOT/train/... beside ROOT/val/...) or a TFDS name; default: the "
        "embedded digits",
    )
    finetune.add_argument(
        "--model", default="eca_resnet18",
        help="see `keras-eca list-models` (default: eca_resnet18)",
    )
    finetune.add_argument(
        "--weights", default="imagenet", type=_weights_flag,
        help="imagenet (default; offline without them: random "
        "initialisation), a weights tag or key (`keras-eca list-weights`), "
        "a local file, or none",
    )
    finetune.add_argument(
        "--image-size", type=_positive_int,
        help="default: 32 for the digits, else the weights' own input size",
    )
    finetune.add_argument(
        "--batch-size", type=_positive_int, help="default: 32"
    )
    finetune.add_argument(
        "--epochs", type=_positive_int,
        help="both phases together; default: 2 for the digits, else 10",
    )
    finetune.add_argument("--seed", type=int, default=0, help="default: 0")
    finetune.add_argument("--output", required=True, metavar="RUN_DIR")
    finetune.add_argument("--data-dir", help="TFDS data folder")
    finetune.add_argument("--manual-dir", help="TFDS manual download folder")
    finetune.add_argument(
        "--validation-fraction", type=float, metavar="F",
        help="stratified fraction held out for validation when the data "
        "has no validation part (default: 0.2)",
    )
    finetune.add_argument(
        "--unfreeze", type=_unfreeze, default="all", metavar="all|N",
        help="phase 2 trains the whole backbone (all, the default) or its "
        "top N of 4 stages; 0: the classifier only",
    )
    finetune.add_argument(
        "--head-epochs", type=_positive_int, metavar="N",
        help="epochs of phase 1 (default: a third of --epochs)",
    )
    finetune.add_argument(
        "--learning-rate", type=float, metavar="LR",
        help="peak learning rate of the classifier phase (default 1e-3; "
        "2e-3 from random initialisation)",
    )
    finetune.add_argument(
        "--backbone-learning-rate", type=float, metavar="LR",
        help="peak learning rate of phase 2 (default 1e-4)",
    )
    finetune.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, default=None,
        help="random horizontal flips (default: on, off for the digits)",
    )
    finetune.add_argument(
        "--no-class-weights", action="store_true",
        help="do not weigh classes by their share of the training images",
    )
    finetune.add_argument(
        "--patience", type=_positive_int, default=3,
        help="epochs without a better validation loss before a phase stops "
        "(default 3)",
    )
    finetune.add_argument(
        "--overwrite", action="store_true",
        help="write into a non-empty RUN_DIR that holds no finetune run "
        "(same-named files replaced, others kept)",
    )
    finetune.set_defaults(run=_finetune)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="classify images with a finetune run's SavedModel (top classes "
        "and probabilities per image)",
    )
    predict.add_argument(
        "model_path", metavar="RUN_DIR_OR_SAVEDMODEL",
        help="a `keras-eca finetune` run folder or its saved_model/",
    )
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="JPEG, PNG, BMP or GIF files"
    )
    predict.add_argument(
        "--top", type=_positive_int, default=None,
        help="classes per image (default and most: 5, or the number of "
        "classes)",
    )
    predict.set_defaults(run=_predict)

    quantize = commands.add_parser(
        "quantize",
        parents=[common],
        help="int8 TFLite of a finetune run, calibrated on its training "
        "images: accuracy against the float model on its validation images, "
        "the attention gates' error, size and latency",
    )
    quantize.add_argument("run_dir", metavar="RUN_DIR", help="a `keras-eca finetune` run folder")
    quantize.add_argument(
        "--output", default=None,
        help="the .tflite to write (default: RUN_DIR/model_int8.tflite)",
    )
    quantize.add_argument(
        "--calibration-steps", type=_positive_int, default=100,
        help="training images to calibrate on (default 100)",
    )
    quantize.add_argument(
        "--timing-calls", type=int, default=20,
        help="timed batch-1 calls per model (0: no timing; default 20)",
    )
    quantize.set_defaults(run=_quantize)

    detect = commands.add_parser(
        "detect",
        parents=[common],
        help="draw a detector's boxes on images (a .keras KerasCV detector "
        "on a keras_eca backbone; needs the detection extra)",
    )
    detect.add_argument("images", nargs="+", metavar="IMAGE",
                        help="JPEG, PNG, BMP or GIF files")
    detect.add_argument(
        "--model", required=True,
        help="a detect-train run folder (its class names are used) or a "
        "detector's .keras file",
    )
    detect.add_argument("--output", required=True, metavar="DIR",
                        help="where IMAGE_boxes.png files are written")
    detect.add_argument("--threshold", type=float, default=0.5,
                        help="minimum confidence (default: 0.5)")
    detect.add_argument(
        "--class-names",
        help="comma-separated, in class-id order (default: the run's)",
    )
    detect.set_defaults(run=_detect)

    detect_train = commands.add_parser(
        "detect-train",
        parents=[common],
        help="train a KerasCV (or keras-hub) detector on a keras_eca "
        "backbone, with COCO AP after each epoch; the same command with the "
        "same --output resumes a killed run at its step (needs the "
        "detection extra)",
    )
    detect_train.add_argument(
        "--detector", default="retinanet", choices=("retinanet", "yolov8"),
        help="default: retinanet (keras-hub: retinanet only)",
    )
    detect_train.add_argument(
        "--backbone", required=True, help="see `keras-eca list-models`"
    )
    detect_train.add_argument(
        "--weights",
        help="the backbone's initial weights, as for the builders "
        "(imagenet, a weights key, a file); default: random",
    )
    detect_train.add_argument(
        "--dataset", required=True,
        help="synthetic (embedded, offline) or a TFDS detection dataset: "
        "coco/2017, voc/2007, ...",
    )
    detect_train.add_argument("--output", required=True, metavar="RUN_DIR")
    detect_train.add_argument(
        "--api", default="keras_cv", choices=("keras_cv", "keras_hub"),
        help="the detector library (keras_hub needs the keras_hub extra)",
    )
    detect_train.add_argument(
        "--recipe",
        help="see `keras-eca list-recipes --detection`; default: synthetic "
        "for the embedded set, else coco_1x",
    )
    _add_run_options(
        detect_train, set_example="learning_rate=0.02",
        image_size_help="a multiple of 128",
    )
    detect_train.add_argument("--data-dir", help="TFDS data folder")
    detect_train.add_argument(
        "--train-examples", type=_positive_int, metavar="N",
        help="train on the first N images (synthetic: N images drawn; "
        "default 2,000)",
    )
    detect_train.add_argument(
        "--eval-split", default="validation",
        help="split evaluated after each epoch (default: validation; none: "
        "no evaluation)",
    )
    detect_train.add_argument(
        "--eval-examples", type=_positive_int, metavar="N",
        help="evaluate on its first N images (synthetic default: 200)",
    )
    detect_train.set_defaults(run=_detect_train)

    detect_eval = commands.add_parser(
        "detect-eval",
        parents=[common],
        help="COCO AP / AR (pycocotools) of a detect-train run or a .keras "
        "detector on a dataset split",
    )
    detect_eval.add_argument(
        "--model", required=True, metavar="RUN_DIR_OR_KERAS",
        help="a detect-train run folder or a detector's .keras file",
    )
    detect_eval.add_argument(
        "--dataset", help="default: the run's; needed for a bare .keras file"
    )
    detect_eval.add_argument("--split", default="validation")
    detect_eval.add_argument("--data-dir", help="TFDS data folder")
    detect_eval.add_argument(
        "--num-examples", type=_positive_int, metavar="N",
        help="the split's first N images (synthetic: N drawn; default 200)",
    )
    detect_eval.add_argument("--batch-size", type=_positive_int, default=8)
    detect_eval.add_argument(
        "--output", metavar="METRICS_JSON", help="also write the metrics here"
    )
    detect_eval.set_defaults(run=_detect_eval)

    recipes = commands.add_parser(
        "list-recipes", parents=[common], help="the training recipes"
    )
    recipes.add_argument(
        "-v", "--verbose", action="store_true", help="print every field"
    )
    recipes.add_argument(
        "--detection", action="store_true",
        help="the detection recipes (detect-train; needs the detection extra)",
    )
    recipes.set_defaults(run=_list_recipes)

    bench = commands.add_parser(
        "benchmark",
        parents=[common],
        help="interleaved speed and memory of the attention models against "
        "their baselines: ratios, JSON and a bar chart",
    )
    bench.add_argument(
        "--pair",
        action="append",
        type=_pair,
        metavar="CANDIDATE:BASELINE",
        help="compare these instead of the default suite (repeatable); "
        "names from `keras-eca list-models` or keras_resnet50 / "
        "keras_mobilenet_v2",
    )
    bench.add_argument("--image-size", type=_positive_int, default=224)
    bench.add_argument(
        "--inference-batch-sizes", type=batch_sizes_argument, default=(1, 16),
        metavar="B1,B2", help="default: 1,16",
    )
    bench.add_argument("--training-batch-size", type=_positive_int, default=16)
    bench.add_argument("--repeats", type=_positive_int, default=5)
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument(
        "--min-seconds", type=float, default=2.0,
        help="seconds of calls per model and measurement; the models "
        "take turns call by call (default 2)",
    )
    bench.add_argument("--memory-steps", type=_positive_int, default=6)
    bench.add_argument("--memory-repeats", type=_positive_int, default=3)
    bench.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto",
        help="XLA; auto: on with an accelerator, off on CPU",
    )
    bench.add_argument(
        "--dtype-policy",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        default="auto",
        help="auto: mixed_float16 with an accelerator, float32 on CPU",
    )
    bench.add_argument(
        "--input-pipeline", action="store_true",
        help="instead: the training input pipeline against a hand-written "
        "tf.data one, decode-and-crop's speed-up, and the evaluation resize "
        "against PIL",
    )
    bench.add_argument(
        "--training-harness", action="store_true",
        help="instead: keras-eca train's steps/s against a bare model.fit",
    )
    bench.add_argument(
        "--finetune", action="store_true",
        help="instead: the first command (keras-eca finetune with its "
        "defaults) timed in a fresh process, its accuracy, and its "
        "SavedModel's serving latency (JPEG bytes in, names out) at batch "
        "1 and 32",
    )
    bench.add_argument(
        "--deployment", action="store_true",
        help="instead: serving speed of the exported inference forms "
        "(TFLite float32 and int8, SavedModel) against their plain "
        "backbones, fastest of interleaved calls",
    )
    bench.add_argument("--no-memory", action="store_true")
    bench.add_argument(
        "--no-startup", action="store_true",
        help="skip the import and build time checks",
    )
    bench.add_argument("--output-dir", default="benchmark_results")
    bench.add_argument(
        "--check", action="store_true",
        help="exit with status 1 when a target is missed",
    )
    bench.set_defaults(run=_benchmark)

    prof = commands.add_parser(
        "profile-attention",
        parents=[common],
        help="time every attention site of a model and its parts (pooling, "
        "gate, rescale, shuffle) against BatchNorm and the plain forward "
        "pass (TensorFlow)",
    )
    prof.add_argument("model", help="e.g. eca_resnet50")
    prof.add_argument(
        "--baseline",
        help="a model name (default: the model itself without attention)",
    )
    prof.add_argument("--batch-size", type=_positive_int, default=16)
    prof.add_argument("--image-size", type=_positive_int, default=224)
    prof.add_argument("--repeats", type=_positive_int, default=5)
    prof.set_defaults(run=_profile_attention)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as error:
        if args.traceback:
            raise
        raise SystemExit(_error_message(args.command, error)) from None
    return 0


def _error_message(command, error):
    """`keras-eca <command>: <message>`; the lines of a multi-line message
    (e.g. each mis-shaped tensor of a checkpoint) indented below it."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return "\n".join(
        [f"keras-eca {command}: {lines[0]}"] + [f"  {line}" for line in lines[1:]]
    )


if __name__ == "__main__":
    sys.exit(main())
