"""Writing files so that a crash never leaves half of one behind.

Every file keras_eca writes for a user (run folders, backups, converted
weights, benchmark reports, figures) goes through `staged_path`: the writer
fills a temporary sibling, which is synced and renamed over the target only
once it is complete. A reader sees the old file or the new one, never a part
of either; a failed or killed write leaves at most a hidden `.partial` file,
removed on failure. Backend-neutral (no TensorFlow).
"""

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def staged_path(path):
    """Yields a temporary path beside `path`; on a clean exit the file
    written there is synced and renamed to `path`, otherwise removed.

    The temporary name ends with `path`'s suffixes, because some writers
    choose the format by them (`model.save(".keras")`,
    `model.save_weights(".weights.h5")`, `Figure.savefig(".png")`).

    Args:
        path: str or `os.PathLike`. The file to write; its folder is
            created if needed.

    Yields:
        A `pathlib.Path` that does not exist yet, to be written by the
        caller.

    Example:

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
    >>> with keras_eca.files.staged_path(target) as staged:
    ...     _ = staged.write_text("cat\\ndog\\n")
    >>> target.read_text().split()
    ['cat', 'dog']
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The last two suffixes: Keras wants `.weights.h5` for `save_weights`.
    suffix = "".join(path.suffixes[-2:])
    handle, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".partial{suffix}"
    )
    os.close(handle)
    staged = pathlib.Path(name)
    staged.unlink()  # writers that refuse to overwrite get a free name
    try:
        yield staged
        _sync_file(staged)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    sync_folder(path.parent)


def write_atomically(path, write):
    """Calls `write(file)` on a binary file that becomes `path` only once
    `write` returned (see `staged_path`).

    Args:
        path: str or `os.PathLike`. The file to write.
        write: callable taking an open binary file.
    """
    with staged_path(path) as staged:
        with open(staged, "wb") as file:
            write(file)


def write_text_atomically(path, text):
    """Writes the string `text` (UTF-8) to `path` atomically."""
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def _sync_file(path):
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def sync_folder(folder):
    """Flushes a folder entry, so that a rename into it is durable."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
