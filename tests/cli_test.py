import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from keras_eca import applications
from keras_eca import checkpoints
from keras_eca import cli
from keras_eca import demo
from keras_eca import layers

QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# TensorFlow's start-up lines that log levels do not silence.
# TensorFlow's start-up lines, printed before absl reads TF_CPP_MIN_LOG_LEVEL
# (which ones depends on the CPU: oneDNN's notice on an AMD EPYC).
NOISE = re.compile(
    r"absl::InitializeLog|cudart_stub|cuda_platform|cpu_feature_guard"
    r"|rebuild TensorFlow|oneDNN custom operations"
)


def test_demo_reports_every_attention_with_its_overhead():
    lines = []
    rows = demo.attention_overhead("resnet18", image_size=32, report=lines.append)
    assert [row["attention"] for row in rows] == ["none"] + layers.list_attention()
    by_name = {row["attention"]: row for row in rows}
    assert by_name["none"]["params"] == 11_689_512  # torchvision ResNet-18
    assert by_name["se_var1"]["overhead"] == 0
    # Adaptive ECA on BasicBlock widths 64..512: k = 3, 5, 5, 5 over 2 blocks each.
    assert by_name["eca"]["overhead"] == 2 * (3 + 5 + 5 + 5)
    # SA needs C % (2 * 64) == 0: the 64-channel stage is reported, not fatal.
    assert "divisible by 2 * groups" in by_name["sa"]["skipped"]
    assert any("not applicable" in line for line in lines)
    built = [row for row in rows if "skipped" not in row]
    assert len(built) == len(rows) - 1
    assert all(row["output_shape"] == (1, 1000) for row in built)
    table = demo.format_table(rows, "resnet18")
    assert "eca_ns" in table and "11,689,512" in table


def test_cli_lists(capsys):
    cli.main(["list-attention"])
    out = capsys.readouterr().out
    assert "ceca       EfficientChannelAttention {'padding': 'circular'}" in out
    cli.main(["list-models", "sa_*"])
    assert capsys.readouterr().out.split() == ["sa_resnet50", "sa_resnet101", "sa_resnet152"]


def test_cli_rejects_unknown_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fly"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_summary_prints_the_paper_units(capsys):
    cli.main(["summary", "resnet50"])
    lines = capsys.readouterr().out.splitlines()
    header = ["model", "params", "M", "Mi", "MACs", "FLOPs(thop)"]
    assert lines[0].split()[:6] == header
    row = lines[1]
    assert row.startswith("resnet50") and "25,557,032" in row
    # The ECA paper's Table 3: 24.37M parameters and 3.86G FLOPs, in units
    # of 2^20 and 2^30.
    assert "24.37" in row and "3.86 G" in row and "4.09 G" in row


def test_cli_summary_reports_the_attention_overhead(capsys):
    cli.main(["summary", "eca_resnet18", "--image-size", "64"])
    row = capsys.readouterr().out.splitlines()[1].split()
    # ECA k = 3, 5, 7, 7 on 2 blocks per stage: 44 weights; C*k MACs and
    # C*(H*W + 1) + C*k thop ops per block (H*W = 16, 8, 4, 2 squared).
    macs = 2 * (64 * 3 + 128 * 5 + 256 * 7 + 512 * 7)
    pools = 2 * (64 * 257 + 128 * 65 + 256 * 17 + 512 * 5)
    assert row[0] == "eca_resnet18" and "resnet18" in row
    assert row[-3:] == ["+44", f"+{macs:,}", f"+{pools + macs:,}"]


def test_cli_summary_rejects_unknown_models(capsys):
    with pytest.raises(SystemExit, match="unknown model"):
        cli.main(["summary", "resnet9000"])


# --- errors a user can cause: one line, status 1, no traceback -------------


def fail(argv):
    """The message `cli.main(argv)` exits with (`SystemExit(message)`, which
    Python prints to stderr with exit status 1)."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert isinstance(info.value.code, str), info.value.code
    return info.value.code


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint that fits no model (one tiny conv)."""
    path = tmp_path / "tiny.pth"
    checkpoints.save_state_dict_pth({"conv1.weight": np.zeros((4, 3, 3, 3), "float32")}, str(path))
    return path


@pytest.fixture
def no_conversion(monkeypatch):
    """Fails the test if a command builds (converts) a model."""

    def build_model(*args, **kwargs):
        raise AssertionError("the conversion ran")

    monkeypatch.setattr(applications, "build_model", build_model)


def convert(checkpoint, *options, model="resnet18"):
    return ["convert", str(checkpoint), "--model", model, "--image-size", "32", *options]


def test_a_checkpoint_that_does_not_fit_the_model(checkpoint):
    message = fail(convert(checkpoint))
    first, *details = message.splitlines()
    assert first.startswith("keras-eca convert: Cannot load the checkpoint")
    assert "does not fit model 'resnet18'" in first
    # The library's details (missing / mis-shaped tensors) follow, indented.
    assert details and all(line.startswith("  ") for line in details)
    assert any("conv1.weight has shape (4, 3, 3, 3)" in line for line in details)


def test_malicious_and_truncated_checkpoints(tmp_path, checkpoint):
    evil = tmp_path / "evil.pth"
    # A pickle that would call os.system: protocol 2, GLOBAL posix system.
    evil.write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.")
    message = fail(convert(evil))
    assert message.startswith("keras-eca convert: Refused to load")
    assert "posix.system" in message and "\n" not in message
    # The same error with its traceback, for a bug report.
    with pytest.raises(checkpoints.UnsafeCheckpointError):
        cli.main(convert(evil, "--traceback"))

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(checkpoint.read_bytes()[:200])
    message = fail(convert(truncated))
    assert message.startswith(f"keras-eca convert: Cannot read '{truncated}'")
    assert "\n" not in message


