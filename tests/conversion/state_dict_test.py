"""`load_state_dict`: strictness, error messages, layouts, conversions."""

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import conversion
from keras_eca import layers
from keras_eca.conversion import tensors
from tests import reference_fixtures as fixture_utils


@pytest.fixture(scope="module")
def eca_resnet18_state_dict():
    metadata = fixture_utils.load_metadata("official_eca_resnet18")
    return fixture_utils.fixture_state_dict(metadata)


def build(architecture="eca_resnet18", **kwargs):
    kwargs.setdefault("input_shape", (32, 32, 3))
    return applications.build_model(architecture, **kwargs)


def weights_of(model):
    return model.get_weights()


def numpy(variable):
    return variable.numpy()


def test_loads_and_converts_layouts(eca_resnet18_state_dict):
    model = build()
    assert conversion.load_state_dict(model, eca_resnet18_state_dict) == (
        "official"
    )
    sd = eca_resnet18_state_dict
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv1_conv").kernel),
        sd["conv1.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv3_block1_0_conv").kernel),
        sd["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0),
    )
    bn = model.get_layer("conv3_block1_0_bn")
    np.testing.assert_array_equal(
        numpy(bn.moving_variance), sd["layer2.0.downsample.1.running_var"]
    )
    np.testing.assert_array_equal(
        numpy(bn.gamma), sd["layer2.0.downsample.1.weight"]
    )
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv4_block2_attn").kernel),
        sd["layer3.1.eca.conv.weight"].reshape(-1),
    )
    np.testing.assert_array_equal(
        numpy(model.get_layer("predictions").kernel), sd["fc.weight"].T
    )


def test_module_prefix_and_checkpoint_dict(eca_resnet18_state_dict):
    reference = build()
    conversion.load_state_dict(reference, eca_resnet18_state_dict)
    checkpoint = {
        "epoch": 100,
        "arch": "eca_resnet18",
        "state_dict": {
            f"module.{k}": v for k, v in eca_resnet18_state_dict.items()
        },
    }
    model = build()
    conversion.load_state_dict(model, checkpoint, layout="official")
    for a, b in zip(weights_of(model), weights_of(reference)):
        np.testing.assert_array_equal(a, b)


def test_mixed_precision_model(eca_resnet18_state_dict):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = build()
    conversion.load_state_dict(model, eca_resnet18_state_dict)
    kernel = model.get_layer("conv1_conv").kernel
    assert kernel.dtype == "float32"
    np.testing.assert_array_equal(
        numpy(kernel),
        eca_resnet18_state_dict["conv1.weight"].transpose(2, 3, 1, 0),
    )


