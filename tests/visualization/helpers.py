"""Shared pieces of the visualization tests: real images, random weights,
and NumPy versions of every gate written from the papers' formulas."""

import numpy as np

import keras
import keras_eca
from keras_eca import layers as eca_layers

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], "float32")
IMAGENET_STD = np.array([0.229, 0.224, 0.225], "float32")
CLASS_NAMES = ("astronaut", "cat", "coffee")


def real_images(size=64, flipped=True):
    """skimage's astronaut, chelsea and coffee at `size` px (and mirrored
    copies), normalised with the ImageNet mean/std, and their labels."""
    import skimage.data
    import skimage.transform

    images = [
        skimage.transform.resize(
            getattr(skimage.data, name)(), (size, size), anti_aliasing=True
        )
        for name in ("astronaut", "chelsea", "coffee")
    ]
    images = np.stack(images).astype("float32")
    labels = np.arange(3)
    if flipped:
        images = np.concatenate([images, images[:, :, ::-1]])
        labels = np.concatenate([labels, labels])
    return (images - IMAGENET_MEAN) / IMAGENET_STD, labels


def all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def randomize(model, seed=0):
    """Random BatchNorm statistics and affines and random attention weights,
    so that no gate is an initial constant (SA starts at sigmoid(1))."""
    rng = np.random.default_rng(seed)
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            layer.beta.assign(rng.normal(0, 0.2, channels))
            layer.moving_mean.assign(rng.normal(0, 0.2, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
        elif isinstance(layer, (eca_layers.ChannelGate, eca_layers.ShuffleAttention)):
            for weight in layer.weights:
                weight.assign(rng.normal(0, 0.7, weight.shape))


def copy_weights_by_name(source, target):
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def value_of(model, layer_name, images):
    """The output of `layer_name` in `model` for `images` (NumPy)."""
    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    out = probe(images, training=False)
    return np.asarray(keras.ops.convert_to_numpy(out), "float64")


def batch_norm(x, layer):
    """Inference BatchNorm from the layer's weights, channels-last."""
    gamma, beta, mean, variance = (
        np.asarray(w, "float64") for w in layer.get_weights()
    )
    return (x - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _neighbours(pooled, k, circular):
    pad = (k - 1) // 2
    if circular:
        padded = np.concatenate([pooled[:, pooled.shape[1] - pad :], pooled, pooled[:, :pad]], 1)
    else:
        padded = np.pad(pooled, ((0, 0), (pad, pad)))
    return [padded[:, j : j + pooled.shape[1]] for j in range(k)]


def channel_gate(layer, y):
    """sigmoid(excite(GAP(y))) of a channel-gate layer, in NumPy."""
    p = y.mean(axis=(1, 2))
    w = [np.asarray(v, "float64") for v in layer.get_weights()]
    name = type(layer).__name__
    if name == "EfficientChannelAttention":
        circular = layer.padding == "circular"
        z = sum(w[0][j] * n for j, n in enumerate(_neighbours(p, len(w[0]), circular)))
    elif name == "EfficientChannelAttentionNS":
        z = sum(w[0][j] * n for j, n in enumerate(_neighbours(p, len(w[0]), False)))
    elif name == "SqueezeExcitation":
        z = np.maximum(p @ w[0] + w[1], 0) @ w[2] + w[3]
    elif name == "SqueezeExcitationVar1":
        z = p
    elif name == "SqueezeExcitationVar2":
        z = p * w[0]
    elif name == "SqueezeExcitationVar3":
        z = p @ w[0]
    elif name == "SqueezeExcitationGroupConv":
        groups, width, _ = w[0].shape
        z = np.einsum("ngi,gio->ngo", p.reshape(-1, groups, width), w[0])
        z = z.reshape(len(p), -1)
    else:
        raise AssertionError(name)
    return sigmoid(z)


def shuffle_attention_gates(layer, y_natural):
    """SA's channel and spatial gates (Yang et al.) of `y_natural`, the
    input of the paper's layer (natural channel order), in NumPy."""
    cweight, cbias, sweight, sbias, gamma, beta = (
        np.asarray(v, "float64") for v in layer.get_weights()
    )
    n, h, w, c = y_natural.shape
    grouped = y_natural.reshape(n, h, w, layer.groups, 2, -1)
    x0, x1 = grouped[..., 0, :], grouped[..., 1, :]
    channel = sigmoid(cweight * x0.mean(axis=(1, 2)) + cbias)
    mean = x1.mean(axis=(1, 2), keepdims=True)
    variance = x1.var(axis=(1, 2), keepdims=True)
    normed = (x1 - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta
    spatial = sigmoid(sweight * normed + sbias)
    return channel.reshape(n, c // 2), spatial.reshape(n, h, w, c // 2)


def full_natural_gate(layer, gates, spatial_shape):
    """The per-channel gate map (N, H, W, C), natural order, rebuilt from
    the reported channel and spatial gates."""
    channel, spatial = gates["channel"], gates["spatial"]
    n, half_c = channel.shape
    half = half_c // layer.groups
    h, w = spatial_shape
    channel_map = np.broadcast_to(
        channel.reshape(n, 1, 1, layer.groups, half), (n, h, w, layer.groups, half)
    )
    spatial_map = spatial.reshape(n, h, w, layer.groups, half)
    return np.stack([channel_map, spatial_map], axis=-2).reshape(n, h, w, 2 * half_c)


def natural_from_shuffled(y):
    """Undoes `shuffle_order`: channel q of `y` is natural channel order[q]."""
    return y[..., np.argsort(keras_eca.layers.shuffle_order(y.shape[-1]))]
