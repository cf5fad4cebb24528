"""`build_model`: argument validation, attention overrides, inputs, layout."""

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import layers


def small(architecture="resnet18", **kwargs):
    kwargs.setdefault("input_shape", (32, 32, 3))
    return applications.build_model(architecture, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"include_top": "yes"}, "Received: include_top='yes'"),
        ({"classes": 0}, "Received: classes=0"),
        ({"classes": 2.5}, "Received: classes=2.5"),
        ({"pooling": "mean"}, "Received: pooling='mean'"),
        (
            {"classifier_activation": "sigmoidal"},
            "Received: classifier_activation='sigmoidal'",
        ),
        ({"name": ""}, "Received: name=''"),
        ({"weights": 3}, "Received: weights=3"),
        ({"weights": "no/such/file.h5"}, "weights='no/such/file.h5'"),
        (
            {"architecture": "se_resnet18", "weights": "imagenet"},
            r"not available for 'se_resnet18'.*weights=None.*"
            r"Received: weights='imagenet'",
        ),
        (
            {"include_preprocessing": 1},
            "Received: include_preprocessing=1",
        ),
        (
            {"include_preprocessing": True, "input_shape": (32, 32, 1)},
            r"3 channels.*Received: input_shape=\(32, 32, 1\)",
        ),
        (
            {"weights": "imagenet", "classes": 10},
            r"`classes` must be 1000.*Received: classes=10",
        ),
        (
            {"weights": "imagenet", "classifier_activation": "relu"},
            "Received: classifier_activation='relu'",
        ),
        (
            {"weights": "imagenet", "input_shape": (64, 64, 1)},
            r"3 channels.*Received: input_shape=\(64, 64, 1\)",
        ),
        ({"input_shape": (16, 16, 3)}, r"input_shape=\(16, 16, 3\)"),
        ({"input_shape": (None, 31, 3)}, r"input_shape=\(None, 31, 3\)"),
        ({"input_shape": (64, 64)}, r"input_shape=\(64, 64\)"),
        ({"input_shape": (64, 64, None)}, r"known number of channels"),
        ({"input_shape": (64, -1, 3)}, r"input_shape=\(64, -1, 3\)"),
        ({"kernel_sizes": (3, 5)}, r"list of 4 .*kernel_sizes=\(3, 5\)"),
        (
            {"attention": "eca", "kernel_sizes": (3, 4, 5, 7)},
            r"odd integers.*kernel_sizes=\(3, 4, 5, 7\)",
        ),
        (
            {"attention": "se", "kernel_sizes": "adaptive"},
            r"only applies to ECA.*kernel_sizes='adaptive'",
        ),
        (
            {"attention_kwargs": {"kernel_size": 3}},
            r"attention=None.*attention_kwargs=\{'kernel_size': 3\}",
        ),
        ({"attention_kwargs": [1]}, r"Received: attention_kwargs=\[1\]"),
        ({"attention": "ecca"}, r"Unknown attention 'ecca'.*Available"),
        # A layer class that is not an attention layer: the documented
        # ValueError, not Dense's TypeError for its missing `units`.
        ({"attention": keras.layers.Dense}, r"Dense is not one"),
        (
            {"attention": "eca", "attention_kwargs": {"gamma": float("nan")}},
            "Received: gamma=nan",
        ),
        ({"classes": np.bool_(True)}, "Received: classes="),
        ({"input_shape": (np.float64(32), 32, 3)}, "Received: input_shape="),
        (
            {"attention": "eca", "attention_kwargs": {"kernel_size": 4}},
            "Received: kernel_size=4",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_numpy_integers_are_integers():
    # E.g. sizes read from an array or a config: any integer but a bool.
    model = small(
        "eca_resnet18",
        input_shape=tuple(np.array([32, 32, 3])),
        classes=np.int64(10),
        kernel_sizes=list(np.array([3, 3, 5, 5])),
    )
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 10)
    assert model.get_layer("predictions").units == 10
    assert type(model.get_layer("predictions").get_config()["units"]) is int
    assert model.get_layer("conv5_block1_attn").kernel.shape == (5,)