def test_every_problem_in_one_error_and_nothing_assigned(
    eca_resnet18_state_dict,
):
    model = build(classes=10)
    before = weights_of(model)
    sd = dict(eca_resnet18_state_dict)
    del sd["layer1.0.bn1.running_mean"]
    sd["layer1.0.extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(ValueError) as info:
        conversion.load_state_dict(model, sd)
    message = str(info.value)
    assert "Missing tensors (1): ['layer1.0.bn1.running_mean']" in message
    assert "Unexpected tensors (1): ['layer1.0.extra.weight']" in message
    assert (
        "fc.weight has shape (1000, 512) but the model's predictions "
        "expects (10, 512)" in message
    )
    assert "fc.bias has shape (1000,)" in message
    for a, b in zip(weights_of(model), before):
        np.testing.assert_array_equal(a, b)


def test_eca_kernel_size_mismatch_names_the_fix(eca_resnet18_state_dict):
    # The official code default, instead of the checkpoint's k3577.
    model = build(kernel_sizes=(3, 3, 3, 3))
    with pytest.raises(ValueError) as info:
        conversion.load_state_dict(model, eca_resnet18_state_dict)
    message = str(info.value)
    assert (
        "layer2.0.eca.conv.weight has kernel size 5 but the model's "
        "conv3_block1_attn has 3" in message
    )
    assert "layer4.1.eca.conv.weight has kernel size 7" in message
    assert "pass kernel_sizes=[3, 5, 7, 7]" in message
    assert "layer1.0.eca" not in message  # stage 1 matches


def test_wrong_layout_and_wrong_model(eca_resnet18_state_dict):
    with pytest.raises(ValueError) as info:
        conversion.load_state_dict(
            build(), eca_resnet18_state_dict, layout="timm"
        )
    assert "layer1.0.se.conv.weight" in str(info.value)
    assert "layer1.0.eca.conv.weight" in str(info.value)
    with pytest.raises(ValueError, match="Missing tensors"):
        conversion.load_state_dict(build("resnet34"), eca_resnet18_state_dict)
    no_top = build(include_top=False)
    with pytest.raises(ValueError, match=r"Unexpected tensors \(2\)"):
        conversion.load_state_dict(no_top, eca_resnet18_state_dict)
    without_fc = {
        k: v for k, v in eca_resnet18_state_dict.items() if "fc." not in k
    }
    conversion.load_state_dict(no_top, without_fc)


def test_bad_arguments(eca_resnet18_state_dict):
    with pytest.raises(ValueError, match="Received: layout='tf'"):
        conversion.load_state_dict(build(), {}, layout="tf")
    with pytest.raises(ValueError, match="must be a mapping"):
        conversion.load_state_dict(build(), [1, 2])
    with pytest.raises(ValueError, match="timm's MobileNetV2"):
        conversion.load_state_dict(build("mobilenet_v2"), {}, layout="timm")
    inputs = keras.Input((8, 8, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="not a keras_eca.applications"):
        conversion.load_state_dict(other, eca_resnet18_state_dict)
    model = build("resnet18", attention="se_var3", include_top=False)
    with pytest.raises(ValueError, match="no PyTorch counterpart"):
        conversion.load_state_dict(model, eca_resnet18_state_dict)


def test_detect_layout():
    assert conversion.detect_layout({"conv1.0.weight": 0}) == "timm"
    assert conversion.detect_layout(
        {"module.layer1.0.downsample.2.weight": 0}
    ) == "timm"
    assert conversion.detect_layout({"layer1.0.sa.cweight": 0}) == "official"
    assert conversion.detect_layout({"features.0.0.weight": 0}) == "official"


def test_eca_ns_conversion_matches_the_official_module():
    """ECA-NS: conv weight [C, 1, k] of a grouped Conv1d over unfolded
    channels (official models/eca_ns.py) -> Keras kernel (k, C)."""
    channels, k = 8, 3
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((channels, 1, k)).astype("float32")
    x = rng.standard_normal((2, 4, 4, channels)).astype("float32")
    layer = layers.EfficientChannelAttentionNS(kernel_size=k)
    layer.build(x.shape)
    (entry,) = tensors.layer_tensors(layer, "eca")
    assert entry.key == "eca.conv.weight"
    assert entry.torch_shape == (channels, 1, k)
    layer.kernel.assign(entry.convert(weight))

    pooled = np.pad(x.mean(axis=(1, 2)), ((0, 0), (1, 1)))
    logits = np.stack(
        [
            (pooled[:, c : c + k] * weight[c, 0]).sum(axis=1)
            for c in range(channels)
        ],
        axis=1,
    )
    expected = x / (1 + np.exp(-logits))[:, None, None, :]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6
    )


def test_se_and_sa_conversions():
    se = layers.SqueezeExcitation(reduction_ratio=4)
    se.build((None, 4, 4, 16))
    entries = {e.key: e for e in tensors.layer_tensors(se, "se")}
    assert entries["se.fc1.weight"].torch_shape == (4, 16, 1, 1)
    assert entries["se.fc2.weight"].torch_shape == (16, 4, 1, 1)
    fc1 = np.arange(64, dtype="float32").reshape(4, 16, 1, 1)
    np.testing.assert_array_equal(
        entries["se.fc1.weight"].convert(fc1), fc1[:, :, 0, 0].T
    )
    sa = layers.ShuffleAttention(groups=4)
    sa.build((None, 4, 4, 32))
    entries = {e.key: e for e in tensors.layer_tensors(sa, "sa")}
    names = ("cweight", "cbias", "sweight", "sbias", "gn.weight", "gn.bias")
    assert sorted(entries) == sorted(f"sa.{n}" for n in names)
    assert entries["sa.cweight"].torch_shape == (1, 4, 1, 1)
    assert entries["sa.gn.bias"].torch_shape == (4,)


def test_sa_models_hold_the_last_conv_and_bn_in_the_shuffled_order():
    """The builders fold SA's shuffle into the block's last conv and BN:
    their PyTorch tensors are loaded permuted along the output channels."""
    model = build("resnet50", attention="sa", input_shape=(32, 32, 3), include_top=False)
    attention = [l for l in model.layers if isinstance(l, layers.ShuffleAttention)]
    assert len(attention) == 16 and all(l.fold_shuffle for l in attention)
    orders = conversion.state_dict.folded_shuffle_orders(model)
    assert sorted(orders) == sorted(
        f"{l.name[: -len('_attn')]}_3_{kind}" for l in attention for kind in ("conv", "bn")
    )
    np.testing.assert_array_equal(orders["conv2_block1_3_conv"], layers.shuffle_order(256))
    # The loader applies them: conv3 weight [O, I, 1, 1] and bn3 vectors.
    prefixes = conversion.naming.torch_prefixes(model, "official")
    state_dict = {}
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.name in prefixes:
            for entry in tensors.layer_tensors(layer, prefixes[layer.name]):
                value = rng.normal(size=entry.torch_shape).astype("float32")
                if entry.key.endswith("running_var"):
                    value = np.abs(value)
                state_dict[entry.key] = value
    conversion.load_state_dict(model, state_dict)
    order = layers.shuffle_order(256)
    conv3 = state_dict["layer1.0.conv3.weight"]
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv2_block1_3_conv").kernel),
        conv3[order].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv2_block1_3_bn").moving_mean),
        state_dict["layer1.0.bn3.running_mean"][order],
    )
    # Layers outside the fold load as they are.
    np.testing.assert_array_equal(
        numpy(model.get_layer("conv2_block1_0_bn").moving_mean),
        state_dict["layer1.0.downsample.1.running_mean"],
    )


