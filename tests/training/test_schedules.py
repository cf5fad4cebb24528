"""Schedules at chosen steps, a recipe's optimizer and loss."""

import math

import numpy as np
import pytest
import torch

import keras
from keras_eca.training import ConstantLearningRate
from keras_eca.training import CosineDecay
from keras_eca.training import EpochExponentialDecay
from keras_eca.training import LinearWarmup
from keras_eca.training import SGD
from keras_eca.training import SparseCategoricalCrossentropy
from keras_eca.training import StepDecay
from keras_eca.training import apply_overrides
from keras_eca.training import build_loss
from keras_eca.training import build_optimizer
from keras_eca.training import build_schedule
from keras_eca.training import get_recipe


def _rates(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]


def _schedule(optimizer):
    # The schedule as the optimizer's config (and a .keras file) holds it.
    return keras.optimizers.schedules.deserialize(
        optimizer.get_config()["learning_rate"]
    )


def test_step_decay_divides_by_ten_every_30_epochs():
    schedule = StepDecay(0.1, steps_per_epoch=50, every_epochs=30, factor=0.1)
    steps = [0, 49, 50, 1499, 1500, 2999, 3000, 4999]
    np.testing.assert_allclose(
        _rates(schedule, steps),
        [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.0001],
        rtol=1e-6,
    )


def test_epoch_exponential_decay_changes_once_per_epoch():
    # light_main.py sets lr = 0.045 * 0.98 ** epoch at each epoch start.
    schedule = EpochExponentialDecay(0.045, steps_per_epoch=7, factor=0.98)
    steps = [0, 6, 7, 13, 14, 7 * 399, 7 * 400 - 1]
    epochs = [0, 0, 1, 1, 2, 399, 399]
    np.testing.assert_allclose(
        _rates(schedule, steps), [0.045 * 0.98**e for e in epochs], rtol=1e-5
    )


def test_cosine_and_constant():
    cosine = CosineDecay(1.0, total_steps=100, final_fraction=0.1)
    np.testing.assert_allclose(
        _rates(cosine, [0, 50, 100, 150]), [1.0, 0.55, 0.1, 0.1], rtol=1e-5
    )
    expected_25 = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))
    np.testing.assert_allclose(_rates(cosine, [25]), [expected_25], rtol=1e-5)
    np.testing.assert_allclose(
        _rates(ConstantLearningRate(0.01), [0, 10**6]), [0.01, 0.01]
    )


def test_linear_warmup_ramps_the_wrapped_schedule():
    schedule = LinearWarmup(StepDecay(0.4, 10, every_epochs=1), warmup_steps=4)
    np.testing.assert_allclose(
        _rates(schedule, [0, 1, 3, 9, 10]), [0.1, 0.2, 0.4, 0.4, 0.04],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(0.1, 10),
        EpochExponentialDecay(0.045, 10),
        CosineDecay(0.1, 100, 0.01),
        ConstantLearningRate(0.3),
        LinearWarmup(CosineDecay(0.1, 100), 5),
    ],
    ids=lambda s: type(s).__name__,
)
def test_schedules_serialize(schedule):
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = [0, 3, 17, 250]
    assert _rates(restored, steps) == _rates(schedule, steps)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: StepDecay(0.1, 0), "steps_per_epoch"),
        (lambda: StepDecay(-1.0, 10), "initial_learning_rate"),
        (lambda: StepDecay(0.1, 10, factor=0.0), "factor"),
        (lambda: EpochExponentialDecay(0.1, 10, factor=1.5), "factor"),
        (lambda: CosineDecay(0.1, 100, final_fraction=2.0), "final_fraction"),
        (lambda: LinearWarmup(StepDecay(0.1, 10), 0), "warmup_steps"),
    ],
)
def test_bad_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_eca_resnet_optimizer_scales_lr_with_the_batch():
    recipe = get_recipe("eca_resnet")
    optimizer = build_optimizer(recipe, global_batch_size=512, steps_per_epoch=20)
    assert isinstance(optimizer, SGD)
    assert optimizer.momentum == 0.9 and not optimizer.nesterov
    assert optimizer.coupled_weight_decay == 1e-4
    assert optimizer.weight_decay is None  # nothing decoupled on top
    # 0.1 x 512 / 256, /10 at epochs 30 and 60.
    np.testing.assert_allclose(
        _rates(_schedule(optimizer), [0, 599, 600, 1200]),
        [0.2, 0.2, 0.02, 0.002],
        rtol=1e-6,
    )


def test_mobilenet_v2_optimizer():
    recipe = get_recipe("mobilenet_v2")
    optimizer = build_optimizer(recipe, global_batch_size=192, steps_per_epoch=5)
    assert optimizer.coupled_weight_decay == 4e-5
    # 0.045 x 192 / 96 = 0.09, x 0.98 per epoch.
    np.testing.assert_allclose(
        _rates(_schedule(optimizer), [0, 4, 5, 50]),
        [0.09, 0.09, 0.09 * 0.98, 0.09 * 0.98**10],
        rtol=1e-5,
    )


def test_optional_knobs_reach_the_optimizer():
    recipe = apply_overrides(
        get_recipe("eca_resnet"),
        ["schedule=cosine", "warmup_epochs=1", "ema_decay=0.999",
         "weight_decay_mode=decoupled", "nesterov=true", "lr_scaling=none"],
    )
    optimizer = build_optimizer(recipe, global_batch_size=64, steps_per_epoch=10)
    schedule = _schedule(optimizer)
    assert isinstance(schedule, LinearWarmup)
    assert isinstance(schedule.schedule, CosineDecay)
    assert schedule.warmup_steps == 10 and schedule.schedule.total_steps == 1000
    np.testing.assert_allclose(_rates(schedule, [0, 9]), [0.01, 0.1 * (
        0.5 * (1 + math.cos(math.pi * 9 / 1000)))], rtol=1e-5)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.999
    assert optimizer.nesterov
    assert optimizer.coupled_weight_decay == 0.0
    assert optimizer.weight_decay == 1e-4


def test_loss_with_label_smoothing_matches_torch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype("float32")
    labels = rng.integers(0, 5, size=6)
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(labels), label_smoothing=0.1
    ).item()
    recipe = apply_overrides(get_recipe("eca_resnet"), ["label_smoothing=0.1"])
    from_logits = build_loss(recipe, from_logits=True)
    assert isinstance(from_logits, SparseCategoricalCrossentropy)
    np.testing.assert_allclose(
        float(from_logits(labels, logits)), expected, rtol=1e-5
    )
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    from_probabilities = build_loss(recipe)
    np.testing.assert_allclose(
        float(from_probabilities(labels[:, None], probabilities)), expected,
        rtol=1e-5,
    )
    restored = keras.losses.deserialize(keras.losses.serialize(from_logits))
    assert restored.get_config() == from_logits.get_config()


def test_loss_without_smoothing_is_keras_sparse_crossentropy():
    loss = build_loss(get_recipe("eca_resnet"))
    assert type(loss) is keras.losses.SparseCategoricalCrossentropy
    assert loss.get_config()["from_logits"] is False
    with pytest.raises(TypeError, match="from_logits"):
        build_loss(get_recipe("eca_resnet"), from_logits="yes")


def test_build_schedule_checks_its_arguments():
    with pytest.raises(ValueError, match="global_batch_size"):
        build_schedule(get_recipe("smoke"), global_batch_size=0, steps_per_epoch=3)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        build_schedule(get_recipe("smoke"), global_batch_size=8, steps_per_epoch=0)
