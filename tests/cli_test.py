import pytest

from keras_eca import cli
from keras_eca import demo
from keras_eca import layers


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
