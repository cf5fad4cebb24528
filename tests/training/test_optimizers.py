"""`keras_eca.training.SGD` against `torch.optim.SGD`, step by step."""

import numpy as np
import pytest
import torch

import keras
from keras_eca.training import SGD

STEPS = 20
# The learning rate drops mid-way: PyTorch applies a new lr to the whole
# buffer at once, Keras' SGD (lr inside its buffer) only gradually.
LR = [0.1] * 10 + [0.01] * 10


def _gradient(w, a, b):
    # A non-quadratic loss sum(a * sin(w) + b * w**2 / 2), so the gradients
    # depend on the trajectory and any difference compounds.
    return (a * np.cos(w) + b * w).astype("float32")


def _problem():
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (5,)]
    weights = [rng.normal(size=s).astype("float32") for s in shapes]
    a = [rng.normal(size=s).astype("float32") for s in shapes]
    b = [rng.uniform(0.5, 2.0, size=s).astype("float32") for s in shapes]
    return weights, a, b


def _torch_run(momentum, nesterov, weight_decay, lrs):
    weights, a, b = _problem()
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    optimizer = torch.optim.SGD(
        params, lr=lrs[0], momentum=momentum, nesterov=nesterov,
        weight_decay=weight_decay,
    )
    for lr in lrs:
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p, ai, bi in zip(params, a, b):
            p.grad = torch.tensor(_gradient(p.detach().numpy(), ai, bi))
        optimizer.step()
    return [p.detach().numpy().copy() for p in params]


def _keras_run(optimizer, lrs):
    weights, a, b = _problem()
    variables = [keras.Variable(w) for w in weights]
    for lr in lrs:
        optimizer.learning_rate = lr
        grads = [
            keras.ops.convert_to_tensor(
                _gradient(keras.ops.convert_to_numpy(v), ai, bi)
            )
            for v, ai, bi in zip(variables, a, b)
        ]
        optimizer.apply(grads, variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _max_abs_diff(xs, ys):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(xs, ys))


@pytest.mark.parametrize(
    "momentum, nesterov, weight_decay",
    [(0.9, False, 1e-4), (0.9, False, 0.05), (0.9, True, 0.05), (0.0, False, 0.05)],
)
def test_matches_torch_sgd_with_a_learning_rate_drop(
    momentum, nesterov, weight_decay
):
    expected = _torch_run(momentum, nesterov, weight_decay, LR)
    ours = _keras_run(
        SGD(LR[0], momentum=momentum, nesterov=nesterov,
            weight_decay=weight_decay),
        LR,
    )
    # Measured (float32, 20 steps): max |diff| 6.0e-8 .. 1.2e-7 over the
    # four settings (weights of magnitude ~1): float32 rounding only.
    assert _max_abs_diff(ours, expected) < 1e-6


def test_keras_sgd_is_not_pytorch_sgd():
    # Constant lr, no decay: Keras' SGD (lr inside the buffer) equals
    # PyTorch's, so the differences below come from the decay and the drop.
    constant = [0.1] * STEPS
    same = _keras_run(keras.optimizers.SGD(0.1, momentum=0.9), constant)
    assert _max_abs_diff(same, _torch_run(0.9, False, 0.0, constant)) < 1e-6

    # Keras' weight_decay is decoupled: w -= lr * wd * w outside momentum.
    decoupled = _keras_run(
        keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05), constant
    )
    coupled = _torch_run(0.9, False, 0.05, constant)
    # Measured: 4.7e-2.
    assert _max_abs_diff(decoupled, coupled) > 1e-3

    # A learning-rate drop: Keras' buffer keeps the old lr's steps.
    dropped = _keras_run(keras.optimizers.SGD(0.1, momentum=0.9), LR)
    # Measured: 1.4 (the old lr's momentum overshoots after the drop).
    assert _max_abs_diff(dropped, _torch_run(0.9, False, 0.0, LR)) > 1e-3


def test_decoupled_weight_decay_is_keras_weight_decay():
    ours = _keras_run(
        SGD(0.1, momentum=0.9, decoupled_weight_decay=0.05), [0.1] * STEPS
    )
    reference = _keras_run(
        keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05),
        [0.1] * STEPS,
    )
    assert _max_abs_diff(ours, reference) < 1e-6


def test_decay_reaches_every_trainable_weight():
    # PyTorch's weight_decay on model.parameters(): BatchNorm gamma / beta
    # and biases decay too. With zero gradients only the decay moves them.
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2),
         keras.layers.BatchNormalization()]
    )
    for v in model.trainable_variables:
        v.assign(keras.ops.ones(v.shape))
    optimizer = SGD(0.5, weight_decay=0.1)
    grads = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    optimizer.apply(grads, model.trainable_variables)
    names = sorted(v.name for v in model.trainable_variables)
    assert names == ["beta", "bias", "gamma", "kernel"]
    for v in model.trainable_variables:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), 0.95)


def test_round_trips_through_a_keras_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        loss="mse",
    )
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is SGD
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    saved = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
    restored = [keras.ops.convert_to_numpy(v) for v in loaded.optimizer.variables]
    assert len(saved) == len(restored) == 4  # iterations, lr, two buffers
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"nesterov": True}, "nesterov"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD(0.1, **kwargs)


def _fit_one_step(optimizer, steps=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3),
         keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 2)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=8 // steps, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_trains_under_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    model = _fit_one_step(SGD(0.1, momentum=0.9, weight_decay=1e-4))
    # mixed_float16 wraps ours in a LossScaleOptimizer; the update still
    # runs in the float32 weights.
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    assert isinstance(inner, SGD)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert int(keras.ops.convert_to_numpy(inner.iterations)) == 1
    assert all(
        np.all(np.isfinite(keras.ops.convert_to_numpy(v))) for v in model.weights
    )


def test_weight_ema_goes_into_the_model_when_fit_ends():
    optimizer = SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.5)
    model = _fit_one_step(optimizer, steps=4)
    averages = {
        v.path: keras.ops.convert_to_numpy(v) for v in optimizer.variables
    }
    plain = _fit_one_step(SGD(0.1, momentum=0.9), steps=4)
    for weight, raw in zip(model.trainable_variables, plain.trainable_variables):
        value = keras.ops.convert_to_numpy(weight)
        # fit's end copied the average into the weight ...
        average = averages[f"SGD/{weight.path.replace('/', '_')}_average"]
        np.testing.assert_array_equal(value, average)
        # ... which is not where the last step left it.
        assert not np.allclose(value, keras.ops.convert_to_numpy(raw))
