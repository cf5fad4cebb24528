"""The callbacks of a training run: progress, exact backups, last/best.

`fit` is called once per epoch (so that a resumed epoch can start at its
step), which is why the progress line counts epochs and steps itself
instead of using Keras' progress bar, whose "Epoch 1/1" and ETA would only
see one call, and why Keras' own and the user's callbacks are wrapped in
`WholeRun`.
"""

import contextlib
import math
import pathlib
import shutil
import sys
import tempfile
import time

import keras

from keras_eca import files
from keras_eca.training import backup as backup_lib


class RunPosition:
    """Where the run is: the epoch, the step within it, its length."""

    def __init__(self, epochs, steps_per_epoch, global_batch_size):
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.global_batch_size = global_batch_size
        self.epoch = 0
        self.first_step = 0  # step of the epoch the current `fit` began at

    def step(self, batch):
        """The epoch's step after `batch` (0-based within this `fit` call)."""
        return self.first_step + batch + 1


class WholeRun(keras.callbacks.Callback):
    """Shows a Keras callback the run's `fit` calls (one per epoch) as one
    `fit`: `on_train_begin` before the first epoch only, `on_train_end`
    once, from `end()` after the last, and the run's `epochs` in `params`.

    Otherwise `on_train_begin` would reset `EarlyStopping`'s patience and
    `ReduceLROnPlateau`'s wait every epoch (so they never fire), and
    `TensorBoard` would open an event file per epoch. A resumed run is a
    new `fit` for them: their state is not in the backup.
    """

    def __init__(self, callback, epochs):
        super().__init__()
        self.callback = callback
        self.epochs = epochs
        self.async_safe = getattr(callback, "async_safe", False)
        self._began = False
        self._logs = None
        self._model_set = None

    def set_model(self, model):
        super().set_model(model)
        # Once: TensorBoard's `set_model` drops its (open) event writers.
        if model is not self._model_set:
            self._model_set = model
            self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(dict(params, epochs=self.epochs))

    def on_train_begin(self, logs=None):
        if not self._began:
            self._began = True
            self.callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self._logs = logs

    def end(self):
        """The run's `on_train_end`, once, after its last `fit`."""
        if self._began:
            self._began = False
            self.callback.on_train_end(self._logs)


def _forward(hook):
    def forward(self, *args, **kwargs):
        return getattr(self.callback, hook)(*args, **kwargs)

    forward.__name__ = hook
    return forward


# `on_batch_*` are left out: Keras calls `on_train_batch_*`, whose default
# calls the wrapped callback's `on_batch_*`.
for _hook in (
    "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end",
    "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
    "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
):
    setattr(WholeRun, _hook, _forward(_hook))
del _hook


def _scalar(value):
    return float(keras.ops.convert_to_numpy(value))


def format_duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


