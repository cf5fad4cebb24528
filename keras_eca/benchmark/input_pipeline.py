"""Input pipeline benchmark and PIL fidelity of the evaluation transform.

`run_input_pipeline_benchmark()` measures, interleaved in one process on a
temporary folder of JPEG photo crops:
- images/s of `keras_eca.data.training_dataset` against a plain
  hand-written `tf.data` pipeline doing the same read, decode-and-crop,
  resize, flip and normalise (target ratio >= 0.95);
- the plain pipeline with `decode_and_crop_jpeg` against the same pipeline
  decoding the whole JPEG and cropping after (the fast path's speed-up),
  whole and for the decoding alone (the antialiased resize of the crop
  costs more than the decoding, which dilutes the gain).

`pil_fidelity()` compares `keras_eca.data.evaluation_transform` with
timm's PIL reference (`Resize(int(size / crop_pct))` + `CenterCrop`) on
scikit-image's photos and returns the mean and max |pixel difference|.

`python -m keras_eca.benchmark.input_pipeline` prints both.
"""

import argparse
import io
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from keras_eca import data
from keras_eca.applications.preprocessing import IMAGENET_MEAN
from keras_eca.applications.preprocessing import IMAGENET_STD
from keras_eca.data import pipeline
from keras_eca.data import transforms
from keras_eca.testing.fake_imagenet import fake_photos

PIPELINE_TARGET = 0.95
# (image_size, crop_pct, interpolation) of the weights' table entries.
FIDELITY_SETTINGS = (
    (224, 0.875, "bicubic"),
    (224, 0.95, "bicubic"),
    (288, 1.0, "bicubic"),
    (224, 0.875, "bilinear"),
)
FIDELITY_VARIANTS = ("pipeline", "single_pass", "no_antialias", "jpeg")


# --- PIL fidelity -----------------------------------------------------------


def photos():
    """scikit-image's bundled colour photos (and the camera, as RGB)."""
    from skimage import data as skdata

    gray = skdata.camera()
    return {
        "astronaut": skdata.astronaut(),
        "chelsea": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "rocket": skdata.rocket(),
        "hubble_deep_field": skdata.hubble_deep_field(),
        "immunohistochemistry": skdata.immunohistochemistry(),
        "motorcycle": skdata.stereo_motorcycle()[0],
        "camera": np.stack([gray] * 3, axis=-1),
    }


def pil_reference(image, image_size, crop_pct, interpolation):
    """timm's evaluation transform with PIL alone (torchvision's rules):
    `Resize(int(image_size / crop_pct), interpolation)` on the shorter side,
    then `CenterCrop(image_size)`. `image` is a uint8 RGB array or a PIL
    image; returns uint8 HWC."""
    from PIL import Image

    filters = {
        "bilinear": Image.BILINEAR,
        "bicubic": Image.BICUBIC,
        "nearest": Image.NEAREST,
        "lanczos": Image.LANCZOS,
    }
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    width, height = pil.size
    short_size = int(image_size / crop_pct)
    if width <= height:
        new_w, new_h = short_size, int(short_size * height / width)
    else:
        new_w, new_h = int(short_size * width / height), short_size
    resized = pil.resize((new_w, new_h), filters[interpolation])
    top = int(round((new_h - image_size) / 2.0))
    left = int(round((new_w - image_size) / 2.0))
    box = (left, top, left + image_size, top + image_size)
    return np.asarray(resized.crop(box))


def _single_pass(image, image_size, crop_pct, interpolation, antialias):
    """The plain alternative: one float `tf.image.resize`, no rounding."""
    method = transforms.check_interpolation(interpolation)
    shape = tf.shape(image)
    short_side = int(image_size / crop_pct)
    size = transforms.resized_size(shape[0], shape[1], short_side)
    out = tf.image.resize(image, size, method=method, antialias=antialias)
    top = int(round((int(size[0]) - image_size) / 2.0))
    left = int(round((int(size[1]) - image_size) / 2.0))
    return out[top : top + image_size, left : left + image_size]


