"""`keras-eca finetune` has the issue's flags and the documented defaults;
its errors are one line, before any training."""

import pytest

from keras_eca import cli
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only


def parse(*argv):
    return cli.build_parser().parse_args(["finetune", *argv])


def test_the_flags_and_their_defaults():
    args = parse("--output", "runs/digits")
    assert (args.dataset, args.model, args.weights) == (None, "eca_resnet18", "imagenet")
    assert (args.image_size, args.batch_size, args.epochs, args.seed) == (
        None, None, None, 0
    )
    assert args.output == "runs/digits" and args.run is cli._finetune
    args = parse(
        "--dataset", "flowers/", "--model", "eca_mobilenet_v2", "--weights",
        "none", "--image-size", "64", "--batch-size", "8", "--epochs", "2",
        "--seed", "3", "--output", "x", "--unfreeze", "2", "--no-flip",
        "--validation-fraction", "0.1", "--overwrite",
    )
    assert args.weights is None and args.unfreeze == 2 and args.flip is False
    assert (args.image_size, args.batch_size, args.epochs, args.seed) == (64, 8, 2, 3)
    assert args.validation_fraction == 0.1 and args.overwrite
    with pytest.raises(SystemExit):
        parse()  # --output is required
    with pytest.raises(SystemExit):
        parse("--output", "x", "--unfreeze", "5")


def test_errors_are_one_line_before_training(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as error:
        cli.main(["finetune", "--output", str(tmp_path)])
    message = str(error.value)
    assert message.startswith("keras-eca finetune: --output ")
    assert "--overwrite" in message and "\n" not in message
    with pytest.raises(SystemExit, match="names a folder that does not exist"):
        cli.main([
            "finetune", "--dataset", str(tmp_path / "nowhere") + "/",
            "--output", str(tmp_path / "run"),
        ])
    with pytest.raises(SystemExit, match="image_size=16"):
        cli.main(["finetune", "--image-size", "16", "--output", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="Unknown model .resnet7."):
        cli.main(["finetune", "--model", "resnet7", "--output", str(tmp_path / "r")])
    data = helpers.write_folder(tmp_path / "data", {"a": 5, "b": 5})
    with pytest.raises(SystemExit, match=r"batch_size`=32 is more than the 8 training"):
        cli.main(["finetune", "--dataset", str(data), "--output", str(tmp_path / "r")])
    assert not (tmp_path / "run").exists() and not (tmp_path / "r").exists()


def test_python_api_argument_errors(tmp_path):
    from keras_eca import finetune

    output = tmp_path / "run"
    cases = [
        ({"head_epochs": 5, "epochs": 4}, "head_epochs=5, epochs=4"),
        ({"mixed_precision": "half"}, "mixed_precision='half'"),
        ({"jit_compile": "yes"}, "jit_compile='yes'"),
        ({"monitor": "loss"}, "monitor='loss'"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"learning_rate": -1}, "learning_rate=-1"),
        ({"seed": -1}, "seed=-1"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"unfreeze": 9}, "unfreeze=9"),
        ({"output": None}, "output=None"),
    ]
    for kwargs, message in cases:
        kwargs.setdefault("output", output)
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            finetune.finetune(**kwargs)
    assert not output.exists()
