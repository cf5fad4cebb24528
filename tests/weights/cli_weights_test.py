"""`keras-eca convert` and `keras-eca list-weights`."""

import re

import pytest

from keras_eca import applications
from keras_eca import cli
from keras_eca.applications import weights
from tests import reference_fixtures as fixture_utils
from tests.weights import helpers

SMALL = "official_eca_resnet18"


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_convert_writes_weights_next_to_the_checkpoint(tmp_path, capsys):
    checkpoint = helpers.write_checkpoint(
        SMALL, "own_legacy", tmp_path / "eca_resnet18_k3577.pth.tar"
    )
    arguments = ["convert", str(checkpoint), "--model", "eca_resnet18"]
    assert cli.main(arguments + ["--image-size", "96"]) == 0
    output = tmp_path / "eca_resnet18.weights.h5"
    assert output.is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "eca_resnet18.weights.h5",
        "eca_resnet18_k3577.pth.tar",
    ]
    out = capsys.readouterr().out
    assert f"wrote {output}" in out
    assert re.search(
        r"model eca_resnet18: [\d,]+ weights \(11,689,556 trainable\), "
        r"loaded in \d+\.\d\d s",
        out,
    )
    assert "synthetic 96x96 image -> output shape (1, 1000)" in out
    assert re.search(r"max\|logit\| \d+\.\d{4}", out)
    top5 = re.findall(r"^\s+(\d+)\s+p=(\d\.\d{4})\s+(\S.*)$", out, re.M)
    assert len(top5) == 5
    probabilities = [float(p) for _, p, _ in top5]
    assert probabilities == sorted(probabilities, reverse=True)

    # The written file holds the converted weights.
    model = applications.build_model(
        "eca_resnet18",
        weights=str(output),
        input_shape=(96, 96, 3),
        classifier_activation=None,
    )
    difference = helpers.logits_difference(model, SMALL)
    assert difference <= fixture_utils.RELATIVE_TOLERANCE

    # No silent overwrite.
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        cli.main(["convert", str(checkpoint), "--model", "eca_resnet18"])


def test_convert_with_output_and_kernel_sizes(tmp_path, capsys):
    checkpoint = helpers.write_checkpoint(
        "timm_ecaresnet26t", "safetensors", tmp_path / "model.safetensors"
    )
    output = tmp_path / "out" / "ecaresnet26t.weights.h5"
    output.parent.mkdir()
    cli.main(
        [
            "convert",
            str(checkpoint),
            "--model",
            "ecaresnet26t",
            "--output",
            str(output),
            "--kernel-sizes",
            "adaptive",
            "--image-size",
            "64",
        ]
    )
    assert output.is_file()
    assert "output shape (1, 1000)" in capsys.readouterr().out


def test_convert_errors(tmp_path):
    checkpoint = helpers.write_checkpoint(
        SMALL, "own", tmp_path / "eca_resnet18.pth"
    )
    with pytest.raises(SystemExit, match="unknown model 'eca_resnet9'"):
        cli.main(["convert", str(checkpoint), "--model", "eca_resnet9"])
    with pytest.raises(SystemExit, match="not an existing file"):
        cli.main(
            ["convert", str(tmp_path / "nope.pth"), "--model", "eca_resnet18"]
        )
    with pytest.raises(SystemExit, match="must end in `.weights.h5`"):
        cli.main(
            [
                "convert",
                str(checkpoint),
                "--model",
                "eca_resnet18",
                "--output",
                str(tmp_path / "x.h5"),
            ]
        )
    with pytest.raises(SystemExit, match="pass kernel_sizes=\\[3, 5, 7, 7\\]"):
        cli.main(
            [
                "convert",
                str(checkpoint),
                "--model",
                "eca_resnet18",
                "--kernel-sizes",
                "3,3,3,3",
                "--image-size",
                "64",
            ]
        )
    with pytest.raises(SystemExit, match="comma-separated integers"):
        cli.main(
            [
                "convert",
                str(checkpoint),
                "--model",
                "eca_resnet18",
                "--kernel-sizes",
                "3;5",
            ]
        )
    assert not (tmp_path / "eca_resnet18.weights.h5").exists()


def test_list_weights(capsys):
    cli.main(["list-weights"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "weights",
        "top-1",
        "size",
        "source",
        "hash",
        "license",
    ]
    assert len(lines) == 1 + len(weights.list_weights())
    rows = {line.split()[0]: line for line in lines[1:]}
    assert re.search(
        r"77\.42\s+224\s+Google Drive\s+unverified\s+MIT$",
        rows["eca_resnet50.official_in1k"],
    )
    assert re.search(
        r"77\.88\s+224\s+manual download\s+manual\s+none$",
        rows["sa_resnet50.official_in1k"],
    )
    assert re.search(
        r"80\.63\s+224\s+Hugging Face hub\s+hub sha256\s+apache-2\.0$",
        rows["ecaresnet50d.miil_in1k"],
    )
    assert rows["resnet50.tv_in1k"].endswith("bsd-3-clause")
    assert re.search(
        r"71\.88\s+224\s+url\s+sha256 prefix\s+bsd-3-clause$",
        rows["mobilenet_v2.tv_in1k"],
    )

    cli.main(["list-weights", "ecaresnet50t.*"])
    keys = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert keys[1:] == weights.list_weights("ecaresnet50t.*")
    with pytest.raises(SystemExit, match="no weights match"):
        cli.main(["list-weights", "nothing*"])