def test_unknown_model_lists_available_names():
    with pytest.raises(ValueError) as info:
        applications.build_model("resnet51")
    message = str(info.value)
    assert "Received: architecture='resnet51'" in message
    assert "'eca_resnet50'" in message and "'ecaresnet269d'" in message


def test_unreadable_weights_file(tmp_path):
    # Loading weights is tested in tests/weights.
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not a valid `.weights.h5`"):
        small(weights=str(path))


def test_kernel_sizes_and_attention_kwargs_conflict():
    with pytest.raises(ValueError, match="not both"):
        small(
            "eca_resnet18",
            kernel_sizes=(3, 3, 3, 3),
            attention_kwargs={"kernel_size": 3},
        )


def test_default_input_shapes_follow_keras_applications():
    assert small(input_shape=None).input_shape == (None, 224, 224, 3)
    model = small(input_shape=None, include_top=False)
    assert model.input_shape == (None, None, None, 3)
    # The classifier pools globally, so a dynamic size works with a top too.
    model = small(input_shape=(None, None, 3))
    assert model.output_shape == (None, 1000)


def test_attention_override_on_any_backbone():
    model = small("resnet50", attention="se_var3", include_top=False)
    attention = [l for l in model.layers if l.name.endswith("_attn")]
    assert len(attention) == 16
    assert all(isinstance(l, layers.SqueezeExcitationVar3) for l in attention)
    model = small("mobilenet_v2", attention="eca", include_top=False)
    block_17 = model.get_layer("block17_attn")
    assert block_17.kernel.shape == (5,)  # psi(320) = 5
    model = small("eca_resnet50", attention=None)
    names = {layer.name for layer in model.layers}
    assert not any(name.endswith("_attn") for name in names)
    plain = small("resnet50")
    assert model.count_params() == plain.count_params()
    # SA on 64-channel basic blocks needs fewer groups than its default 64.
    with pytest.raises(ValueError, match="Received: groups=64"):
        small("resnet18", attention="sa")
    model = small("resnet18", attention="sa", attention_kwargs={"groups": 32})
    assert model.get_layer("conv2_block1_attn").cweight.shape == (1,)


def test_attention_override_by_class_and_config():
    model = small(
        "resnet18",
        attention=layers.EfficientChannelAttention,
        kernel_sizes=(3, 3, 5, 5),
        include_top=False,
    )
    assert model.get_layer("conv5_block1_attn").kernel.shape == (5,)
    config = keras.saving.serialize_keras_object(
        layers.SqueezeExcitation(reduction_ratio=4)
    )
    model = small("resnet18", attention=config, include_top=False)
    layer = model.get_layer("conv2_block1_attn")
    assert layer.reduction_ratio == 4
    assert layer.squeeze_kernel.shape == (64, 16)


def test_kernel_size_overrides():
    model = small("eca_resnet50", kernel_sizes="adaptive", include_top=False)
    sizes = [
        model.get_layer(f"conv{s}_block1_attn").kernel.shape[0]
        for s in range(2, 6)
    ]
    assert sizes == [5, 5, 5, 7]  # the paper's rule on 256 .. 2048
    model = small(
        "eca_resnet50", attention_kwargs={"kernel_size": 9}, include_top=False
    )
    assert model.get_layer("conv2_block1_attn").kernel.shape == (9,)
    assert model.get_layer("conv5_block3_attn").kernel.shape == (9,)
    # Another attention drops the row's ECA sizes and keeps its own defaults.
    model = small("eca_resnet18", attention="ceca", include_top=False)
    assert model.get_layer("conv2_block1_attn").padding == "circular"
    assert model.get_layer("conv5_block1_attn").kernel.shape == (5,)
    model = small("ecaresnet26t", kernel_sizes=(3, 3, 3, 3), include_top=False)
    assert model.get_layer("conv5_block2_attn").kernel.shape == (3,)
    model = small(
        "se_resnet18",
        attention_kwargs={"reduction_ratio": 4},
        include_top=False,
    )
    assert model.get_layer("conv2_block1_attn").squeeze_kernel.shape == (64, 16)