class ProgressLine(keras.callbacks.Callback):
    """`Epoch 3/100  1200/5004 [====>     ] loss 2.31 accuracy 0.41
    812 img/s ETA 4:12` on one refreshed line (a new line every
    `interval` seconds when the output is not a terminal), and one
    summary line per epoch with the validation metrics.

    It reads the logs only when it prints, so it does not make every step
    wait for the device.
    """

    def __init__(self, position, interval=None, stream=None):
        super().__init__()
        self.position = position
        self.stream = stream or sys.stdout
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.interval = interval if interval is not None else (
            0.5 if self.tty else 30.0
        )
        self._epoch_start = None
        self._last_print = 0.0
        self._window = []  # (time, step) pairs for the recent speed

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        self._epoch_start = now
        self._window = [(now, self.position.first_step)]
        self._last_print = now
        if self.position.first_step:
            self._write(
                f"Epoch {epoch + 1}/{self.position.epochs}: continuing at "
                f"step {self.position.first_step + 1}"
                f"/{self.position.steps_per_epoch}\n"
            )

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        step = self.position.step(batch)
        last = step == self.position.steps_per_epoch
        if not last and now - self._last_print < self.interval:
            return
        self._last_print = now
        self._window.append((now, step))
        self._window = self._window[-20:]
        (t0, s0), (t1, s1) = self._window[0], self._window[-1]
        rate = (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else 0.0
        remaining = self.position.steps_per_epoch - step
        total = self.position.steps_per_epoch
        width = 24
        filled = int(width * step / total)
        bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (
            width - filled
        )
        metrics = "  ".join(
            f"{name} {_scalar(value):.4f}" for name, value in (logs or {}).items()
        )
        eta = format_duration(remaining / rate) if rate else "?"
        images = rate * self.position.global_batch_size
        text = (
            f"Epoch {self.position.epoch + 1}/{self.position.epochs}  "
            f"{step}/{total} [{bar}]  {metrics}  {images:.1f} img/s  ETA {eta}"
        )
        self._write(("\r" + text) if self.tty else text + "\n")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - (self._epoch_start or time.perf_counter())
        metrics = "  ".join(
            f"{name} {_scalar(value):.4f}" for name, value in (logs or {}).items()
        )
        prefix = "\n" if self.tty else ""
        self._write(
            f"{prefix}Epoch {epoch + 1}/{self.position.epochs} done in "
            f"{format_duration(seconds)}  {metrics}\n"
        )

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


class ExactBackup(keras.callbacks.Callback):
    """Writes a `backup.write_backup` every `every` steps and after every
    epoch.

    The model and optimizer are restored before `fit` (see `run.train`);
    the metric accumulators of a mid-epoch backup (`metrics_from`) are put
    back in the first `on_epoch_begin`, after `fit` has reset them, so the
    resumed epoch's logged metrics cover all its steps. Every worker takes
    the snapshot (reading metrics is collective under multi_worker); only
    the one with `write=True` writes it.
    """

    def __init__(self, path, position, every, state, write=True, metrics_from=None):
        super().__init__()
        self.path = pathlib.Path(path)
        self.position = position
        self.every = every
        self.state = state  # dict saved with the position (best metric, ...)
        self.write = write
        self.metrics_from = metrics_from
        self._writer = backup_lib.BackgroundWriter() if write else None

    def on_epoch_begin(self, epoch, logs=None):
        if self.metrics_from is not None:
            self.metrics_from.restore(self.model, groups=("metrics",))
            self.metrics_from = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.position.step(batch)
        if self.every and step % self.every == 0 and (
            step != self.position.steps_per_epoch
        ):
            self.save(self.position.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        # After validation: a resume at the next epoch repeats nothing.
        self.save(epoch + 1, 0)

    def save(self, epoch, step):
        state = backup_lib.snapshot(self.model)
        if self._writer is not None:
            position = dict(self.state, epoch=epoch, step=step)
            self._writer.write(self.path, state, position)

    def close(self):
        """Waits for the last backup to be on disk."""
        if self._writer is not None:
            self._writer.close()


class ModelFiles(keras.callbacks.Callback):
    """Saves `last.keras` after every epoch and `best.keras` when the
    monitored metric improves, each written atomically. Every worker
    saves (it is collective under multi_worker); `write=False` workers
    save into a temporary folder."""

    def __init__(self, folder, monitor, state, write=True):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.monitor = monitor
        self.state = state  # holds "best" across resumes
        self.write = write

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with worker_folder(self.folder, self.write) as folder:
            save_model_atomically(self.model, folder / "last.keras")
        if self.monitor not in logs:
            return
        value = _scalar(logs[self.monitor])
        best = self.state.get("best")
        higher = "loss" not in self.monitor
        if math.isnan(value):
            return
        if best is None or (value > best if higher else value < best):
            self.state["best"] = value
            self.state["best_epoch"] = epoch + 1
            if self.write:  # a copy of last.keras: faster than a 2nd save
                copy_atomically(self.folder / "last.keras", self.folder / "best.keras")


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file renamed over `path`."""
    with files.staged_path(path) as staged:
        model.save(staged)


def copy_atomically(source, path):
    """Copies `source` to `path` through a temporary file renamed over it."""
    with open(source, "rb") as file:
        files.write_atomically(path, lambda out: shutil.copyfileobj(file, out))


@contextlib.contextmanager
def worker_folder(folder, chief):
    """`folder` on the chief; elsewhere a temporary folder removed after
    use, for the saves every multi_worker process must take part in."""
    if chief:
        yield pathlib.Path(folder)
        return
    temporary = tempfile.mkdtemp(prefix="keras_eca_worker_")
    try:
        yield pathlib.Path(temporary)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)



def resume_from_backup(path, model, dist, epochs, steps_per_epoch, stream):
    """Restores the model and optimizer of the backup at `path`, if any,
    and says where the run resumes.

    Returns:
        `(backup or None, epoch, step, state)`: where training continues
        and the state stored with the position (best metric, ...).
    """
    saved = backup_lib.read_backup(path)
    if dist.num_workers > 1:
        done = 0 if saved is None else (
            saved.position["epoch"] * steps_per_epoch + saved.position["step"]
        )
        check_same_position(dist, done)
    if saved is None:
        return None, 0, 0, {}
    epoch, step = saved.position["epoch"], saved.position["step"]
    state = {k: v for k, v in saved.position.items() if k not in ("epoch", "step")}
    # Before any fit, so that a run killed after its last epoch (during
    # the export) exports trained weights when it is resumed.
    with dist.scope():
        model.optimizer.build(model.trainable_variables)
        saved.restore(model, groups=("model", "optimizer"))
    done = epoch * steps_per_epoch + step
    if epoch >= epochs:
        text = (
            f"All {epochs} epochs were trained before the last stop "
            f"({done} steps); writing the final files."
        )
    else:
        text = (
            f"Resuming from epoch {epoch + 1}, step {step} "
            f"({done} steps done; backup {path})"
        )
    stream.write(text + "\n")
    stream.flush()
    return saved, epoch, step, state


def run_callbacks(
    folder, position, monitor, state, backup, *, epochs, chief, first=(),
    extra=(), stream=None,
):
    """The callbacks of one `fit` of a run, in order: `first` (e.g. a
    validation that adds to the logs), the progress line, last/best
    files, Keras' CSV and TensorBoard loggers and the `extra` ones (each
    in `WholeRun`), then `backup`, last, so that a backup means the
    epoch's files exist.

    Returns:
        `(callbacks, whole_run)`; call `end()` on each of `whole_run` after
        the last epoch.
    """
    keras_callbacks = []
    if chief:
        keras_callbacks += [
            keras.callbacks.CSVLogger(str(pathlib.Path(folder) / "log.csv"), append=True),
            keras.callbacks.TensorBoard(str(pathlib.Path(folder) / "logs"), write_graph=False),
        ]
    whole_run = [
        WholeRun(callback, epochs) for callback in keras_callbacks + list(extra)
    ]
    callbacks = list(first) + [
        ProgressLine(position, stream=stream),
        ModelFiles(folder, monitor, state, write=chief),
    ]
    return callbacks + whole_run + [backup], whole_run


def check_same_position(dist, done):
    """Every worker must resume from the same step: a worker that cannot
    see the chief's backup (the folder is not shared) would start over."""
    import tensorflow as tf

    strategy = dist.strategy
    value = tf.constant([float(done), float(done) ** 2], tf.float64)
    total = strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)),
        axis=None,
    )
    total = total.numpy() / strategy.num_replicas_in_sync
    if total[1] != total[0] ** 2:
        raise ValueError(
            f"The workers resume from different steps (this one: {done} "
            "steps done). Every worker must read the chief's backup: put "
            "--output on a folder all workers share."
        )
