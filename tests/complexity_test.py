"""Parameter and operation counts against independent arithmetic.

The expected integers are derived here from the architectures (torchvision
ResNet v1.5 and MobileNetV2 at 224x224, batch 1), not read back from the
counter; the literals next to them are the same numbers written out.
"""

import collections
import functools
import math

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import complexity
from keras_eca import layers

SIZE = 224
CLASSES = 1000
ECA_R50_K = (3, 5, 5, 7)
R50_DEPTHS = (3, 4, 6, 3)


@functools.lru_cache(maxsize=None)
def built(name):
    return applications.build_model(name, input_shape=(SIZE, SIZE, 3))


class Tally:
    """Conv MACs and BN / ReLU input elements, added up conv by conv."""

    def __init__(self):
        self.conv = self.bn = self.relu = 0

    def conv_bn(self, hw, cin, cout, k, relu=True, groups=1):
        self.conv += hw * cout * (cin // groups) * k * k
        self.bn += hw * cout
        self.relu += hw * cout if relu else 0


def resnet50_blocks():
    """(channels, H*W) of the output of every bottleneck block."""
    blocks = []
    side = SIZE // 4
    for stage, depth in enumerate(R50_DEPTHS):
        side = side // 2 if stage else side
        blocks += [(256 * 2**stage, side * side)] * depth
    return blocks


def resnet50_tally():
    t = Tally()
    t.conv_bn(112 * 112, 3, 64, 7)
    cin, side = 64, 56
    for stage, depth in enumerate(R50_DEPTHS):
        width = 64 * 2**stage
        for block in range(depth):
            in_hw = side * side
            if stage and not block:
                side //= 2
            hw = side * side
            t.conv_bn(in_hw, cin, width, 1)
            t.conv_bn(hw, width, width, 3)
            t.conv_bn(hw, width, 4 * width, 1, relu=False)
            if not block:
                t.conv_bn(hw, cin, 4 * width, 1, relu=False)
            t.relu += hw * 4 * width  # after the add
            cin = 4 * width
    return t


# (t, c, n, s) of torchvision's MobileNetV2.
MBV2_TABLE = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
ECA_MBV2_K = (1, 1, 1, 1, 3, 3, 3)


def mobilenet_v2_blocks():
    """(channels, H*W, row index) of the output of every block."""
    blocks, side = [], SIZE // 2
    for row, (_, c, n, s) in enumerate(MBV2_TABLE):
        for i in range(n):
            side = side // s if i == 0 else side
            blocks.append((c, side * side, row))
    return blocks


def mobilenet_v2_tally():
    t = Tally()
    t.conv_bn(112 * 112, 3, 32, 3)
    cin, side = 32, 112
    for expansion, c, n, s in MBV2_TABLE:
        for i in range(n):
            in_hw = side * side
            side = side // s if i == 0 else side
            hidden = cin * expansion
            if expansion != 1:
                t.conv_bn(in_hw, cin, hidden, 1)
            t.conv_bn(side * side, hidden, hidden, 3, groups=hidden)
            t.conv_bn(side * side, hidden, c, 1, relu=False)
            cin = c
    t.conv_bn(7 * 7, 320, 1280, 1)
    return t


def head_thop(features):
    return features * (7 * 7 + 1) + (2 * features - 1) * CLASSES


def thop_total(t, features):
    return t.conv + 4 * t.bn + t.relu + head_thop(features)


def macs_total(t, features):
    return t.conv + features * CLASSES


def eca_overhead(blocks, kernel):
    """(params, MACs, thop ops) of ECA on blocks [(C, HW, k)]."""
    params = sum(kernel(b) for b in blocks)
    macs = sum(b[0] * kernel(b) for b in blocks)
    pool = sum(c * (hw + 1) for c, hw, *_ in blocks)
    return params, macs, pool + macs


def se_overhead(blocks, r):
    params = macs = thop = 0
    for c, hw, *_ in blocks:
        h = c // r
        params += 2 * c * h + h + c
        macs += 2 * c * h
        thop += c * (hw + 1) + (2 * c - 1) * h + h + (2 * h - 1) * c
    return params, macs, thop


def sa_overhead(blocks, groups=64):
    params = macs = thop = 0
    for c, hw in blocks:
        params += 6 * c // (2 * groups)
        macs += c // 2 + hw * c // 2
        thop += (c // 2) * (hw + 1) + 4 * hw * c // 2
    return params, macs, thop


R50 = resnet50_tally()
MBV2 = mobilenet_v2_tally()
R50_PARAMS = 25_557_032
MBV2_PARAMS = 3_504_872


def test_resnet50_arithmetic_is_the_measured_breakdown():
    assert R50.conv == 4_087_136_256
    assert R50.bn == 11_113_984
    assert R50.relu == 9_608_704
    by_class = collections.Counter()
    for _, cls, ops in complexity.layer_ops(built("resnet50"), "thop"):
        by_class[cls] += ops
    assert by_class["Conv2D"] == R50.conv
    assert by_class["BatchNormalization"] == 4 * R50.bn
    assert by_class["ReLU"] == R50.relu
    assert by_class["GlobalAveragePooling2D"] == 2048 * 50 == 102_400
    assert by_class["Dense"] == (2 * 2048 - 1) * 1000
    assert by_class["MaxPooling2D"] == by_class["Add"] == 0


def test_mobilenet_v2_arithmetic_is_the_measured_breakdown():
    assert MBV2.conv == 299_494_272
    assert MBV2.bn == 6_678_112
    assert MBV2.relu == 6_105_792
    by_class = collections.Counter()
    for _, cls, ops in complexity.layer_ops(built("mobilenet_v2"), "macs"):
        by_class[cls] += ops
    assert by_class["Conv2D"] + by_class["DepthwiseConv2D"] == MBV2.conv
    assert by_class["Dense"] == 1280 * 1000


def test_plain_backbones_match_the_eca_paper_table_3():
    r50, mbv2 = built("resnet50"), built("mobilenet_v2")
    assert complexity.count_params(r50) == R50_PARAMS
    assert complexity.count_ops(r50, "thop") == thop_total(R50, 2048)
    assert complexity.count_ops(r50, "thop") == 4_145_398_296
    assert complexity.count_ops(r50, "macs") == macs_total(R50, 2048)
    assert complexity.count_ops(r50, "macs") == 4_089_184_256
    assert complexity.count_params(mbv2) == MBV2_PARAMS
    assert complexity.count_ops(mbv2, "thop") == thop_total(MBV2, 1280)
    assert complexity.count_ops(mbv2, "thop") == 334_935_512
    assert complexity.count_ops(mbv2, "macs") == macs_total(MBV2, 1280)
    assert complexity.count_ops(mbv2, "macs") == 300_774_272
    # The paper's units are binary: 24.37M, 3.86G, 3.34M, 319.4M.
    fmt = complexity.format_count
    assert fmt(R50_PARAMS, binary=True) == "24.37 M"
    assert fmt(4_145_398_296, binary=True) == "3.86 G"
    assert fmt(MBV2_PARAMS, binary=True) == "3.34 M"
    assert fmt(334_935_512, binary=True) == "319.42 M"


def expect_counts(name, base_params, base_macs, base_thop, overhead):
    model = built(name)
    params, macs, thop = overhead
    assert complexity.count_params(model) == base_params + params
    assert complexity.count_ops(model, "macs") == base_macs + macs
    assert complexity.count_ops(model, "thop") == base_thop + thop
    # The parameter count is what Keras calls trainable.
    keras_count = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert complexity.count_params(model) == keras_count
    return params, macs, thop


R50_BASE = (R50_PARAMS, macs_total(R50, 2048), thop_total(R50, 2048))
MBV2_BASE = (MBV2_PARAMS, macs_total(MBV2, 1280), thop_total(MBV2, 1280))


def test_eca_resnet50():
    blocks = [
        (c, hw, ECA_R50_K[stage])
        for (c, hw), stage in zip(
            resnet50_blocks(),
            [s for s, d in enumerate(R50_DEPTHS) for _ in range(d)],
        )
    ]
    overhead = eca_overhead(blocks, kernel=lambda b: b[2])
    assert overhead == (80, 86_272, 5_620_736)
    expect_counts("eca_resnet50", *R50_BASE, overhead)
    # 25,557,112 params, 4,089,270,528 MACs, 4,151,019,032 thop ops.
    assert complexity.count_ops(built("eca_resnet50"), "thop") == 4_151_019_032


def test_se_resnet50():
    overhead = se_overhead(resnet50_blocks(), r=16)
    assert overhead == (2_530_992, 2_514_944, 10_549_248)
    expect_counts("se_resnet50", *R50_BASE, overhead)
    assert complexity.count_params(built("se_resnet50")) == 28_088_024


def test_sa_resnet50():
    overhead = sa_overhead(resnet50_blocks())
    # 708 parameters (not the paper's "300"); the GN half of every SA
    # input is 2,759,680 elements (the SA abstract's "2.76e-3 GFLOPs").
    assert overhead == (708, 2_767_232, 13_805_952)
    assert sum(hw * c // 2 for c, hw in resnet50_blocks()) == 2_759_680
    expect_counts("sa_resnet50", *R50_BASE, overhead)


def test_eca_mobilenet_v2():
    overhead = eca_overhead(
        mobilenet_v2_blocks(), kernel=lambda b: ECA_MBV2_K[b[2]]
    )
    assert overhead == (31, 3_680, 577_504)
    expect_counts("eca_mobilenet_v2", *MBV2_BASE, overhead)
    assert complexity.count_ops(built("eca_mobilenet_v2"), "thop") == (
        335_513_016
    )


def test_se_mobilenet_v2():
    overhead = se_overhead(mobilenet_v2_blocks(), r=8)
    assert overhead == (58_620, 56_928, 686_176)
    expect_counts("se_mobilenet_v2", *MBV2_BASE, overhead)
    assert complexity.count_params(built("se_mobilenet_v2")) == 3_563_492


@pytest.mark.parametrize("name", layers.list_attention())
def test_every_attention_has_its_rule(name):
    c, side = 128, 4
    hw = side * side
    inputs = keras.Input((side, side, c))
    kwargs = {"groups": 16} if name == "sa" else {}
    layer = layers.get_attention(name, **kwargs)
    model = keras.Model(inputs, layer(inputs))
    pool = c * (hw + 1)
    h, k = c // 16, layers.adaptive_kernel_size(c)
    expected = {
        "eca": (k, c * k, pool + c * k),
        "ceca": (k, c * k, pool + c * k),
        "eca_ns": (k * c, c * k, pool + c * k),
        "se": (
            2 * c * h + h + c,
            2 * c * h,
            pool + (2 * c - 1) * h + h + (2 * h - 1) * c,
        ),
        "se_var1": (0, 0, pool),
        "se_var2": (c, c, pool + c),
        "se_var3": (c * c, c * c, pool + (2 * c - 1) * c),
        "se_gc": (c * c // 16, c * c // 16, pool + c * c // 16),
        "sa": (
            6 * c // 32,
            c // 2 + hw * c // 2,
            (c // 2) * (hw + 1) + 4 * hw * c // 2,
        ),
    }[name]
    assert k == 5
    got = (
        complexity.count_params(model),
        complexity.count_ops(model, "macs"),
        complexity.count_ops(model, "thop"),
    )
    assert got == expected


def representative_models():
    """One registry model per distinct set of layer types and attention."""
    seen, names = set(), []
    for name in applications.list_models():
        row = applications.model_config(name)
        key = (
            row["family"],
            row.get("stem"),
            row.get("avg_down"),
            row.get("block"),
            row["attention"],
        )
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


def check_countable(name):
    model = applications.build_model(name, input_shape=(64, 64, 3))
    counts = complexity.model_complexity(model)
    assert counts["params"] == sum(
        math.prod(w.shape) for w in model.trainable_weights
    )
    assert 0 < counts["macs"] < counts["flops"]


@pytest.mark.parametrize("name", representative_models())
def test_every_kind_of_registered_model_is_countable(name):
    check_countable(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", applications.list_models())
def test_every_registered_model_is_countable(name):
    check_countable(name)


def test_timm_average_pooling_shortcut():
    # ecaresnet26t: AvgPool2d(2, 2) shortcuts count (2*2 + 1) per output.
    model = applications.build_model("ecaresnet26t", input_shape=(64, 64, 3))
    rows = {n: ops for n, _, ops in complexity.layer_ops(model, "thop")}
    assert rows["conv3_block1_0_pool"] == 8 * 8 * 256 * (2 * 2 + 1)
    assert "conv2_block1_0_pool" not in rows  # stride 1: no pooling
    macs = {n: ops for n, _, ops in complexity.layer_ops(model, "macs")}
    assert macs["conv3_block1_0_pool"] == 0


def test_frozen_model_still_counts_its_parameters():
    model = applications.build_model("eca_resnet18", input_shape=(32, 32, 3))
    before = complexity.count_params(model)
    model.trainable = False
    assert complexity.count_params(model) == before == 11_689_556


def test_unknown_layers_raise():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match="'ln' of type LayerNormalization"):
        complexity.count_ops(model)
    rescale = keras.layers.Rescaling(1 / 255, name="rescale")
    model = keras.Model(inputs, rescale(inputs))
    with pytest.raises(ValueError, match="Rescaling"):
        complexity.count_ops(model, "thop")


def test_dynamic_shapes_and_bad_arguments_raise():
    model = applications.build_model(
        "resnet18", include_top=False, input_shape=(None, None, 3)
    )
    with pytest.raises(ValueError, match="static shapes"):
        complexity.count_ops(model)
    with pytest.raises(ValueError, match="Received: convention='flops'"):
        complexity.count_ops(built("resnet50"), convention="flops")
    with pytest.raises(ValueError, match="Received: model="):
        complexity.count_params("resnet50")
    with pytest.raises(ValueError, match="Received: n=1.5"):
        complexity.format_count(1.5)
    with pytest.raises(ValueError, match="Received: names='resnet50'"):
        complexity.summary_table("resnet50")


def test_nested_models_are_expanded():
    inner = applications.build_model(
        "eca_resnet18", include_top=False, input_shape=(32, 32, 3)
    )
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inner(inputs))
    outer = keras.Model(inputs, keras.layers.Dense(10)(x))
    assert complexity.count_ops(outer) == complexity.count_ops(inner) + 5120
    assert complexity.count_params(outer) == (
        complexity.count_params(inner) + 5130
    )


def test_format_count():
    fmt = complexity.format_count
    assert fmt(4_145_398_296) == "4.15 G"
    assert fmt(4_145_398_296, binary=True) == "3.86 G"
    assert fmt(25_557_032) == "25.56 M"
    assert fmt(25_557_032, binary=True) == "24.37 M"
    assert fmt(80) == "80"
    assert fmt(-2048, binary=True) == "-2.00 K"
    assert fmt(np.int64(1500)) == "1.50 K"
    assert fmt(999) == "999" and fmt(1000) == "1.00 K"


def test_plain_counterpart():
    expected = {
        "resnet50": "resnet50",
        "eca_resnet18": "resnet18",
        "se_resnet152": "resnet152",
        "sa_resnet101": "resnet101",
        "eca_mobilenet_v2": "mobilenet_v2",
        "se_mobilenet_v2": "mobilenet_v2",
        "seresnet50": "timm_resnet50",
        "ecaresnet26t": None,
        "ecaresnet50d": None,
    }
    got = {name: complexity.plain_counterpart(name) for name in expected}
    assert got == expected


def test_summary_table():
    names = [
        "resnet50",
        "eca_resnet50",
        "se_resnet50",
        "mobilenet_v2",
        "eca_mobilenet_v2",
    ]
    rows = {row["model"]: row for row in complexity.summary_table(names)}
    assert list(rows) == names
    r50 = rows["resnet50"]
    assert (r50["params"], r50["macs"], r50["flops"]) == (
        25_557_032,
        4_089_184_256,
        4_145_398_296,
    )
    assert r50["backbone"] is None and "extra_params" not in r50
    extras = {
        name: (row["extra_params"], row["extra_macs"], row["extra_flops"])
        for name, row in rows.items()
        if row["backbone"]
    }
    assert extras == {
        "eca_resnet50": (80, 86_272, 5_620_736),
        "se_resnet50": (2_530_992, 2_514_944, 10_549_248),
        "eca_mobilenet_v2": (31, 3_680, 577_504),
    }
    mbv2 = rows["eca_mobilenet_v2"]
    assert (mbv2["params"], mbv2["macs"], mbv2["flops"]) == (
        3_504_903,
        300_777_952,
        335_513_016,
    )
    text = complexity.format_summary(list(rows.values()))
    lines = text.splitlines()
    assert lines[1].split()[:6] == [
        "resnet50", "25,557,032", "25.56", "24.37", "4.09", "G"
    ]
    assert "3.86 G" in lines[1] and "+5,620,736" in lines[2]
    assert "319.42 M" in lines[4] and "319.97 M" in lines[5]


def test_channels_first_counts_the_same():
    name, shape = "eca_resnet18", (64, 64, 3)
    last = applications.build_model(name, input_shape=shape)
    keras.config.set_image_data_format("channels_first")
    try:
        first = applications.build_model(name, input_shape=(3, 64, 64))
    finally:
        keras.config.set_image_data_format("channels_last")
    for convention in complexity.CONVENTIONS:
        assert complexity.count_ops(first, convention) == complexity.count_ops(
            last, convention
        )
    assert complexity.count_params(first) == complexity.count_params(last)
