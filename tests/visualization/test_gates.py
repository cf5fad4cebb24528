"""attention_gates against NumPy versions of every gate, on the wiring the
applications use (folded BatchNorm, folded shuffle) and on registry models
(flat, include_top=False, nested as a fine-tuning model's backbone)."""

import numpy as np
import pytest

import keras
import keras_eca
from keras_eca import layers as eca_layers
from keras_eca import visualization as viz
from keras_eca.applications import common
from tests.visualization import helpers

RNG = np.random.default_rng(0)
BLOCK_INPUT = RNG.normal(size=(3, 8, 8, 16)).astype("float32")


def block_model(attention, bottleneck=False, channels=32):
    """Input -> conv -> BatchNorm + attention as the builders wire them
    (`common`): channel gates on a FoldedBatchNormalization (bottleneck:
    means from the conv of the pooled input), SA with its shuffle folded."""
    inputs = keras.Input((8, 8, 16))
    if bottleneck:
        x = common.pointwise_conv_and_attention(
            inputs, channels, attention, prefix="blk", bn_name="blk_bn",
            data_format="channels_last",
        )
    else:
        x = keras.layers.Conv2D(
            channels, 3, padding="same", use_bias=False, name="blk_conv"
        )(inputs)
        x = common.batch_norm_and_attention(
            x, attention, name="blk_bn", data_format="channels_last"
        )
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    helpers.randomize(model)
    return model


CHANNEL_GATES = {
    "eca": lambda: eca_layers.EfficientChannelAttention(3, name="attn"),
    "ceca": lambda: eca_layers.EfficientChannelAttention(5, padding="circular", name="attn"),
    "eca_ns": lambda: eca_layers.EfficientChannelAttentionNS(3, name="attn"),
    "se": lambda: eca_layers.SqueezeExcitation(4, name="attn"),
    "se_var1": lambda: eca_layers.SqueezeExcitationVar1(name="attn"),
    "se_var2": lambda: eca_layers.SqueezeExcitationVar2(name="attn"),
    "se_var3": lambda: eca_layers.SqueezeExcitationVar3(name="attn"),
    "se_gc": lambda: eca_layers.SqueezeExcitationGroupConv(groups=4, name="attn"),
}


@pytest.mark.parametrize("bottleneck", [False, True], ids=["conv", "bottleneck"])
@pytest.mark.parametrize("kind", sorted(CHANNEL_GATES))
def test_folded_channel_gates_match_numpy(kind, bottleneck):
    model = block_model(CHANNEL_GATES[kind](), bottleneck=bottleneck)
    attention = model.get_layer("attn")
    assert isinstance(model.get_layer("blk_bn"), eca_layers.FoldedBatchNormalization)
    gates = viz.attention_gates(model, BLOCK_INPUT)
    assert list(gates) == ["attn"] and list(gates["attn"]) == ["channel"]
    got = gates["attn"]["channel"]
    assert got.shape == (3, 32) and got.dtype == np.float32
    y = helpers.batch_norm(
        helpers.value_of(model, "blk_conv", BLOCK_INPUT), model.get_layer("blk_bn")
    )
    expected = helpers.channel_gate(attention, y)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(got) > 0.1  # not a constant gate
    # The gate reported is the one the layer applies: out = y * gate.
    out = helpers.value_of(model, "attn", BLOCK_INPUT)
    np.testing.assert_allclose(out, y * got[:, None, None, :], rtol=1e-4, atol=1e-5)


def test_a_plain_channel_gate_on_a_feature_map():
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.Conv2D(32, 3, padding="same", name="blk_conv")(inputs)
    model = keras.Model(inputs, eca_layers.SqueezeExcitation(8, name="attn")(x))
    helpers.randomize(model)
    got = viz.attention_gates(model, BLOCK_INPUT)["attn"]["channel"]
    y = helpers.value_of(model, "blk_conv", BLOCK_INPUT)
    np.testing.assert_allclose(
        got, helpers.channel_gate(model.get_layer("attn"), y), rtol=1e-5, atol=1e-6
    )


def _check_shuffle_attention(got, layer, y_natural, out_natural):
    channel, spatial = helpers.shuffle_attention_gates(layer, y_natural)
    assert sorted(got) == ["channel", "spatial"]
    np.testing.assert_allclose(got["channel"], channel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["spatial"], spatial, rtol=1e-5, atol=1e-6)
    assert np.ptp(got["spatial"]) > 0.1
    # Rebuilt into one map, the gates give the layer's own output.
    full = helpers.full_natural_gate(layer, got, y_natural.shape[1:3])
    np.testing.assert_allclose(out_natural, y_natural * full, rtol=1e-4, atol=1e-5)


