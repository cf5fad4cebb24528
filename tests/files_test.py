"""keras_eca.files: a write is all or nothing."""

import pytest

from keras_eca import files


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "state.npz"
    files.write_atomically(path, lambda f: f.write(b"old"))

    def broken(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_the_staged_path_keeps_the_suffix_and_does_not_exist(tmp_path):
    with files.staged_path(tmp_path / "sub" / "figure.png") as staged:
        assert staged.suffix == ".png"
        assert staged.parent == tmp_path / "sub"
        assert not staged.exists()
        staged.write_bytes(b"png")
    assert (tmp_path / "sub" / "figure.png").read_bytes() == b"png"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["figure.png"]


def test_keras_weights_files_keep_their_double_suffix(tmp_path):
    with files.staged_path(tmp_path / "net.weights.h5") as staged:
        assert staged.name.endswith(".partial.weights.h5")
        staged.write_bytes(b"h5")
    assert (tmp_path / "net.weights.h5").read_bytes() == b"h5"


def test_an_interrupted_writer_leaves_no_partial_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.staged_path(tmp_path / "model.keras") as staged:
            staged.write_bytes(b"half a model")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_text_is_written_as_utf8(tmp_path):
    files.write_text_atomically(tmp_path / "labels.txt", "chat\ncafé\n")
    assert (tmp_path / "labels.txt").read_text(encoding="utf-8") == "chat\ncafé\n"