def test_input_tensor():
    inputs = keras.Input((48, 48, 3))
    model = applications.build_model(
        "resnet18", input_tensor=inputs, include_top=False
    )
    assert model.input is inputs
    assert model.output_shape == (None, 2, 2, 512)
    # An intermediate tensor: the model starts at its source input.
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    model = applications.build_model(
        "mobilenet_v2", input_tensor=scaled, input_shape=(48, 48, 3)
    )
    assert model.input is inputs
    assert model(np.zeros((1, 48, 48, 3), "float32")).shape == (1, 1000)
    with pytest.raises(ValueError, match=r"input_shape=\(64, 64, 3\)"):
        applications.build_model(
            "resnet18", input_tensor=inputs, input_shape=(64, 64, 3)
        )
    with pytest.raises(ValueError, match="must be a Keras tensor"):
        applications.build_model(
            "resnet18", input_tensor=np.zeros((1, 32, 32, 3))
        )


def test_logits_and_softmax():
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    model = small("eca_resnet18", classes=5, classifier_activation=None)
    assert model.get_layer("predictions").activation is (
        keras.activations.linear
    )
    logits = keras.ops.convert_to_numpy(model(x))
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    softmax_model = small("eca_resnet18", classes=5)
    softmax_model.set_weights(model.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(softmax_model(x)), probs, atol=1e-6
    )


def test_dropout_head():
    assert small("mobilenet_v2").get_layer("dropout").rate == 0.2
    assert small("eca_mobilenet_v2").get_layer("dropout").rate == 0.25
    names = {layer.name for layer in small("resnet18").layers}
    assert "dropout" not in names


def test_stable_layer_names():
    names = {layer.name for layer in small("eca_resnet50").layers}
    for name in (
        "conv1_pad",
        "conv1_conv",
        "conv1_bn",
        "conv1_relu",
        "pool1_pad",
        "pool1_pool",
        "conv2_block1_0_conv",
        "conv2_block1_0_bn",
        "conv2_block1_1_conv",
        "conv2_block1_2_bn",
        "conv2_block1_3_bn",
        "conv2_block1_attn",
        "conv2_block1_add",
        "conv2_block1_out",
        "conv3_block1_2_pad",
        "conv5_block3_out",
        "avg_pool",
        "predictions",
    ):
        assert name in names, name
    names = {layer.name for layer in small("ecaresnet50d").layers}
    for name in (
        "conv1_1_conv",
        "conv1_2_relu",
        "conv1_3_conv",
        "conv1_bn",
        "conv3_block1_0_pool",
        "conv3_block1_0_conv",
    ):
        assert name in names, name
    assert "conv2_block1_0_pool" not in names  # stride 1: no pool
    names = {layer.name for layer in small("eca_mobilenet_v2").layers}
    for name in (
        "stem_conv",
        "stem_pad",
        "block1_dw_conv",
        "block1_attn",
        "block2_expand_relu",
        "block2_dw_pad",
        "block3_add",
        "block17_project_bn",
        "head_relu",
        "predictions",
    ):
        assert name in names, name
    assert "block1_expand_conv" not in names  # t = 1


def test_pytorch_padding_of_strided_layers():
    """Strided convs / pools see PyTorch's symmetric padding."""
    model = small("eca_resnet50", include_top=False)
    pads = {"conv1_pad": 3, "pool1_pad": 1, "conv3_block1_2_pad": 1}
    for name, pad in pads.items():
        assert model.get_layer(name).padding == ((pad, pad), (pad, pad))
    assert model.get_layer("conv3_block1_2_conv").padding == "valid"
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_1_conv").strides == (1, 1)
    bn = model.get_layer("conv2_block1_1_bn")
    assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    assert not model.get_layer("conv2_block1_1_conv").use_bias


