"""Exact backups: what they hold, atomic writes, refusals, the progress line."""

import io
import json

import numpy as np
import pytest

import keras

from keras_eca.training import backup as backup_lib
from keras_eca.training import callbacks as callbacks_lib


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3)(inputs)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, x)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="mse",
        metrics=["mae"],
    )
    return model


def _train(model, seed):
    rng = np.random.default_rng(seed)
    model.fit(
        rng.normal(size=(16, 4)), rng.normal(size=(16, 3)), batch_size=4, verbose=0
    )


def _values(model):
    return [
        keras.ops.convert_to_numpy(v)
        for group in backup_lib.training_variables(model).values()
        for v in group
    ]


def test_a_backup_holds_weights_optimizer_rng_and_metrics(tmp_path):
    model = _model()
    _train(model, 0)
    paths = {
        group: [v.path for v in variables]
        for group, variables in backup_lib.training_variables(model).items()
    }
    # BatchNorm statistics, the dropout seed, the optimizer's step count
    # and momenta, the metrics' accumulators.
    assert any("moving_mean" in p for p in paths["model"])
    assert any("seed_generator_state" in p for p in paths["model"])
    assert any(p.endswith("iteration") for p in paths["optimizer"])
    assert any("momentum" in p for p in paths["optimizer"])
    assert paths["metrics"]

    path = tmp_path / "state.npz"
    backup_lib.write_backup(path, model, {"epoch": 1, "step": 3, "best": 0.5})
    expected = _values(model)

    other = _model(seed=1)
    _train(other, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(expected, _values(other)))
    saved = backup_lib.read_backup(path)
    assert saved.position == {"epoch": 1, "step": 3, "best": 0.5}
    saved.restore(other, groups=backup_lib.GROUPS)
    for a, b in zip(expected, _values(other)):
        np.testing.assert_array_equal(a, b)


def test_the_background_writer_writes_in_order_and_raises_on_flush(tmp_path):
    model = _model()
    _train(model, 0)
    writer = backup_lib.BackgroundWriter()
    for step in range(3):
        writer.write(
            tmp_path / "state.npz", backup_lib.snapshot(model), {"step": step}
        )
    writer.flush()
    assert backup_lib.read_backup(tmp_path / "state.npz").position == {"step": 2}
    writer.write(tmp_path / "missing" / "\0bad", backup_lib.snapshot(model), {})
    with pytest.raises(ValueError):
        writer.close()


def test_a_backup_of_another_model_is_refused(tmp_path):
    model = _model()
    _train(model, 0)
    backup_lib.write_backup(tmp_path / "state.npz", model, {"epoch": 0, "step": 1})
    inputs = keras.Input((4,))
    bigger = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    bigger.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="variables but the model has"):
        backup_lib.read_backup(tmp_path / "state.npz").restore(bigger)


def test_no_backup_reads_as_none(tmp_path):
    assert backup_lib.read_backup(tmp_path / "state.npz") is None


def test_a_backup_of_another_format_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    meta = json.dumps({"format": 99, "position": {}, "paths": {}})
    np.savez(path, __meta__=np.array(meta))
    with pytest.raises(ValueError, match="format 99"):
        backup_lib.read_backup(path)


def test_the_progress_line_shows_epoch_step_speed_and_eta():
    stream = io.StringIO()
    position = callbacks_lib.RunPosition(epochs=10, steps_per_epoch=100,
                                         global_batch_size=32)
    position.epoch, position.first_step = 2, 40
    line = callbacks_lib.ProgressLine(position, interval=0.0, stream=stream)
    line.on_epoch_begin(2)
    for batch in range(3):
        line.on_train_batch_end(batch, {"loss": np.float32(2.5)})
    line.on_epoch_end(2, {"loss": 2.5, "val_accuracy": 0.25})
    text = stream.getvalue()
    assert "Epoch 3/10: continuing at step 41/100" in text
    assert "Epoch 3/10  43/100 [" in text
    assert "loss 2.5000" in text and "img/s" in text and "ETA" in text
    assert "val_accuracy 0.2500" in text
    assert callbacks_lib.format_duration(3725) == "1:02:05"