def test_a_folded_shuffle_needs_a_conv_and_bn_before_it():
    inputs = keras.Input((4, 4, 16))
    outputs = layers.ShuffleAttention(groups=2, fold_shuffle=True, name="sa")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="'sa' folds its channel shuffle"):
        conversion.state_dict.folded_shuffle_orders(model)


def test_a_name_with_and_without_module_prefix_is_an_error(
    eca_resnet18_state_dict,
):
    model = build()
    before = weights_of(model)
    state_dict = dict(eca_resnet18_state_dict)
    state_dict["module.fc.bias"] = np.full_like(state_dict["fc.bias"], np.nan)

    with pytest.raises(ValueError) as info:
        conversion.load_state_dict(model, state_dict)

    assert "'fc.bias'" in str(info.value)
    assert "'module.fc.bias'" in str(info.value)
    for got, want in zip(weights_of(model), before):
        np.testing.assert_array_equal(got, want)


def _with(state_dict, key, value):
    changed = dict(state_dict)
    changed[key] = value
    return changed


_GAMMA = "layer1.0.bn1.weight"  # 64 values


def _one_nan(value):
    value = value.copy()
    value[1] = np.nan
    return value


@pytest.mark.parametrize(
    "change, problem",
    [
        (_one_nan, "1 of 64 values are NaN or infinite"),
        (lambda v: np.full_like(v, -np.inf), "64 of 64 values are NaN"),
        (lambda v: v.astype("float64") * 1e300, "holds 1.49e+300, beyond the"),
        (lambda v: v.astype("complex64"), "a complex tensor (complex64)"),
        (lambda v: v.astype("int64"), "an integer tensor (int64)"),
        (lambda v: v > 0, "a boolean tensor (bool)"),
    ],
)
def test_values_that_would_not_survive_are_refused(
    eca_resnet18_state_dict, change, problem
):
    model = build()
    before = weights_of(model)
    value = change(eca_resnet18_state_dict[_GAMMA])
    state_dict = _with(eca_resnet18_state_dict, _GAMMA, value)

    with pytest.raises(ValueError, match="check_values=False") as info:
        conversion.load_state_dict(model, state_dict)

    assert f"{_GAMMA}: {problem}" in str(info.value)
    for got, want in zip(weights_of(model), before):
        np.testing.assert_array_equal(got, want)


def test_negative_batchnorm_variance_is_refused(eca_resnet18_state_dict):
    key = "layer2.0.bn2.running_var"
    value = eca_resnet18_state_dict[key].copy()
    value[3] = -0.5
    state_dict = _with(eca_resnet18_state_dict, key, value)

    with pytest.raises(ValueError, match=r"running_var: a BatchNorm variance"):
        conversion.load_state_dict(build(), state_dict)


def test_check_values_false_loads_them_as_cast(eca_resnet18_state_dict):
    key = "layer2.0.bn2.running_var"
    value = eca_resnet18_state_dict[key].astype("float64")
    value[0], value[1] = np.nan, -1.0
    model = build()

    conversion.load_state_dict(
        model, _with(eca_resnet18_state_dict, key, value), check_values=False
    )

    got = numpy(model.get_layer("conv3_block1_2_bn").moving_variance)
    assert np.isnan(got[0]) and got[1] == -1.0
    with pytest.raises(ValueError, match="check_values"):
        conversion.load_state_dict(model, {}, check_values="no")


@pytest.mark.parametrize("policy", ["bfloat16", "float16"])
def test_loads_under_a_half_policy(eca_resnet18_state_dict, policy):
    keras.config.set_dtype_policy(policy)  # reset by the conftest fixture
    model = build()

    conversion.load_state_dict(model, eca_resnet18_state_dict)

    kernel = model.get_layer("conv1_conv").kernel
    assert keras.backend.standardize_dtype(kernel.dtype) == policy
    expected = eca_resnet18_state_dict["conv1.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(kernel, "float32")),
        expected,
        rtol=1e-2,
        atol=1e-3,
    )
    # 1e6 fits bfloat16 (max 3.4e38), not float16 (max 65504).
    big = np.full_like(eca_resnet18_state_dict["conv1.weight"], 1e6)
    state_dict = _with(eca_resnet18_state_dict, "conv1.weight", big)
    if policy == "float16":
        with pytest.raises(ValueError, match=r"conv1.weight: holds 1e\+06"):
            conversion.load_state_dict(build(), state_dict)
    else:
        conversion.load_state_dict(build(), state_dict)