def test_avg_down_pool_matches_pytorch_ceil_mode():
    """AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) on odd maps.

    A 100 px input gives 25x25 maps in stage 2, so the last window of the
    shortcut pool of stage 3 covers a single row / column.
    """
    model = small("ecaresnet26t", input_shape=(100, 100, 3), include_top=False)
    probe = keras.Model(
        model.input,
        [
            model.get_layer("conv2_block2_out").output,
            model.get_layer("conv3_block1_0_pool").output,
        ],
    )
    x = np.random.default_rng(1).uniform(size=(1, 100, 100, 3))
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(x))
    assert before.shape[1:3] == (25, 25)
    expected = np.zeros((1, 13, 13, before.shape[-1]), "float32")
    for i in range(13):
        for j in range(13):
            window = before[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            expected[:, i, j] = window.mean(axis=(1, 2))  # valid cells only
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)


def test_channels_first_builds():
    keras.config.set_image_data_format("channels_first")
    for name in ("sa_resnet50", "eca_mobilenet_v2", "ecaresnet26t"):
        model = applications.build_model(
            name, include_top=False, input_shape=(3, 64, 64)
        )
        row = applications.model_config(name)
        assert model.output_shape == (None, row["num_features"], 2, 2)
        p2 = model.get_layer(row["feature_layers"]["P2"]).output
        assert p2.shape == (None, row["feature_channels"]["P2"], 16, 16)
    model = applications.build_model("resnet18", input_shape=None)
    assert model.input_shape == (None, 3, 224, 224)
    with pytest.raises(ValueError, match="known number of channels"):
        applications.build_model("resnet18", input_shape=(None, 64, 64))


def test_bottleneck_gates_pool_the_narrow_conv_input_in_float32():
    # GAP(conv3(h)) == conv3(GAP(h)): the gate's means come from the
    # 4x narrower h, through the same conv3 layer, and only in float32.
    names = {layer.name for layer in small("eca_resnet50").layers}
    assert "conv2_block1_3_pool" in names and "conv5_block3_3_pool" in names
    for name in ("resnet50", "sa_resnet50", "eca_resnet18", "eca_mobilenet_v2"):
        assert not any(
            layer.name.endswith("_pool") and "block" in layer.name
            and not layer.name.endswith("_0_pool")
            for layer in small(name).layers
        ), name
    try:
        keras.config.set_dtype_policy("mixed_float16")
        names = {layer.name for layer in small("eca_resnet50").layers}
    finally:
        keras.config.set_dtype_policy("float32")
    assert "conv2_block1_3_pool" not in names


@pytest.mark.parametrize(
    "architecture, kwargs",
    [
        ("resnet18", {}),
        ("eca_resnet18", {}),
        ("se_resnet18", {}),
        ("resnet18", {"attention": "sa", "attention_kwargs": {"groups": 8}}),
        ("eca_resnet50", {}),  # the bottleneck's pooled-conv shortcut
        ("mobilenet_v2", {}),
        ("eca_mobilenet_v2", {}),
    ],
)
def test_float64_policy_builds_float64_models(architecture, kwargs):
    # For numerical checks: float64 end to end, classifier included, and
    # the float32 model's outputs to float32 round-off.
    float32 = small(architecture, classes=10, classifier_activation=None, **kwargs)
    keras.config.set_dtype_policy("float64")
    model = small(architecture, classes=10, classifier_activation=None, **kwargs)
    assert {w.dtype for w in model.weights} == {"float64"}
    for layer in model.layers[1:]:
        for tensor in keras.tree.flatten(layer.output):
            assert tensor.dtype == "float64", layer.name
    model.set_weights(float32.get_weights())
    x = np.random.default_rng(0).uniform(-2, 2, (2, 32, 32, 3))
    y = model(x)
    assert keras.backend.standardize_dtype(y.dtype) == "float64"
    expected = keras.ops.convert_to_numpy(float32(x.astype("float32")))
    y = keras.ops.convert_to_numpy(y)
    # Relative to the logits' scale (~1e-11 for a random-init MobileNetV2).
    np.testing.assert_allclose(y, expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_half_precision_policies_build(policy):
    keras.config.set_dtype_policy(policy)
    model = small("eca_resnet50", classes=10, classifier_activation=None)
    y = model(np.random.default_rng(0).uniform(-2, 2, (2, 32, 32, 3)), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
