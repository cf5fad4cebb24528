"""Learning-rate schedules on the optimizer step, and a recipe's optimizer.

The papers' scripts set the learning rate once per epoch (`main.py`:
`lr = 0.1 * 0.1 ** (epoch // 30)`; `light_main.py`: `lr = 0.045 *
0.98 ** epoch`). Keras calls a schedule with the optimizer's `iterations`
(0 for the first update), so each schedule here takes `steps_per_epoch`
and reads the epoch as `floor(step / steps_per_epoch)`: epoch `e` is
steps `e * steps_per_epoch .. (e + 1) * steps_per_epoch - 1`, and a
resumed run (whose optimizer restores `iterations`) gets the same rate.

All are registered Keras objects, so a `.keras` file with a compiled
optimizer reloads them.

Example:

>>> schedule = keras_eca.training.StepDecay(0.1, steps_per_epoch=10)
>>> [round(float(schedule(step)), 6) for step in (0, 299, 300, 600)]
[0.1, 0.1, 0.01, 0.001]
"""

import math

import keras
from keras import ops

from keras_eca._checks import is_finite_number
from keras_eca._checks import is_integer


def _positive_int(name, value):
    if not is_integer(value) or value <= 0:
        raise ValueError(
            f"{name} must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def _positive_number(name, value):
    if not is_finite_number(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0. Received: {name}={value!r}")
    return float(value)


def _fraction(name, value, low_open=False):
    lowest_ok = value > 0 if low_open else value >= 0
    if not is_finite_number(value) or not lowest_ok or value > 1:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}. Received: {name}={value!r}")
    return float(value)


def _epoch(step, steps_per_epoch):
    step = ops.cast(step, "float32")
    return ops.floor(step / float(steps_per_epoch))


@keras.saving.register_keras_serializable(package="keras_eca")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * factor ** (epoch // every_epochs)`, as the ResNet recipes.

    Args:
        initial_learning_rate: float > 0.
        steps_per_epoch: int > 0.
        every_epochs: int > 0. Defaults to 30.
        factor: float in (0, 1]. Defaults to 0.1.
    """

    def __init__(self, initial_learning_rate, steps_per_epoch, every_epochs=30,
                 factor=0.1):
        self.initial_learning_rate = _positive_number(
            "initial_learning_rate", initial_learning_rate
        )
        self.steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        self.every_epochs = _positive_int("every_epochs", every_epochs)
        self.factor = _fraction("factor", factor, low_open=True)

    def __call__(self, step):
        decays = ops.floor(
            _epoch(step, self.steps_per_epoch) / float(self.every_epochs)
        )
        return self.initial_learning_rate * ops.power(self.factor, decays)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "every_epochs": self.every_epochs,
            "factor": self.factor,
        }


@keras.saving.register_keras_serializable(package="keras_eca")
class EpochExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * factor ** epoch` with a whole epoch (MobileNetV2: 0.98).

    Args:
        initial_learning_rate: float > 0.
        steps_per_epoch: int > 0.
        factor: float in (0, 1]. Defaults to 0.98.
    """

    def __init__(self, initial_learning_rate, steps_per_epoch, factor=0.98):
        self.initial_learning_rate = _positive_number(
            "initial_learning_rate", initial_learning_rate
        )
        self.steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        self.factor = _fraction("factor", factor, low_open=True)

    def __call__(self, step):
        return self.initial_learning_rate * ops.power(
            self.factor, _epoch(step, self.steps_per_epoch)
        )

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "factor": self.factor,
        }


@keras.saving.register_keras_serializable(package="keras_eca")
class CosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Half a cosine from `lr` at step 0 to `final_fraction * lr` at
    `total_steps` (per step, not per epoch), constant after.

    Args:
        initial_learning_rate: float > 0.
        total_steps: int > 0, usually `epochs * steps_per_epoch`.
        final_fraction: float in [0, 1]. Defaults to 0.
    """

    def __init__(self, initial_learning_rate, total_steps, final_fraction=0.0):
        self.initial_learning_rate = _positive_number(
            "initial_learning_rate", initial_learning_rate
        )
        self.total_steps = _positive_int("total_steps", total_steps)
        self.final_fraction = _fraction("final_fraction", final_fraction)

    def __call__(self, step):
        progress = ops.minimum(
            ops.cast(step, "float32") / float(self.total_steps), 1.0
        )
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        fraction = self.final_fraction + (1.0 - self.final_fraction) * cosine
        return self.initial_learning_rate * fraction

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "final_fraction": self.final_fraction,
        }


@keras.saving.register_keras_serializable(package="keras_eca")
class ConstantLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The same `learning_rate` at every step (a schedule, so warmup can
    wrap it)."""

    def __init__(self, learning_rate):
        self.learning_rate = _positive_number("learning_rate", learning_rate)

    def __call__(self, step):
        del step
        return ops.convert_to_tensor(self.learning_rate, "float32")

    def get_config(self):
        return {"learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="keras_eca")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step) * min(1, (step + 1) / warmup_steps)`.

    The ramp multiplies the wrapped schedule, which keeps counting from
    step 0 (warmup epochs are epochs of the schedule, as in Goyal et al.'s
    gradual warmup): the first step trains at `1 / warmup_steps` of the
    rate, step `warmup_steps - 1` at the full rate.

    Args:
        schedule: a `LearningRateSchedule`.
        warmup_steps: int > 0.
    """

    def __init__(self, schedule, warmup_steps):
        if isinstance(schedule, dict):  # from get_config
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise TypeError(
                "schedule must be a keras LearningRateSchedule. Received: "
                f"schedule={schedule!r}"
            )
        self.schedule = schedule
        self.warmup_steps = _positive_int("warmup_steps", warmup_steps)

    def __call__(self, step):
        ramp = ops.minimum(
            (ops.cast(step, "float32") + 1.0) / float(self.warmup_steps), 1.0
        )
        return self.schedule(step) * ramp

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
        }


def build_schedule(recipe, *, global_batch_size, steps_per_epoch):
    """The recipe's learning-rate schedule for this batch size.

    The peak rate is `recipe.scaled_learning_rate(global_batch_size)` (the
    recipe's scaling rule), and `warmup_epochs > 0` wraps the schedule in
    `LinearWarmup` over `round(warmup_epochs * steps_per_epoch)` steps.
    """
    steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
    peak = recipe.scaled_learning_rate(global_batch_size)
    if recipe.schedule == "step":
        schedule = StepDecay(
            peak, steps_per_epoch, recipe.decay_every_epochs, recipe.decay_factor
        )
    elif recipe.schedule == "exponential":
        schedule = EpochExponentialDecay(
            peak, steps_per_epoch, recipe.decay_factor
        )
    elif recipe.schedule == "cosine":
        schedule = CosineDecay(
            peak, recipe.epochs * steps_per_epoch, recipe.cosine_final_fraction
        )
    else:
        schedule = ConstantLearningRate(peak)
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    if warmup_steps > 0:
        schedule = LinearWarmup(schedule, warmup_steps)
    return schedule


def build_optimizer(recipe, *, global_batch_size, steps_per_epoch):
    """The recipe's optimizer: `keras_eca.training.SGD` on its schedule.

    Coupled (PyTorch) or decoupled (Keras) weight decay as
    `recipe.weight_decay_mode` says, on every trainable variable; with
    `recipe.ema_decay`, Keras' weight EMA (`use_ema=True`,
    `ema_momentum=ema_decay`), which `fit` copies into the model at its
    end.

    Args:
        recipe: a `Recipe`.
        global_batch_size: int, images per optimizer step over all
            replicas; the learning rate follows the recipe's scaling rule.
        steps_per_epoch: int, optimizer steps per epoch.
    """
    from keras_eca.training.optimizers import SGD

    schedule = build_schedule(
        recipe, global_batch_size=global_batch_size,
        steps_per_epoch=steps_per_epoch,
    )
    coupled = recipe.weight_decay_mode == "coupled"
    ema = {}
    if recipe.ema_decay is not None:
        ema = {"use_ema": True, "ema_momentum": recipe.ema_decay}
    return SGD(
        schedule,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay if coupled else 0.0,
        decoupled_weight_decay=None if coupled else (recipe.weight_decay or None),
        **ema,
    )


def build_loss(recipe, *, from_logits=False):
    """The recipe's loss: cross-entropy on sparse integer labels.

    `keras_eca.applications` models end in a softmax by default
    (`classifier_activation="softmax"`), so the loss takes probabilities;
    pass `from_logits=True` for a model built with
    `classifier_activation=None`. Keras clips probabilities to
    `[1e-7, 1 - 1e-7]` before the log, which matters only for examples
    already classified with > 99.99999 % confidence. With
    `recipe.label_smoothing > 0` the targets are `(1 - eps) * one_hot +
    eps / classes`, as PyTorch's `CrossEntropyLoss(label_smoothing=eps)`.
    """
    if not isinstance(from_logits, bool):
        raise TypeError(
            f"from_logits must be a bool. Received: from_logits={from_logits!r}"
        )
    if recipe.label_smoothing == 0:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    from keras_eca.training.losses import SparseCategoricalCrossentropy

    return SparseCategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=recipe.label_smoothing
    )
