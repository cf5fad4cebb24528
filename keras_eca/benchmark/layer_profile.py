"""Where an attention model's extra time goes, site by site (TensorFlow).

For every attention layer of a model, grouped by input shape, times the
layer alone and its parts (global pooling, the gate, the channel-wise
rescale; an unfolded SA shuffle), next to the cost of the block's
own BatchNorm and ReLU on the same tensor, each compiled with `tf.function`.
Summed over the sites and divided by the plain backbone's forward time, it
says how much of the model-level slowdown each part explains.
"""

import collections
import statistics
import time

import numpy as np

import keras
from keras import ops

from keras_eca import applications
from keras_eca.benchmark import runner
from keras_eca.layers.base import AttentionLayer
from keras_eca.layers.base import ChannelGate
from keras_eca.layers.folded_batch_norm import SpatialMean


def _require_tensorflow():
    if keras.backend.backend() != "tensorflow":
        raise ValueError(  # a setting: the CLI prints it as one line
            "The layer profile compiles with tf.function and needs the "
            "TensorFlow backend. Received: KERAS_BACKEND="
            f"{keras.backend.backend()!r}"
        )
    import tensorflow as tf

    return tf


def _median_ms(tf, fn, args, min_seconds, repeats):
    compiled = tf.function(fn)
    for _ in range(2):
        np.asarray(compiled(*args))
    per_call = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            out = compiled(*args)
            calls += 1
            if time.perf_counter() - start >= min_seconds:
                break
        np.asarray(out)
        per_call.append((time.perf_counter() - start) / calls * 1e3)
    return statistics.median(per_call)


