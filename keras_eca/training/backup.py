"""Exact step-level backups, so a killed run resumes where it stopped.

Why not `keras.callbacks.BackupAndRestore`: under Keras 3.15 it restores
only the epoch number, so a job killed mid-epoch trains that epoch's first
steps a second time on weights that already learned from them, and it
writes its weights and its JSON in place, so a kill during a save can leave
a torn backup. A backup here is one `.npz` file holding every variable that
training changes -- the model's (BatchNorm statistics and seed-generator
states included), the optimizer's (iterations, momenta, loss scale) and the
metrics' accumulators -- with the position in the data (epoch and step). The
input pipeline is a pure function of (seed, epoch, step), so the position
is the whole data state. A new backup is written beside the old one and
moved over it with `os.replace`: the file on disk is always complete.
Writing happens on a background thread (`BackgroundWriter`) from a copy
taken between two steps, so a backup costs training the copy, not the
disk.
"""

import concurrent.futures
import json
import pathlib
import re

import numpy as np

import keras

from keras_eca.files import write_atomically

BACKUP_FORMAT = 1
_META_KEY = "__meta__"
GROUPS = ("model", "optimizer", "metrics")


def training_variables(model):
    """`{group: [variable, ...]}`: everything a training step changes."""
    metric_variables = [
        variable for metric in model.metrics for variable in metric.variables
    ]
    optimizer = model.optimizer
    return {
        "model": list(model.variables),
        "optimizer": list(optimizer.variables) if optimizer is not None else [],
        "metrics": metric_variables,
    }


def snapshot(model):
    """Copies of every training variable's value (`{group: (paths,
    arrays)}`), taken between two steps so that they are consistent."""
    return {
        group: (
            [variable.path for variable in variables],
            [keras.ops.convert_to_numpy(variable) for variable in variables],
        )
        for group, variables in training_variables(model).items()
    }


def write_snapshot(path, state, position):
    """Writes a `snapshot()` and `position` (a JSON-able dict: epoch, step,
    ...) to `path` atomically."""
    arrays = {}
    paths = {}
    for group, (names, values) in state.items():
        paths[group] = names
        for index, value in enumerate(values):
            arrays[f"{group}/{index}"] = value
    meta = {"format": BACKUP_FORMAT, "position": position, "paths": paths}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    write_atomically(path, lambda file: np.savez(file, **arrays))


def write_backup(path, model, position):
    """Writes the training state of `model` and `position` to `path`."""
    write_snapshot(path, snapshot(model), position)


class BackgroundWriter:
    """Writes snapshots on a thread, so that training goes on meanwhile.

    A new write waits for the one before (at most one snapshot waits in
    memory, and files are written in order); `flush()` waits for the last
    and raises what a write raised.
    """

    def __init__(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keras_eca_backup"
        )
        self._pending = None

    def write(self, path, state, position):
        self.flush()
        self._pending = self._executor.submit(write_snapshot, path, state, position)

    def flush(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self):
        try:
            self.flush()
        finally:
            self._executor.shutdown(wait=True)


class Backup:
    """A backup read from disk: `position` and the saved arrays."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        with np.load(self.path, allow_pickle=False) as data:
            self._arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(self._arrays.pop(_META_KEY)))
        if meta.get("format") != BACKUP_FORMAT:
            raise ValueError(
                f"The backup {self.path} has format {meta.get('format')!r}; "
                f"this version of keras_eca reads format {BACKUP_FORMAT}."
            )
        self.position = meta["position"]
        self._paths = meta["paths"]

    def restore(self, model, groups=("model", "optimizer")):
        """Assigns the saved values to `model`'s variables of `groups`.

        Variables are matched by order and checked by path and shape, so a
        backup of another model or optimizer fails with the first mismatch
        instead of loading something else.
        """
        current = training_variables(model)
        for group in groups:
            variables = current[group]
            saved = self._paths[group]
            if len(saved) != len(variables):
                raise ValueError(
                    f"The backup {self.path} holds {len(saved)} {group} "
                    f"variables but the model has {len(variables)}: it was "
                    "written by another model, optimizer or recipe. Use "
                    "another output folder, or the run's own settings."
                )
            for index, (variable, path) in enumerate(zip(variables, saved)):
                value = self._arrays[f"{group}/{index}"]
                if tuple(value.shape) != tuple(variable.shape) or (
                    _base_path(path) != _base_path(variable.path)
                ):
                    raise ValueError(
                        f"The backup {self.path} does not fit the model: "
                        f"its {group} variable {index} is {path!r} of shape "
                        f"{tuple(value.shape)}, the model's is "
                        f"{variable.path!r} of shape {tuple(variable.shape)}."
                    )
                variable.assign(value)


def _base_path(path):
    # Auto-named layers and optimizers get "_1", "_2", ... suffixes from how
    # many the process created before ("sgd_1/dense_1_kernel_momentum").
    return re.sub(r"_\d+(?=/|_|$)", "", path)


def read_backup(path):
    """The `Backup` at `path`, or `None` when there is none."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    return Backup(path)
