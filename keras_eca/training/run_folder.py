"""The files of a run folder, shared by every resumable run (`train`,
`keras_eca.detection.train_detector`): settings JSON, the CSV history, the
check that a folder holds the same run, atomic exports and the cleanup
after a kill.
"""

import contextlib
import csv
import io
import json
import pathlib
import shutil
import tempfile

import keras

from keras_eca import files

# Recipe fields that change how a run is written, not what it computes.
FREE_RECIPE_KEYS = ("backup_every",)


def remove_partial_files(folder):
    """Removes what a kill during an atomic write left (`.NAME.partial*`);
    the complete file is beside it."""
    for partial in pathlib.Path(folder).rglob(".*.partial*"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)


@contextlib.contextmanager
def dtype_policy(policy):
    """Keras' global dtype policy set to `policy` inside the block."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_same_run(folder, previous, settings, keys):
    """Raises a `ValueError` listing the `keys` whose values differ between
    the stored `previous` settings and `settings` (recipe fields of
    `FREE_RECIPE_KEYS` may differ)."""

    def comparable(record, key):
        value = record.get(key)
        if key == "recipe" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in FREE_RECIPE_KEYS}
        return value

    differences = [
        f"{key}: {comparable(previous, key)!r} there, "
        f"{comparable(settings, key)!r} now"
        for key in keys
        if key in previous and comparable(previous, key) != comparable(settings, key)
    ]
    if differences:
        raise ValueError(
            f"The output folder {folder} holds another run; resuming it "
            "needs the same settings, or pass another --output. Differences:\n"
            + "\n".join(differences)
        )


def earlier_run(folder, settings, keys, backup_path):
    """The stored settings of the run `folder` holds, checked equal to
    `settings` on `keys` (see `check_same_run`), or `None` when no run
    started there (no `run.json`, or neither finished nor backed up)."""
    previous = read_json(pathlib.Path(folder) / "run.json")
    if previous is None or not (
        previous.get("finished") or pathlib.Path(backup_path).is_file()
    ):
        return None
    check_same_run(folder, previous, settings, keys)
    return previous


def finished_run(folder, stream):
    """Says that `folder` holds a finished run; returns its `model.keras`
    (or `None`) and its history."""
    folder = pathlib.Path(folder)
    say(stream, f"{folder} holds a finished run; nothing to do.")
    path = folder / "model.keras"
    model = keras.saving.load_model(path) if path.is_file() else None
    return model, read_history(folder / "log.csv")


def export_saved_model(model, path):
    """`keras_eca.export.export_saved_model` into a folder beside `path`,
    renamed into place: a kill never leaves a half-written `path`."""
    from keras_eca import export as export_lib

    path = pathlib.Path(path)
    temporary = pathlib.Path(
        tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    )
    try:
        export_lib.export_saved_model(model, temporary / "model")
        if path.exists():
            shutil.rmtree(path)
        (temporary / "model").rename(path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def read_json(path):
    """The JSON value in `path`, or `None` when there is no such file."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_json(path, value):
    """`value` as indented JSON, written atomically."""
    files.write_text_atomically(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_history(path):
    """The rows of a `CSVLogger` file as dicts of numbers (`None` for NA)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return [
            {key: _number(key, value) for key, value in row.items()}
            for row in csv.DictReader(file)
        ]


def _number(key, text):
    if key == "epoch":
        return int(text)
    try:
        return float(text)
    except ValueError:  # CSVLogger's "NA" for a missing value
        return None


def truncate_history(path, epoch):
    """Drops the CSV rows of epochs >= `epoch` (written before a kill that
    came ahead of their backup), so each epoch has one row."""
    path = pathlib.Path(path)
    if not path.is_file():
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    kept = [rows[0]] + [
        row for row in rows[1:]
        if row and row[0].isdigit() and len(row) == len(rows[0])
        and int(row[0]) < epoch
    ]
    if len(kept) == len(rows):
        return

    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(kept)
    files.write_text_atomically(path, text.getvalue())


def say(stream, text):
    """One line on `stream`, flushed (progress of a long run)."""
    stream.write(text + "\n")
    stream.flush()
