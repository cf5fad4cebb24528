"""The inference form (`keras_eca.inference`): same outputs, fewer layers.

Backend-neutral: these run on every Keras backend. The exported forms
(SavedModel, TFLite) are tested in tests/export/inference_export_test.py.
"""

import keras
import numpy as np
import pytest

from keras_eca import applications
from keras_eca import inference
from keras_eca import layers

# Max |difference| over max |output|: float32 round-off of the fold.
RELATIVE_TOLERANCE = 1e-5


def randomize_statistics(model, seed=0):
    """BatchNorm statistics and affines, and the SA weights, drawn at
    random: at initialisation (mean 0, variance 1, SA gates constant) a
    wrong fold or a wrong channel order would go unnoticed."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.3, channels))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, channels))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, channels))
        elif isinstance(layer, layers.ShuffleAttention):
            for weight in layer.weights:
                weight.assign(rng.normal(0.5, 0.5, weight.shape))
    return model


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def relative_error(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def images(batch=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, size, size, 3)).astype("float32")


def check_same_outputs(model, lean, x):
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(lean(x, training=False))
    assert relative_error(got, expected) < RELATIVE_TOLERANCE


def norms_of(model):
    return [
        layer for layer in _all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def attention_kwargs(name):
    # ResNet-18's first stage has 64 channels: SA's default 64 groups need
    # 128.
    return {"groups": 8} if name == "sa" else None


@pytest.mark.parametrize("name", layers.list_attention())
def test_every_attention_folds_into_a_resnet18(name):
    model = randomize_statistics(applications.build_model(
        "resnet18", weights=None, input_shape=(32, 32, 3), classes=10,
        classifier_activation=None, attention=name,
        attention_kwargs=attention_kwargs(name),
    ))
    lean = inference.inference_model(model)
    check_same_outputs(model, lean, images())
    assert norms_of(model) and not norms_of(lean)
    if name == "sa":
        assert any(isinstance(l, layers.FrozenShuffleAttention) for l in lean.layers)
        assert not any(isinstance(l, layers.ShuffleAttention) for l in lean.layers)


@pytest.mark.parametrize(
    "name", ["eca_mobilenet_v2", "ecaresnet26t", "sa_resnet50"]
)
def test_depthwise_bottleneck_and_avg_down_models_fold(name):
    # MobileNetV2: depthwise convs; ecaresnet26t: bottleneck gates that
    # pool the narrow input of the last 1x1 conv, a deep stem, avg-pool
    # shortcuts; SA-ResNet-50: the folded shuffle.
    model = randomize_statistics(applications.build_model(
        name, weights=None, input_shape=(32, 32, 3), classes=10,
        classifier_activation=None,
    ))
    lean = inference.inference_model(model)
    check_same_outputs(model, lean, images())
    assert not norms_of(lean)


@pytest.mark.parametrize("attention", ["eca", "se"])
def test_bottleneck_gates_pool_the_narrow_input_where_it_is_cheaper(attention):
    # ResNet-26-T at 96 px: the stage-2 maps are 24x24 (576 positions) over
    # 64 input channels: the means come from the conv of the pooled input;
    # at stage 5 (3x3 over 512 channels) from pooling the output.
    model = randomize_statistics(applications.build_model(
        "ecaresnet26t", weights=None, input_shape=(96, 96, 3), classes=10,
        attention=attention,
    ))
    lean = inference.inference_model(model)
    check_same_outputs(model, lean, images(size=96))
    early, late = lean.get_layer("conv2_block1_attn"), lean.get_layer("conv5_block1_attn")
    assert lean.get_layer("conv2_block1_3_pool").input.shape[-1] == 64
    if attention == "eca":
        # ECA's channel conv folded into the 1x1 conv of the pooled input.
        assert isinstance(early, layers.LogitGate)
        logits = lean.get_layer("conv2_block1_attn_logits")
        assert tuple(logits.output.shape) == (None, 1, 1, 256)
    else:
        features, means = early.input
        assert tuple(means.shape) == (None, 1, 1, 256)
    assert isinstance(late, layers.ChannelGate)
    assert not isinstance(late.input, (list, tuple))


def test_the_original_model_is_untouched():
    model = randomize_statistics(applications.build_model(
        "eca_resnet18", weights=None, input_shape=(32, 32, 3), classes=10
    ))
    before = [w.copy() for w in model.get_weights()]
    names = [layer.name for layer in model.layers]
    x = images()
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    lean = inference.inference_model(model)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert [layer.name for layer in model.layers] == names
    # Single-call layers keep their `output` (feature extraction reads it).
    assert model.get_layer("conv5_block2_out").output is not None
    # No shared variables: changing the lean model leaves the original.
    lean.get_layer("predictions").kernel.assign(
        np.zeros(lean.get_layer("predictions").kernel.shape)
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x, training=False)), expected
    )


def test_nested_and_sequential_models_fold():
    backbone = randomize_statistics(applications.build_model(
        "eca_resnet18", weights=None, include_top=False, pooling="avg",
        input_shape=(32, 32, 3), name="backbone",
    ))
    inputs = keras.Input((32, 32, 3), name="image")
    outputs = keras.layers.Dense(5, name="head")(backbone(inputs, training=False))
    model = keras.Model(inputs, outputs)
    lean = inference.inference_model(model)
    check_same_outputs(model, lean, images())
    assert not norms_of(lean)
    assert lean.get_layer("backbone").name == "backbone"

    sequential = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(16, 3, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
        keras.layers.BatchNormalization(),
        layers.EfficientChannelAttention(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4),
        keras.layers.BatchNormalization(),
    ])
    randomize_statistics(sequential)
    lean = inference.inference_model(sequential)
    check_same_outputs(sequential, lean, images(size=8))
    assert not norms_of(lean)


def test_a_batchnorm_that_cannot_fold_is_kept():
    inputs = keras.Input((8, 8, 4))
    conv = keras.layers.Conv2D(4, 1, activation="relu", name="conv")(inputs)
    normed = keras.layers.BatchNormalization(name="after_relu")(conv)
    shared = keras.layers.Conv2D(4, 1, name="shared")(normed)
    both = keras.layers.Add()([
        keras.layers.BatchNormalization(name="read_twice")(shared), shared
    ])
    folded = layers.FoldedBatchNormalization(name="folded")(
        keras.layers.ReLU()(both)
    )
    outputs = layers.EfficientChannelAttention(name="gate")(folded)
    model = randomize_statistics(keras.Model(inputs, outputs))
    lean = inference.inference_model(model)
    check_same_outputs(model, lean, np.random.default_rng(1).random(
        (2, 8, 8, 4), "float32"))
    # after an activation / a conv read twice / not after a conv: kept.
    assert sorted(l.name for l in norms_of(lean)) == [
        "after_relu", "folded", "read_twice"
    ]


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="Received: model='resnet18'"):
        inference.inference_model("resnet18")

    class Subclassed(keras.Model):
        def call(self, x):
            return x * 2

    subclassed = Subclassed()
    subclassed(np.zeros((1, 2), "float32"))
    assert not inference.is_rewritable(subclassed)
    with pytest.raises(ValueError, match="subclassed"):
        inference.inference_model(subclassed)

    inputs = keras.Input((4, 4, 8))
    x, scale, offset, means = layers.FoldedBatchNormalization()(
        keras.layers.Conv2D(8, 1, use_bias=False)(inputs)
    )
    model = keras.Model(inputs, [layers.EfficientChannelAttention()(
        [x, scale, offset, means]), scale])
    with pytest.raises(ValueError, match="also read by a model output"):
        inference.inference_model(model)


def test_folded_weights_match_the_batchnorm():
    rng = np.random.default_rng(3)
    for conv in (
        keras.layers.Conv2D(6, 3, use_bias=True, groups=2),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=3),
        keras.layers.Dense(6),
    ):
        x = rng.random((2, 5, 5, 4) if not isinstance(
            conv, keras.layers.Dense) else (2, 4), "float32")
        norm = keras.layers.BatchNormalization()
        y = norm(conv(x))
        channels = y.shape[-1]
        norm.moving_mean.assign(rng.normal(0, 1, channels))
        norm.moving_variance.assign(rng.uniform(0.1, 3, channels))
        norm.gamma.assign(rng.normal(1, 0.5, channels))
        norm.beta.assign(rng.normal(0, 1, channels))
        expected = keras.ops.convert_to_numpy(norm(conv(x), training=False))
        kernel, bias = inference.folded_weights(conv, norm)
        fused = type(conv).from_config(conv.get_config())
        fused(x)
        fused.set_weights([kernel, bias])
        got = keras.ops.convert_to_numpy(fused(x))
        assert relative_error(got, expected) < RELATIVE_TOLERANCE


def _sa_resnet18(**kwargs):
    keras.utils.set_random_seed(0)
    return randomize_statistics(applications.build_model(
        "resnet18", weights=None, input_shape=(32, 32, 3), classes=10,
        classifier_activation=None, attention="sa",
        attention_kwargs={"groups": 8}, **kwargs,
    ))


def _count(model, cls):
    return sum(isinstance(layer, cls) for layer in _all_layers(model))


def _float64_twin(model, name, **kwargs):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        twin = applications.build_model(name, weights=None, **kwargs)
    finally:
        keras.config.set_dtype_policy(policy)
    twin.set_weights(model.get_weights())
    return twin


@pytest.mark.parametrize("name", ["resnet18_sa", "sa_resnet50"])
def test_the_xla_form_fuses_sa_with_the_residual_add_and_relu(name):
    if name == "sa_resnet50":
        kwargs = dict(input_shape=(32, 32, 3), classes=10, classifier_activation=None)
        keras.utils.set_random_seed(0)
        model = randomize_statistics(applications.build_model(
            name, weights=None, **kwargs
        ))
    else:
        model = _sa_resnet18()
    lean = inference.inference_model(model, xla=True)
    if name == "sa_resnet50":
        # XLA rounds in its own order (fused multiply-adds), and 16 SA
        # blocks with random statistics amplify round-off: over 6 seeds the
        # float32 model was 0.7-4.4e-5 from its float64 twin, the default
        # inference form 0.8-4.2e-5 and this form 0.9-4.1e-5. Measured
        # against the float64 result, as the float32 model would be.
        x = images()
        truth = keras.ops.convert_to_numpy(
            _float64_twin(model, name, **kwargs)(x.astype("float64"), training=False)
        )
        got = relative_error(keras.ops.convert_to_numpy(lean(x, training=False)), truth)
        assert got < 10 * RELATIVE_TOLERANCE
    else:
        check_same_outputs(model, lean, images())
    blocks = _count(model, layers.ShuffleAttention)
    # Every block's SA, add and ReLU are one call: no Add left, and the
    # ReLUs of the blocks' outputs are gone.
    assert _count(lean, layers.FrozenShuffleAttention) == blocks
    assert _count(lean, keras.layers.Add) == 0
    assert _count(lean, keras.layers.ReLU) == _count(
        inference.inference_model(model), keras.layers.ReLU
    ) - blocks


def test_the_xla_form_leaves_channel_gates_and_model_outputs_alone():
    eca = randomize_statistics(applications.build_model(
        "eca_resnet18", weights=None, input_shape=(32, 32, 3), classes=10
    ))
    plain, fused = (inference.inference_model(eca, xla=xla) for xla in (False, True))
    assert [l.name for l in fused.layers] == [l.name for l in plain.layers]
    # A feature extractor ends in the last block's ReLU: its output (and
    # name) stays.
    features = _sa_resnet18(include_top=False)
    lean = inference.inference_model(features, xla=True)
    check_same_outputs(features, lean, images())
    assert lean.output_names == features.output_names
    assert _count(lean, keras.layers.Add) == 1


def test_the_xla_form_saves_and_loads(tmp_path):
    model = _sa_resnet18()
    lean = inference.inference_model(model, xla=True)
    path = tmp_path / "lean.keras"
    lean.save(path)
    loaded = keras.saving.load_model(path)
    check_same_outputs(model, loaded, images())


def test_xla_arguments_are_checked():
    model = _sa_resnet18()
    with pytest.raises(ValueError, match="Received: xla='yes'"):
        inference.inference_model(model, xla="yes")
    unfolded = layers.FrozenShuffleAttention(shuffle=True)
    x = images(size=4)[..., :2]
    with pytest.raises(ValueError, match="only with its shuffle folded"):
        unfolded(x, shortcut=x)


def test_sa_statistics_as_matmuls_are_stable():
    # A channel far from zero with a small spread: E[x^2] - E[x]^2 loses
    # every digit there; the two-pass matmul form keeps the float64 result.
    from keras_eca.layers.shuffle_attention import _matmul_moments

    rng = np.random.default_rng(5)
    x = (100.0 + 0.01 * rng.standard_normal((2, 6, 6, 4))).astype("float32")
    x64 = x.astype("float64")
    mean = x64.mean(axis=(1, 2), keepdims=True)
    variance = ((x64 - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    for data_format, data in (
        ("channels_last", x), ("channels_first", np.moveaxis(x, -1, 1)),
    ):
        got_mean, got_variance = (
            keras.ops.convert_to_numpy(t)
            for t in _matmul_moments(keras.ops.convert_to_tensor(data), data_format)
        )
        if data_format == "channels_first":
            got_mean, got_variance = (
                np.moveaxis(t, 1, -1) for t in (got_mean, got_variance)
            )
        assert relative_error(got_mean, mean) < 1e-6
        assert relative_error(got_variance, variance) < 1e-4
    one_pass = (x64 ** 2).astype("float32").mean(axis=(1, 2), keepdims=True) - (
        mean.astype("float32") ** 2
    )
    assert relative_error(one_pass, variance) > 1.0  # what the test guards