def pil_fidelity(
    settings=FIDELITY_SETTINGS, *, images=None, variants=("pipeline",)
):
    """Mean and max |pixel difference| (0..255) to the PIL reference.

    Variants:
    - `"pipeline"`: `keras_eca.data.evaluation_transform` (what
      `evaluation_dataset` does) on the decoded photo;
    - `"single_pass"`: one float antialiased `tf.image.resize` (no 8-bit
      rounding between PIL's two passes);
    - `"no_antialias"`: the same without antialiasing;
    - `"jpeg"`: from JPEG bytes (quality 90), decoded as
      `evaluation_dataset` decodes them, against PIL decoding the same bytes.

    Args:
        settings: `(image_size, crop_pct, interpolation)` triples.
        images: `{name: uint8 RGB array}`; defaults to scikit-image's photos.
        variants: which of the variants above to measure.

    Returns:
        `{"images": [names], "rows": [{"image_size", "crop_pct",
        "interpolation", "variant", "mean", "max", "per_image": {name:
        mean}}]}`.

    Example:

    >>> from keras_eca.benchmark.input_pipeline import pil_fidelity
    >>> image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), "uint8")
    >>> result = pil_fidelity([(16, 0.875, "bicubic")], images={"noise": image})
    >>> row = result["rows"][0]
    >>> bool(row["max"] <= 1.0)
    True
    """
    from PIL import Image

    unknown = sorted(set(variants) - set(FIDELITY_VARIANTS))
    if unknown:
        raise ValueError(
            f"`variants` must be among {FIDELITY_VARIANTS}. "
            f"Received: variants={tuple(variants)!r}"
        )
    images = photos() if images is None else dict(images)
    rows = []
    for image_size, crop_pct, interpolation in settings:
        for variant in variants:
            per_image, worst = {}, 0.0
            for name, image in images.items():
                if variant == "jpeg":
                    buffer = io.BytesIO()
                    Image.fromarray(image).save(buffer, "JPEG", quality=90)
                    raw = buffer.getvalue()
                    reference = pil_reference(
                        Image.open(io.BytesIO(raw)).convert("RGB"),
                        image_size, crop_pct, interpolation,
                    )
                    decoded = transforms.decode_image(
                        tf.constant(raw), dct_method="INTEGER_ACCURATE"
                    )
                    ours = data.evaluation_transform(
                        decoded, image_size=image_size, crop_pct=crop_pct,
                        interpolation=interpolation,
                    )
                else:
                    reference = pil_reference(
                        image, image_size, crop_pct, interpolation
                    )
                    if variant == "pipeline":
                        ours = data.evaluation_transform(
                            image, image_size=image_size, crop_pct=crop_pct,
                            interpolation=interpolation,
                        )
                    else:
                        ours = _single_pass(
                            image, image_size, crop_pct, interpolation,
                            antialias=variant == "single_pass",
                        )
                diff = np.abs(
                    np.asarray(ours, np.float64) - reference.astype(np.float64)
                )
                per_image[name] = float(diff.mean())
                worst = max(worst, float(diff.max()))
            rows.append(
                {
                    "image_size": image_size,
                    "crop_pct": crop_pct,
                    "interpolation": interpolation,
                    "variant": variant,
                    "mean": float(np.mean(list(per_image.values()))),
                    "max": worst,
                    "per_image": per_image,
                }
            )
    return {"images": sorted(images), "rows": rows}


# --- throughput -------------------------------------------------------------


def write_jpeg_folder(
    path, *, num_images=128, min_side=256, max_side=512, classes=2, seed=0
):
    """A folder `path/class_k/k_i.jpg` of JPEG photo crops whose sides are
    drawn in [min_side, max_side]; returns `path`."""
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        sides = rng.integers(min_side, max_side + 1, 2)
        height, width = int(sides[0]), int(sides[1])
        (image,) = fake_photos(1, (height, width), seed=seed * 100003 + i)
        folder = os.path.join(path, f"class_{i % classes}")
        os.makedirs(folder, exist_ok=True)
        from PIL import Image

        Image.fromarray(image).save(
            os.path.join(folder, f"{i:06d}.jpg"), "JPEG", quality=90
        )
    return path