def test_shuffle_attention_folded_as_the_builders_fold_it():
    model = block_model(eca_layers.ShuffleAttention(groups=4, name="attn"))
    layer = model.get_layer("attn")
    assert layer.fold_shuffle  # common replaced it with the folded layer
    got = viz.attention_gates(model, BLOCK_INPUT)["attn"]
    # The conv emits the shuffled order; the gates come back unshuffled.
    y = helpers.value_of(model, "blk_bn", BLOCK_INPUT)
    out = helpers.value_of(model, "attn", BLOCK_INPUT)
    _check_shuffle_attention(
        got, layer, helpers.natural_from_shuffled(y), helpers.natural_from_shuffled(out)
    )
    assert got["channel"].shape == (3, 16) and got["spatial"].shape == (3, 8, 8, 16)


def test_shuffle_attention_unfolded():
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    layer = eca_layers.ShuffleAttention(groups=2, name="attn")
    model = keras.Model(inputs, layer(x))
    helpers.randomize(model)
    got = viz.attention_gates(model, BLOCK_INPUT)["attn"]
    y = helpers.value_of(model, "bn", BLOCK_INPUT)
    # The unfolded layer shuffles its output: undo it to compare.
    out = keras.ops.convert_to_numpy(model(BLOCK_INPUT)).astype("float64")
    out = helpers.natural_from_shuffled(out)
    _check_shuffle_attention(got, layer, y, out)


def test_shuffle_attention_channels_first_gives_channels_last_gates():
    x = BLOCK_INPUT.transpose(0, 3, 1, 2)
    first = eca_layers.ShuffleAttention(groups=2, fold_shuffle=True, data_format="channels_first")
    last = eca_layers.ShuffleAttention(groups=2, fold_shuffle=True, data_format="channels_last")
    inputs_first, inputs_last = keras.Input((16, 8, 8)), keras.Input((8, 8, 16))
    model_first = keras.Model(inputs_first, first(inputs_first))
    model_last = keras.Model(inputs_last, last(inputs_last))
    helpers.randomize(model_first)
    last.set_weights(first.get_weights())
    got = viz.attention_gates(model_first, x)
    expected = viz.attention_gates(model_last, BLOCK_INPUT)
    key_first, key_last = first.name, last.name
    np.testing.assert_allclose(got[key_first]["spatial"], expected[key_last]["spatial"], atol=1e-6)
    np.testing.assert_allclose(got[key_first]["channel"], expected[key_last]["channel"], atol=1e-6)


@pytest.fixture(scope="module")
def images():
    return helpers.real_images(64)[0]


@pytest.fixture(scope="module")
def eca_models():
    flat = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, input_shape=(64, 64, 3), classes=3
    )
    helpers.randomize(flat, seed=1)
    backbone = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, include_top=False,
        input_shape=(64, 64, 3), name="backbone",
    )
    helpers.copy_weights_by_name(flat, backbone)
    # The fine-tuning model: the backbone nested, behind another layer.
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1.0, name="identity")(inputs)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    nested = keras.Model(inputs, keras.layers.Dense(3)(x), name="finetune")
    return flat, backbone, nested


def test_registry_model_flat_top_false_and_nested(eca_models, images):
    flat, backbone, nested = eca_models
    names = [f"conv{s}_block{b}_attn" for s in range(2, 6) for b in (1, 2)]
    got = {
        "flat": viz.attention_gates(flat, images),
        "top_false": viz.attention_gates(backbone, images),
        "nested": viz.attention_gates(nested, images),
    }
    assert list(got["flat"]) == names and list(got["top_false"]) == names
    assert list(got["nested"]) == [f"backbone/{name}" for name in names]
    widths = {2: 64, 3: 128, 4: 256, 5: 512}
    for name in names:
        expected = got["flat"][name]["channel"]
        assert expected.shape == (6, widths[int(name[4])])
        np.testing.assert_allclose(got["top_false"][name]["channel"], expected, atol=1e-6)
        np.testing.assert_allclose(got["nested"][f"backbone/{name}"]["channel"], expected, atol=1e-6)
    for block in ("conv2_block1", "conv5_block2"):
        y = helpers.batch_norm(
            helpers.value_of(flat, f"{block}_2_conv", images), flat.get_layer(f"{block}_2_bn")
        )
        np.testing.assert_allclose(
            got["flat"][f"{block}_attn"]["channel"],
            helpers.channel_gate(flat.get_layer(f"{block}_attn"), y),
            rtol=1e-5, atol=1e-6,
        )
    # Different images, different gates.
    last = got["flat"]["conv5_block2_attn"]["channel"]
    assert np.abs(last[0] - last[1]).max() > 1e-3


def test_a_model_with_preprocessing_inside(eca_models, images):
    flat = eca_models[0]
    model = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, input_shape=(64, 64, 3), classes=3,
        include_preprocessing=True,
    )
    copy = [layer for layer in model.layers if layer.name != "preprocessing"]
    for layer in copy:
        if layer.weights:
            layer.set_weights(flat.get_layer(layer.name).get_weights())
    rgb = (images * helpers.IMAGENET_STD + helpers.IMAGENET_MEAN) * 255.0
    got = viz.attention_gates(model, rgb)
    expected = viz.attention_gates(flat, images)
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key]["channel"], expected[key]["channel"], atol=1e-4)


