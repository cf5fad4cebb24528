"""The model contract, run over every registered architecture."""

import numpy as np
import pytest

import keras
from keras_eca import applications

NAMES = applications.list_models()

# Trainable parameters of the PyTorch original at 1000 classes (BN moving
# statistics excluded). Sources: the reference fixtures' `num_params`
# (eca_resnet18/50, sa_resnet50, eca_mobilenet_v2, ecaresnet26t,
# ecaresnet50d, seresnet50, timm_resnet50) and the counts of
# docs/reference-eca-sa.md (torchvision ResNets and MobileNetV2, ECA adds
# 44/72/80/157/234/31, SA adds 708/1524/2244). The rest follow from those
# pieces: SE adds 2C^2/16 + C/16 + C per block (SE-ResNet-50 = timm
# seresnet50), the tiered stem has 2,536 fewer weights than the deep one,
# and they agree with timm's rounded counts (ecaresnet50t 25.57M,
# ecaresnetlight 30.16M, ecaresnet101d 44.57M, ecaresnet269d 102.09M,
# resnet200d 64.69M; seresnet101 49.33M, seresnet152 66.82M).
EXPECTED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "eca_resnet18": 11_689_556,
    "eca_resnet34": 21_797_744,
    "eca_resnet50": 25_557_112,
    "eca_resnet101": 44_549_317,
    "eca_resnet152": 60_193_042,
    "se_resnet18": 11_778_592,
    "se_resnet34": 21_958_868,
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "sa_resnet50": 25_557_740,
    "sa_resnet101": 44_550_684,
    "sa_resnet152": 60_195_052,
    "mobilenet_v2": 3_504_872,
    "eca_mobilenet_v2": 3_504_903,
    "se_mobilenet_v2": 3_563_492,
    "ecaresnet26t": 16_011_916,
    "ecaresnet50d": 25_576_350,
    "ecaresnet50t": 25_573_814,
    "ecaresnetlight": 30_162_046,
    "ecaresnet101d": 44_568_563,
    "ecaresnet200d": 64_693_400,
    "ecaresnet269d": 102_093_077,
    "seresnet50": 28_088_024,
    "timm_resnet50": 25_557_032,
}

# ResNet-101 and deeper: a training step takes 10-45 s on 2 CPU cores.
DEEP = {
    name
    for name in NAMES
    if sum(applications.model_config(name).get("depths", ())) > 16
}


def heavy(names):
    return [
        pytest.param(n, marks=pytest.mark.slow) if n in DEEP else n
        for n in names
    ]


def num_trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def random_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def test_every_model_has_an_expected_count():
    assert sorted(EXPECTED_PARAMS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_build_name_and_param_count(name):
    model = applications.build_model(name, input_shape=(32, 32, 3))
    assert model.name == name
    assert model.output_shape == (None, 1000)
    assert num_trainable(model) == EXPECTED_PARAMS[name]
    # Keras tracks the BN moving statistics as non-trainable weights.
    bn_stats = sum(
        2 * layer.moving_mean.shape[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert model.count_params() == EXPECTED_PARAMS[name] + bn_stats


@pytest.mark.parametrize("name", heavy(NAMES))
def test_model_contract(name):
    features = applications.model_config(name)["num_features"]

    # No top, no pooling: the last feature map, for any size and channels.
    model = applications.build_model(
        name, include_top=False, input_shape=(None, None, 1)
    )
    assert model.output_shape == (None, None, None, features)
    y = keras.ops.convert_to_numpy(model(random_images((1, 64, 96, 1))))
    assert y.shape == (1, 2, 3, features) and np.all(np.isfinite(y))

    for pooling, channels in (("avg", 4), ("max", 3)):
        model = applications.build_model(
            name,
            include_top=False,
            pooling=pooling,
            input_shape=(64, 64, channels),
        )
        assert model.output_shape == (None, features)
    y = keras.ops.convert_to_numpy(model(random_images((2, 64, 64, 3))))
    assert y.shape == (2, features) and np.all(np.isfinite(y))

    model = applications.build_model(
        name, input_shape=(64, 64, 3), classes=7, name="custom"
    )
    assert model.name == "custom"
    assert model.output_shape == (None, 7)
    x = random_images((2, 64, 64, 3))
    # Eager: tracing a 200-layer train step costs more than running it.
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    loss = model.train_on_batch(x, np.array([1, 6]))
    assert np.isfinite(loss)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", heavy(NAMES))
def test_mixed_precision(name, policy):
    keras.config.set_dtype_policy(policy)
    model = applications.build_model(
        name, input_shape=(32, 32, 3), classifier_activation=None
    )
    compute_dtype = policy.split("_")[1]
    assert model.get_layer("avg_pool").input.dtype == compute_dtype
    assert all(w.dtype == "float32" for w in model.weights)
    # Batch statistics: at random init the BN moving statistics are (0, 1),
    # so in inference mode the residual sum of a deep ResNet doubles with
    # every block and leaves the float16 range (1e7 after ResNet-152's
    # stage 4). Trained weights: see tests/conversion (mixed precision).
    logits = model(random_images((2, 32, 32, 3)), training=True)
    assert logits.dtype == "float32"  # the classifier runs in float32
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