def test_output_problems_are_found_before_the_conversion(tmp_path, checkpoint, no_conversion):
    missing = tmp_path / "no_such_folder" / "out.weights.h5"
    message = fail(convert(checkpoint, "--output", str(missing)))
    assert message == (
        f"keras-eca convert: the folder of {str(missing)!r} does not exist; "
        f"create {str(missing.parent)!r} first."
    )
    existing = tmp_path / "resnet18.weights.h5"
    existing.write_bytes(b"old")
    message = fail(convert(checkpoint))
    assert message == (
        f"keras-eca convert: {str(existing)!r} exists; pass --overwrite to replace it."
    )
    assert existing.read_bytes() == b"old"
    folder = tmp_path / "a_folder.weights.h5"
    folder.mkdir()
    assert fail(convert(checkpoint, "--output", str(folder))).endswith("is a folder.")


def can_create_files(folder):
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def test_an_unwritable_output_folder_is_found_before_the_conversion(
    tmp_path, checkpoint, no_conversion
):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if can_create_files(folder):  # root ignores the mode
            folder = pathlib.Path("/sys")  # sysfs: no new files, even for root
            if not folder.is_dir() or can_create_files(folder):
                pytest.skip("no unwritable folder on this machine")
        output = folder / "out.weights.h5"
        message = fail(convert(checkpoint, "--output", str(output)))
    finally:
        (tmp_path / "read_only").chmod(0o700)
    assert message.startswith(f"keras-eca convert: cannot write to {str(folder)!r}: ")
    assert "\n" not in message


@pytest.mark.parametrize("sizes", ["", "3;5", "3,,5", "adaptive,3"])
def test_bad_kernel_sizes(checkpoint, no_conversion, sizes):
    message = fail(convert(checkpoint, "--kernel-sizes", sizes))
    assert message == (
        "keras-eca convert: --kernel-sizes must be 'adaptive' or "
        f"comma-separated integers, e.g. 3,5,5,7. Received: {sizes!r}"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "x.pth", "--model", "resnet18", "--image-size", "0"],
        ["convert", "x.pth", "--model", "resnet18", "--image-size", "-32"],
        ["convert", "x.pth", "--model", "resnet18", "--classes", "0"],
        ["convert", "x.pth", "--model", "resnet18", "--classes", "ten"],
        ["demo", "--image-size", "0"],
        ["demo", "--batch-size", "-1"],
        ["summary", "resnet18", "--image-size", "0"],
        ["profile-attention", "eca_resnet18", "--batch-size", "0"],
        ["benchmark", "--inference-batch-sizes", "1,0"],
    ],
)
def test_sizes_must_be_positive_integers(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2  # argparse's usage error
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"keras-eca {argv[0]}: error: argument {argv[-2]}: expected ")
    assert "positive" in last and repr(argv[-1]) in last


def test_demo_refuses_an_unknown_backbone_at_once(capsys):
    message = fail(["demo", "--backbone", "resnet999", "--image-size", "32"])
    assert message.startswith(
        "keras-eca demo: unknown backbone 'resnet999'; choose one of resnet18, "
    )
    assert "mobilenet_v2" in message and "\n" not in message
    assert capsys.readouterr().out == ""  # nothing built, nothing printed
    with pytest.raises(ValueError, match="Received: backbone='resnet999'"):
        demo.attention_overhead("resnet999", report=pytest.fail)


def test_other_commands_report_errors_the_same_way():
    assert fail(["summary", "resnet9000"]).startswith(
        "keras-eca summary: unknown model(s) ['resnet9000']"
    )
    assert fail(["profile-attention", "no_such_model", "--image-size", "32"]).startswith(
        "keras-eca profile-attention: Unknown benchmark model(s) ['no_such_model']"
    )


def test_bugs_keep_their_traceback(monkeypatch):
    # Only ValueError and OSError are the user's; anything else is a bug.
    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_list_models", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["list-models"])


def test_a_user_error_exits_with_one_line_on_stderr(tmp_path):
    # The real process: status 1, one stderr line, no traceback.
    done = subprocess.run(
        [sys.executable, "-m", "keras_eca.cli", "demo", "--backbone", "resnet999"],
        capture_output=True, text=True, env=QUIET_ENV, timeout=300,
    )
    assert done.returncode == 1
    lines = [l for l in done.stderr.splitlines() if not NOISE.search(l)]
    assert len(lines) == 1 and lines[0].startswith("keras-eca demo: unknown backbone 'resnet999'")
    assert "Traceback" not in done.stderr


# --- --help without TensorFlow ---------------------------------------------

HELP_PROBE = """
import json, sys
from keras_eca import cli

parser = cli.build_parser()
commands = [a for a in parser._actions if a.dest == "command"][0].choices
for argv in [["--help"]] + [[name, "--help"] for name in commands]:
    try:
        cli.main(argv)
    except SystemExit as exit:
        assert exit.code == 0, (argv, exit.code)
heavy = ("tensorflow", "keras", "jax", "torch")
print(json.dumps({"commands": sorted(commands),
                  "imported": sorted(m for m in heavy if m in sys.modules)}))
"""


def test_help_imports_neither_tensorflow_nor_keras():
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True,
        env=QUIET_ENV, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "convert" in result["commands"] and "benchmark" in result["commands"]
    assert result["imported"] == []


def test_benchmark_finetune_times_the_first_command_and_its_serving(monkeypatch):
    from keras_eca.benchmark import serving

    calls = []
    monkeypatch.setattr(serving, "main", calls.append)
    assert cli.main(["benchmark", "--finetune"]) == 0
    assert calls == [["--finetune"]]