def test_gates_stay_float32_under_mixed_precision():
    reference = block_model(CHANNEL_GATES["se"](), bottleneck=True)
    keras.config.set_dtype_policy("mixed_float16")
    model = block_model(CHANNEL_GATES["se"](), bottleneck=True)
    model.set_weights(reference.get_weights())
    got = viz.attention_gates(model, BLOCK_INPUT)["attn"]["channel"]
    assert got.dtype == np.float32
    expected = viz.attention_gates(reference, BLOCK_INPUT)["attn"]["channel"]
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_a_backbone_shared_by_two_models(eca_models, images):
    flat, backbone, nested = eca_models
    # A second model over the same backbone: the backbone now has two
    # calls, and each model's gates come from its own.
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(0.5, name="half")(inputs)
    other = keras.Model(inputs, backbone(x, training=False), name="other")
    got = viz.attention_gates(other, images * 2.0)
    expected = viz.attention_gates(nested, images)
    for key in expected:
        np.testing.assert_allclose(got[key]["channel"], expected[key]["channel"], atol=1e-5)
    halved = viz.attention_gates(nested, images * 0.5)
    assert not np.allclose(halved["backbone/conv2_block1_attn"]["channel"],
                           expected["backbone/conv2_block1_attn"]["channel"], atol=1e-3)


def test_the_gate_model_shares_the_weights_and_batches_agree(eca_models, images):
    flat = eca_models[0]
    gate_model = viz.attention_model(flat)
    assert {id(v) for v in gate_model.weights} <= {id(v) for v in flat.weights}
    # All but the classifier and the last gate's kernel, which the probe
    # reads from the layer itself (its output is not in the graph).
    assert len(gate_model.weights) == len(flat.weights) - 3
    one_by_one = viz.attention_gates(flat, images, batch_size=1)
    together = viz.attention_gates(flat, images)
    for key in together:
        np.testing.assert_allclose(one_by_one[key]["channel"], together[key]["channel"], atol=1e-6)


def test_registry_shuffle_attention_model(images):
    model = keras_eca.applications.build_model(
        "resnet18", weights=None, attention="sa", attention_kwargs={"groups": 8},
        input_shape=(64, 64, 3), classes=3,
    )
    helpers.randomize(model, seed=2)
    gates = viz.attention_gates(model, images[:3])
    assert len(gates) == 8
    assert gates["conv3_block2_attn"]["spatial"].shape == (3, 8, 8, 64)
    for block in ("conv3_block2", "conv5_block1"):
        layer = model.get_layer(f"{block}_attn")
        assert layer.fold_shuffle
        y = helpers.value_of(model, f"{block}_2_bn", images[:3])
        out = helpers.value_of(model, f"{block}_attn", images[:3])
        _check_shuffle_attention(
            gates[f"{block}_attn"], layer,
            helpers.natural_from_shuffled(y), helpers.natural_from_shuffled(out),
        )


def test_mobilenet_v2_gates():
    model = keras_eca.applications.build_model(
        "eca_mobilenet_v2", weights=None, input_shape=(32, 32, 3), classes=3
    )
    gates = viz.attention_gates(model, RNG.normal(size=(2, 32, 32, 3)))
    assert list(gates) == [f"block{i}_attn" for i in range(1, 18)]
    assert gates["block17_attn"]["channel"].shape == (2, 320)
    assert viz.last_block_of_each_stage(gates) == [
        f"block{i}_attn" for i in (1, 3, 6, 10, 13, 16, 17)
    ]


def test_errors_name_the_argument_and_value(eca_models):
    flat = eca_models[0]
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)], name="plain")
    with pytest.raises(ValueError, match=r"'plain' has no attention layer: searched for .*ChannelGate.*ShuffleAttention"):
        viz.attention_gates(plain, np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"rank 4 .*Received: images of shape \(64, 64, 3\)"):
        viz.attention_gates(flat, np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match=r"does not fit .*Received: images of shape \(1, 32, 32, 3\)"):
        viz.attention_gates(flat, np.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="empty batch"):
        viz.attention_gates(flat, np.zeros((0, 64, 64, 3)))
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        viz.attention_gates(flat, np.zeros((1, 64, 64, 3)), batch_size=0)
    with pytest.raises(ValueError, match="must be a keras.Model. Received: model='eca_resnet18'"):
        viz.attention_gates("eca_resnet18", np.zeros((1, 64, 64, 3)))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.attn = eca_layers.EfficientChannelAttention(3)

        def call(self, x):
            return self.attn(x)

    with pytest.raises(ValueError, match="functional model .*Received: model='subclassed'"):
        viz.attention_gates(Subclassed(), np.zeros((1, 8, 8, 16)))
