"""One test harness for attention layers, usable on every Keras backend.

`run_layer_test` checks what a Keras layer must get right, in stages:
config round trip, build-only weights, symbolic call, eager call, one
(XLA-compiled where the backend allows) training step that moves every
weight, and the mixed-precision policies. Users who write their own
attention layer can run it too.
"""

import json

import keras
import numpy as np

MIXED_POLICIES = {"mixed_float16": 2e-2, "mixed_bfloat16": 6e-2}


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def training_jit_compile():
    """`jit_compile` for the training check: XLA on TF and JAX.

    On torch `jit_compile=True` means `torch.compile`, which needs a C
    toolchain and minutes per graph; Keras's own layer tests leave it off.
    """
    return keras.backend.backend() in ("tensorflow", "jax")


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def check_config_round_trip(layer):
    """`get_config` -> `from_config` -> `get_config` is stable, also as JSON."""
    cls = type(layer)
    config = layer.get_config()
    revived = cls.from_config(config)
    assert revived.get_config() == config, (config, revived.get_config())
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls, type(revived)
    assert revived.get_config() == config, (config, revived.get_config())


def build_only(layer_cls, init_kwargs, input_shape):
    layer = layer_cls(**init_kwargs)
    layer.build(input_shape)
    assert layer.built
    return layer


def check_training_step(layer, input_shape, seed=0):
    """One SGD step on MSE: the loss is finite, and every trainable weight
    got a finite, non-zero gradient (it moved and stayed finite).

    Weights start from random non-zero values: an initial zero (SA's
    `sweight`) legitimately blocks the gradient of the weights behind it,
    which would hide a weight that is really disconnected.
    """
    inputs = keras.Input(shape=input_shape[1:], batch_size=None)
    model = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(seed)
    for weight in layer.trainable_weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.5),
        loss="mse",
        jit_compile=training_jit_compile(),
    )
    x = random_input(input_shape, seed)
    target = random_input(input_shape, seed + 1)
    before = [to_numpy(w) for w in layer.trainable_weights]
    history = model.fit(x, target, batch_size=input_shape[0], epochs=1, verbose=0)
    loss = history.history["loss"][0]
    assert np.isfinite(loss), loss
    for weight, old in zip(layer.trainable_weights, before):
        new = to_numpy(weight)
        assert np.all(np.isfinite(new)), f"{weight.path} is not finite"
        assert not np.array_equal(new, old), f"no gradient reached {weight.path}"


def check_mixed_precision(layer_cls, init_kwargs, input_shape, reference):
    """Under each mixed policy: compute dtype out, float32 weights, and an
    output close to the float32 `reference` computed with the same weights."""
    x = random_input(input_shape)
    for policy, tolerance in MIXED_POLICIES.items():
        layer = layer_cls(**init_kwargs, dtype=policy)
        layer.build(input_shape)
        layer.set_weights(reference.get_weights())
        symbolic = layer.compute_output_spec(
            keras.KerasTensor(input_shape, dtype=layer.compute_dtype)
        )
        y = layer(x)
        compute_dtype = keras.DTypePolicy(policy).compute_dtype
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype, y.dtype
        assert keras.backend.standardize_dtype(symbolic.dtype) == compute_dtype
        for weight in layer.weights:
            assert weight.dtype == "float32", (policy, weight.path, weight.dtype)
        y = to_numpy(keras.ops.cast(y, "float32"))
        expected = to_numpy(reference(x))
        assert np.all(np.isfinite(y)), policy
        scale = max(1.0, float(np.max(np.abs(expected))))
        error = float(np.max(np.abs(y - expected))) / scale
        assert error <= tolerance, (policy, error)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_num_trainable_weights,
    expected_num_params=None,
    expected_num_non_trainable_weights=0,
    run_training_check=True,
    run_mixed_precision_check=True,
):
    """Runs every stage of the layer contract; raises `AssertionError`.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_shape: a full input shape, batch included, e.g.
            `(2, 5, 5, 64)`.
        expected_num_trainable_weights: number of trainable variables.
        expected_num_params: total trainable parameter count, or `None`
            to skip that check.
        expected_num_non_trainable_weights: number of non-trainable
            variables. Defaults to `0`.
        run_training_check: whether to run the training stage.
        run_mixed_precision_check: whether to run the mixed-precision stage.

    Returns:
        The float32 layer built by the eager stage, for further checks.
    """
    input_shape = tuple(input_shape)

    # Serialization, before and after build.
    layer = layer_cls(**init_kwargs)
    check_config_round_trip(layer)

    # Build only: `build()` alone must create every weight.
    layer = build_only(layer_cls, init_kwargs, input_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights, [
        w.path for w in layer.trainable_weights
    ]
    assert (
        len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    ), [w.path for w in layer.non_trainable_weights]
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params, layer.count_params()
    check_config_round_trip(layer)

    # Symbolic call with unknown batch size.
    symbolic_input = keras.KerasTensor((None,) + input_shape[1:])
    layer = layer_cls(**init_kwargs)
    symbolic_output = layer(symbolic_input)
    assert tuple(symbolic_output.shape) == (None,) + input_shape[1:]
    assert layer.compute_output_shape(input_shape) == input_shape

    # Eager call.
    layer = layer_cls(**init_kwargs)
    y = layer(random_input(input_shape))
    assert tuple(y.shape) == input_shape, y.shape
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert np.all(np.isfinite(to_numpy(y)))

    if run_mixed_precision_check:
        check_mixed_precision(layer_cls, init_kwargs, input_shape, layer)
    if run_training_check and layer.trainable_weights:
        check_training_step(layer_cls(**init_kwargs), input_shape)
    return layer


def check_keras_round_trip(layer, input_shape, path):
    """A model around `layer` saved as `.keras` reloads with equal outputs."""
    inputs = keras.Input(shape=input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    x = random_input(input_shape, seed=3)
    expected = to_numpy(model(x))
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_layer = restored.layers[-1]
    assert type(restored_layer) is type(layer)
    assert restored_layer.get_config() == layer.get_config()
    np.testing.assert_array_equal(to_numpy(restored(x)), expected)
    return model
