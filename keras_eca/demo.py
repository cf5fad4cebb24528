"""The demo job: one backbone with every attention type, side by side.

For each registered attention it builds the backbone with that attention in
every block, reports the attention's parameter overhead against the plain
backbone and runs a forward pass on a random image batch.
"""

import time

import numpy as np


def check_backbone(backbone):
    """Raises a `ValueError` naming the valid backbones for an unknown one."""
    from keras_eca import applications

    names = applications.list_models()
    if backbone not in names:
        raise ValueError(
            f"unknown backbone {backbone!r}; choose one of {', '.join(names)}. "
            f"Received: backbone={backbone!r}"
        )


def attention_overhead(backbone="resnet50", image_size=224, batch_size=1, report=print):
    """Builds `backbone` with each attention and runs one forward pass.

    Args:
        backbone: registry key (`keras_eca.applications.list_models()`),
            usually a plain architecture such as `"resnet50"` or
            `"mobilenet_v2"`; its own attention, if any, is replaced.
        image_size: int. Side of the random input images.
        batch_size: int. Number of images in the forward pass.
        report: callable receiving one line of progress text at a time.

    Returns:
        A list of dicts with keys `attention`, `params`, `overhead`,
        `overhead_percent`, `output_shape` and `seconds` (build + forward),
        or `attention` and `skipped` (the reason) where the attention does
        not fit the backbone.

    Raises:
        ValueError: for a `backbone` that is not a registered model, before
            anything is built.
    """
    from keras_eca import applications
    from keras_eca import layers

    # Once, here: each attention would report it as "not applicable".
    check_backbone(backbone)

    x = np.random.default_rng(0).uniform(0, 255, (batch_size, image_size, image_size, 3))
    x = applications.preprocess_input(x.astype("float32"))
    rows = []
    names = [None] + layers.list_attention()
    for index, attention in enumerate(names, 1):
        label = attention or "none"
        report(f"[{index}/{len(names)}] {backbone} + {label}: building ...")
        start = time.perf_counter()
        try:
            model = applications.build_model(
                backbone,
                attention=attention,
                input_shape=(image_size, image_size, 3),
                classifier_activation=None,
            )
        except ValueError as error:
            # E.g. SA with 64-channel blocks: report it and go on.
            report(f"    not applicable: {error}")
            rows.append({"attention": label, "skipped": str(error)})
            continue
        y = np.asarray(model.predict(x, verbose=0))
        seconds = time.perf_counter() - start
        if not np.all(np.isfinite(y)):
            raise RuntimeError(f"{backbone} + {label} produced non-finite logits")
        # Trainable parameters, as the papers count (no BN moving stats).
        params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        base = rows[0]["params"] if rows else params
        rows.append(
            {
                "attention": label,
                "params": params,
                "overhead": params - base,
                "overhead_percent": 100.0 * (params - base) / base,
                "output_shape": tuple(y.shape),
                "seconds": seconds,
            }
        )
    return rows


def format_table(rows, backbone):
    lines = [
        f"{'attention':<10} {'params':>12} {'overhead':>12} {'overhead %':>11} "
        f"{'logits':>12} {'build+fwd s':>12}",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row['attention']:<10} not applicable (see above)")
            continue
        lines.append(
            f"{row['attention']:<10} {row['params']:>12,} {row['overhead']:>+12,} "
            f"{row['overhead_percent']:>10.4f}% {str(row['output_shape']):>12} "
            f"{row['seconds']:>12.1f}"
        )
    lines.append(
        f"(trainable parameters; overhead = parameters added to the plain "
        f"{backbone}; 'eca' here uses the adaptive kernel size per stage)"
    )
    return "\n".join(lines)