def _parts(layer, x, folded, conv_input=None):
    """`{part: (fn, args)}` to time for `layer` on the feature map `x`.

    A folded gate (after a `FoldedBatchNormalization`) also applies the
    BatchNorm's affine: its "layer" and "rescale" replace the BatchNorm's
    own pass, so its extra cost is "layer" minus "batchnorm" plus "pool"
    (the spatial means, which the folded BatchNorm computes). When the
    means come from the block's narrower 1x1-conv input `conv_input`
    (a bottleneck's `_3_pool`), "pool" is that mean times the conv kernel.
    """
    rank = len(x.shape)
    channels = x.shape[layer.channel_axis]
    if not isinstance(layer, ChannelGate):
        parts = {"layer": (lambda t: layer(t), (x,))}
        if not getattr(layer, "fold_shuffle", True):  # else no data moves
            parts["shuffle"] = (
                lambda t: ops.transpose(
                    ops.reshape(t, (t.shape[0], -1, 2, channels // 2)),
                    (0, 1, 3, 2),
                ),
                (x,),
            )
        return parts
    axes = layer.spatial_axes(rank)
    shape = [1] * rank
    shape[0], shape[layer.channel_axis] = -1, channels
    scale = ops.ones((channels,), "float32")
    offset = ops.zeros((channels,), "float32")

    def pool(t, a, b):
        return ops.mean(ops.cast(t, "float32"), axis=axes) * a + b

    def rescale(t, g, a, b):
        return t * ops.reshape(a * g, shape) + ops.reshape(b * g, shape)

    pooled = pool(x, scale, offset)
    gate = ops.sigmoid(layer.excite(pooled))
    if folded:
        means = ops.mean(x, axis=axes)
        parts = {
            "layer": (
                lambda t, a, b, m: layer([t, a, b, m]),
                (x, scale, offset, means),
            )
        }
        parts["rescale"] = (rescale, (x, gate, scale, offset))
    else:
        parts = {"layer": (lambda t: layer(t), (x,))}
        parts["rescale"] = (lambda t, g: t * ops.reshape(g, shape), (x, gate))
    parts["pool"] = (pool, (x, scale, offset))
    if conv_input is not None:
        kernel = ops.ones((conv_input.shape[layer.channel_axis], channels))
        parts["pool"] = (
            lambda h, k: ops.matmul(ops.mean(h, axis=axes), k),
            (conv_input, kernel),
        )
    parts["gate"] = (lambda p: ops.sigmoid(layer.excite(p)), (pooled,))
    return parts


def profile_attention(
    model_name,
    baseline=None,
    batch_size=16,
    image_size=224,
    repeats=5,
    min_seconds=0.3,
    report=print,
):
    """Times the attention sites of `model_name` against `baseline`'s
    forward pass (default: `model_name` built with `attention=None`).
    Returns `{"forward_ms", "sites": [...], "totals"}` with milliseconds
    per batch; `totals[part]` sums a part over all sites."""
    tf = _require_tensorflow()
    runner.check_model_names([model_name] + ([baseline] if baseline else []))
    model = runner.build(model_name, image_size)
    sites = collections.OrderedDict()
    # A bottleneck gate whose means come from its 1x1 conv's input: the
    # block's `_3_pool` (resnet naming: `conv2_block1_attn` -> `..._3_pool`).
    pools = {
        layer.name: layer for layer in model.layers if isinstance(layer, SpatialMean)
    }
    for layer in model.layers:
        if isinstance(layer, AttentionLayer):
            features = keras.tree.flatten(layer.input)[0]
            shape = (batch_size,) + tuple(features.shape[1:])
            folded = isinstance(layer.input, (list, tuple))
            pool = pools.get(layer.name.removesuffix("attn") + "3_pool")
            pool_shape = pool and (batch_size,) + tuple(pool.input.shape[1:])
            sites.setdefault((shape, folded, pool_shape), []).append(layer)
    if not sites:
        raise ValueError(
            f"{model_name!r} has no attention layers to profile. "
            f"Received: model_name={model_name!r}"
        )
    if baseline:
        plain = runner.build(baseline, image_size)
    else:
        baseline = f"{model_name} with attention=None"
        plain = applications.build_model(
            model_name, weights=None, attention=None,
            input_shape=(image_size, image_size, 3),
        )
    images, _ = runner.synthetic_batch(batch_size, image_size)
    forward_ms = _median_ms(
        tf, lambda t: plain(t, training=False), (images,), min_seconds, repeats
    )
    report(f"{baseline} forward, batch {batch_size}: {forward_ms:.1f} ms")
    rows, totals = [], collections.Counter()
    rng = np.random.default_rng(0)
    for (shape, folded, pool_shape), layers in sites.items():
        layer = layers[0]
        x = ops.convert_to_tensor(rng.random(shape, dtype="float32"))
        conv_input = pool_shape and ops.convert_to_tensor(
            rng.random(pool_shape, dtype="float32")
        )
        norm = keras.layers.BatchNormalization(axis=layer.channel_axis)
        norm.build(shape)
        timings = {
            "batchnorm": _median_ms(
                tf, lambda t: norm(t, training=False), (x,), min_seconds, repeats
            ),
            "relu": _median_ms(tf, ops.relu, (x,), min_seconds, repeats),
        }
        for part, (fn, args) in _parts(layer, x, folded, conv_input).items():
            timings[part] = _median_ms(tf, fn, args, min_seconds, repeats)
        for part, ms in timings.items():
            totals[part] += ms * len(layers)
        rows.append(
            {
                "shape": shape,
                "folded": folded,
                "pooled_input": pool_shape,
                "count": len(layers),
                "ms": timings,
            }
        )
        report(
            f"  {shape} x{len(layers)}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        )
    return {
        "model": model_name,
        "baseline": baseline,
        "forward_ms": forward_ms,
        "sites": rows,
        "totals": dict(totals),
    }


def format_profile(profile):
    forward = profile["forward_ms"]
    parts = list(profile["sites"][0]["ms"])
    header = f"{'input shape':<22} {'n':>3} " + " ".join(f"{p:>10}" for p in parts)
    lines = [
        f"{profile['model']}: attention sites, ms per batch (one call)",
        header,
    ]
    for row in profile["sites"]:
        lines.append(
            f"{str(row['shape']):<22} {row['count']:>3} "
            + " ".join(f"{row['ms'][p]:>10.2f}" for p in parts)
        )
    lines.append(
        f"{'all sites (ms)':<26} "
        + " ".join(f"{profile['totals'][p]:>10.1f}" for p in parts)
    )
    lines.append(
        f"{'% of baseline fwd':<26} "
        + " ".join(f"{100 * profile['totals'][p] / forward:>9.1f}%" for p in parts)
    )
    lines.append(f"(baseline: {profile['baseline']}, forward {forward:.1f} ms)")
    if any(row["folded"] for row in profile["sites"]):
        lines.append(
            "(folded gates also apply their BatchNorm's affine: their extra "
            "cost over the plain block is layer - batchnorm)"
        )
    return "\n".join(lines)