def plain_pipeline(
    paths,
    labels,
    *,
    image_size,
    batch_size,
    augment_key,
    crop_while_decoding=True,
    decode_only=False,
):
    """The baseline: a hand-written `tf.data` pipeline (read, RandomResizedCrop,
    flip, normalise, batch, prefetch) over `paths` in the given order.

    Element `k` draws the same stateless uniforms as `training_dataset`
    (seed `[augment_key, k]`), so both pipelines decode the same crops and
    the ratio measures the pipeline, not the luck of the crop sizes.
    `decode_only` stops after the crop (yielding its shape), to time the
    decoding alone.
    """
    mean = tf.constant([255.0 * v for v in IMAGENET_MEAN])
    std = tf.constant([255.0 * v for v in IMAGENET_STD])
    low, high = np.log(3 / 4), np.log(4 / 3)

    def parse(k, path, label):
        raw = tf.io.read_file(path)
        seed = tf.stack([tf.constant(augment_key, tf.int64), k])
        u = tf.random.stateless_uniform([41], seed, dtype=tf.float64)
        shape = tf.cast(tf.io.extract_jpeg_shape(raw), tf.float64)
        h, w = shape[0], shape[1]
        area = h * w * (0.08 + 0.92 * u[0:10])
        aspect = tf.exp(low + (high - low) * u[10:20])
        cw = tf.round(tf.sqrt(area * aspect))
        ch = tf.round(tf.sqrt(area / aspect))
        fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        i = tf.argmax(tf.cast(fits, tf.int32))
        box = tf.stack(
            [
                tf.floor(u[20 + i] * (h - ch[i] + 1)),
                tf.floor(u[30 + i] * (w - cw[i] + 1)),
                ch[i],
                cw[i],
            ]
        )
        # No attempt fits: the centred, ratio-clamped whole image.
        fw = tf.where(w / h > 4 / 3, tf.round(h * (4 / 3)), w)
        fh = tf.where(w / h < 3 / 4, tf.round(w / (3 / 4)), h)
        fallback = tf.stack(
            [tf.floor((h - fh) / 2), tf.floor((w - fw) / 2), fh, fw]
        )
        box = tf.cast(tf.where(tf.reduce_any(fits), box, fallback), tf.int32)
        if crop_while_decoding:
            crop = tf.io.decode_and_crop_jpeg(raw, box, channels=3)
        else:
            crop = tf.io.decode_jpeg(raw, channels=3)[
                box[0] : box[0] + box[2], box[1] : box[1] + box[3]
            ]
        if decode_only:
            return tf.shape(crop), label
        image = tf.image.resize(crop, [image_size, image_size], antialias=True)
        image = tf.cond(
            u[40] < 0.5, lambda: tf.image.flip_left_right(image), lambda: image
        )
        return (image - mean) / std, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels)).enumerate()
    ds = ds.map(
        lambda k, item: parse(k, *item), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def epoch_order(source, seed, epoch):
    """`(paths, labels, augment_key)` of the first pass of
    `training_dataset(source, seed=seed, epoch=epoch)`, for the baseline."""
    salt = pipeline._SHUFFLE_SALT
    keys = source._keys(pipeline.derived_seed(seed, epoch, 0, salt))
    paths, labels = [], []
    for path, label in keys.as_numpy_iterator():
        paths.append(path)
        labels.append(label)
    augment_key = pipeline.derived_seed(seed, epoch, pipeline._AUGMENT_SALT)
    return np.asarray(paths), np.asarray(labels), augment_key


def _images_per_second(dataset):
    """(images per wall second, images per process CPU second): the
    second is steadier on a machine shared with other jobs."""
    start, cpu = time.perf_counter(), time.process_time()
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return (
        count / (time.perf_counter() - start),
        count / max(time.process_time() - cpu, 1e-9),
    )


def run_input_pipeline_benchmark(
    *,
    folder=None,
    num_images=128,
    min_side=256,
    max_side=512,
    image_size=224,
    batch_size=32,
    repeats=5,
    report=print,
):
    """Measures images/s of the pipelines, interleaved; returns a dict.

    Args:
        folder: a folder of class subfolders of JPEGs; a temporary one of
            `num_images` photo crops (sides in `[min_side, max_side]`) when
            `None`.
        image_size, batch_size: the training crop and batch.
        repeats: interleaved rounds (each pipeline runs one epoch per
            round, in a rotating order, after one warm-up epoch each).
        report: callable for progress lines, or `None`.

    Returns:
        `{"settings": {...}, "images_per_second": {name: [per repeat]},
        "median": {name: float}, "ratios": {"pipeline_vs_plain": {...},
        "decode_and_crop_speedup": {...}}}`, each ratio with `values`,
        `median`, `min`, `max` (and `target`, `met` for the pipeline);
        `images_per_cpu_second` and `cpu_ratios` the same per second of
        process CPU time.

    Example:

    >>> from keras_eca.benchmark import input_pipeline
    >>> result = input_pipeline.run_input_pipeline_benchmark(
    ...     num_images=8, min_side=40, max_side=60, image_size=16,
    ...     batch_size=4, repeats=1, report=None)
    >>> sorted(result["ratios"])
    ['decode_and_crop_speedup', 'decode_only_speedup', 'pipeline_vs_plain']
    """
    report = report or (lambda *a: None)
    counts = (
        ("num_images", num_images),
        ("batch_size", batch_size),
        ("repeats", repeats),
    )
    for name, value in counts:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive int. Received: {name}={value!r}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        if folder is None:
            report(f"writing {num_images} JPEGs ({min_side}-{max_side} px) ...")
            folder = write_jpeg_folder(
                os.path.join(tmp, "jpegs"), num_images=num_images,
                min_side=min_side, max_side=max_side,
            )
        source = data.resolve_source(folder)

        def ours(epoch):
            return data.training_dataset(
                source, image_size=image_size, global_batch_size=batch_size,
                seed=0, epoch=epoch,
            )

        def plain(epoch, crop_while_decoding=True, decode_only=False):
            paths, labels, augment_key = epoch_order(source, 0, epoch)
            return plain_pipeline(
                paths, labels, image_size=image_size, batch_size=batch_size,
                augment_key=augment_key,
                crop_while_decoding=crop_while_decoding,
                decode_only=decode_only,
            )

        variants = {
            "training_dataset": ours,
            "plain_decode_and_crop": plain,
            "plain_decode_then_crop": lambda e: plain(e, False),
            "decode_and_crop_only": lambda e: plain(e, True, True),
            "decode_then_crop_only": lambda e: plain(e, False, True),
        }
        names = list(variants)
        rates = {name: [] for name in names}
        cpu_rates = {name: [] for name in names}
        for name in names:  # warm-up: functions traced, files cached
            _images_per_second(variants[name](0))
        for r in range(repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                wall, cpu = _images_per_second(variants[name](r + 1))
                rates[name].append(wall)
                cpu_rates[name].append(cpu)
            report(
                f"  round {r + 1}/{repeats}: "
                + ", ".join(f"{n} {rates[n][-1]:.1f} img/s" for n in names)
            )

    def ratio(a, b, table):
        values = [x / y for x, y in zip(table[a], table[b])]
        return {
            "values": values,
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }

    pipeline_ratio = ratio("training_dataset", "plain_decode_and_crop", rates)
    pipeline_ratio["target"] = PIPELINE_TARGET
    pipeline_ratio["met"] = pipeline_ratio["median"] >= PIPELINE_TARGET
    cpu_ratio = ratio("training_dataset", "plain_decode_and_crop", cpu_rates)
    return {
        "settings": {
            "num_images": source.num_examples,
            "image_size": image_size,
            "batch_size": batch_size,
            "repeats": repeats,
            "min_side": min_side,
            "max_side": max_side,
            "cpu_count": os.cpu_count(),
        },
        "images_per_second": rates,
        "images_per_cpu_second": cpu_rates,
        "median": {n: statistics.median(v) for n, v in rates.items()},
        "ratios": {
            "pipeline_vs_plain": pipeline_ratio,
            "decode_and_crop_speedup": ratio(
                "plain_decode_and_crop", "plain_decode_then_crop", rates
            ),
            "decode_only_speedup": ratio(
                "decode_and_crop_only", "decode_then_crop_only", rates
            ),
        },
        "cpu_ratios": {
            "pipeline_vs_plain": cpu_ratio,
            "decode_and_crop_speedup": ratio(
                "plain_decode_and_crop", "plain_decode_then_crop", cpu_rates
            ),
            "decode_only_speedup": ratio(
                "decode_and_crop_only", "decode_then_crop_only", cpu_rates
            ),
        },
    }


def format_report(throughput=None, fidelity=None):
    """The results as a text table."""
    lines = []
    if throughput:
        s = throughput["settings"]
        lines.append(
            f"Input pipeline ({s['num_images']} JPEGs {s['min_side']}-"
            f"{s['max_side']} px -> {s['image_size']} px, batch "
            f"{s['batch_size']}, {s['repeats']} rounds, {s['cpu_count']} CPUs)"
        )
        for name, value in throughput["median"].items():
            lines.append(f"  {name:<26} {value:9.1f} img/s (median)")
        p = throughput["ratios"]["pipeline_vs_plain"]
        lines.append(
            f"  training_dataset / plain   {p['median']:.3f} "
            f"(min {p['min']:.3f}, max {p['max']:.3f}; target >= "
            f"{p['target']}: {'met' if p['met'] else 'NOT met'})"
        )
        d = throughput["ratios"]["decode_and_crop_speedup"]
        lines.append(
            f"  decode_and_crop speed-up   {d['median']:.3f} "
            f"(min {d['min']:.3f}, max {d['max']:.3f})"
        )
        d = throughput["ratios"]["decode_only_speedup"]
        lines.append(
            f"  ... decoding alone         {d['median']:.3f} "
            f"(min {d['min']:.3f}, max {d['max']:.3f})"
        )
        c = throughput["cpu_ratios"]
        lines.append(
            "  per CPU second (steadier on a shared machine): "
            f"training_dataset / plain {c['pipeline_vs_plain']['median']:.3f}, "
            f"decode_and_crop speed-up "
            f"{c['decode_and_crop_speedup']['median']:.3f} "
            f"(decoding alone {c['decode_only_speedup']['median']:.3f})"
        )
    if fidelity:
        lines.append(
            f"Evaluation transform vs PIL ({len(fidelity['images'])} photos; "
            "|difference| on 0..255)"
        )
        lines.append(
            f"  {'size':>4} {'crop':>5} {'interp':<9} {'variant':<13} "
            f"{'mean':>8} {'max':>6}"
        )
        for row in fidelity["rows"]:
            lines.append(
                f"  {row['image_size']:>4} {row['crop_pct']:>5} "
                f"{row['interpolation']:<9} {row['variant']:<13} "
                f"{row['mean']:8.4f} {row['max']:6.1f}"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_eca.benchmark.input_pipeline",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--folder", help="folder of class subfolders of JPEGs")
    parser.add_argument("--num-images", type=int, default=256)
    parser.add_argument("--min-side", type=int, default=256)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-fidelity", action="store_true")
    args = parser.parse_args(argv)
    throughput = fidelity = None
    if not args.skip_throughput:
        throughput = run_input_pipeline_benchmark(
            folder=args.folder, num_images=args.num_images,
            min_side=args.min_side, max_side=args.max_side,
            image_size=args.image_size, batch_size=args.batch_size,
            repeats=args.repeats,
        )
    if not args.skip_fidelity:
        fidelity = pil_fidelity(variants=FIDELITY_VARIANTS)
    print(format_report(throughput, fidelity))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
