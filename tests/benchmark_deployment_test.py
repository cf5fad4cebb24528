"""The deployment benchmark on tiny models: every format, every number."""

import json

import pytest

from keras_eca import cli
from keras_eca.benchmark import deployment

pytestmark = pytest.mark.tensorflow_only


def test_a_tiny_deployment_run_reports_every_row(tmp_path, capsys):
    rows = (
        deployment.Row("eca_resnet18", "resnet18", "tflite", 32, 1, target=0.0),
        deployment.Row("eca_resnet18", "resnet18", "tflite_int8", 32, 1),
        deployment.Row("eca_resnet18", "resnet18", "tf", 32, 2, target=1e9),
        deployment.Row("eca_resnet18", "resnet18", "tf_xla", 32, 1),
    )
    result = deployment.run(rows, calls=2, warmup=1, report=None)
    assert [(r["format"], r["met"]) for r in result["rows"]] == [
        ("tflite", True), ("tflite_int8", None), ("tf", False), ("tf_xla", None)
    ]
    for row, timing in zip(result["rows"], result["timings"]):
        models = timing["models"]
        assert row["ratio"] == pytest.approx(
            models["resnet18"]["min_ms"] / models["eca_resnet18"]["min_ms"]
        )
        assert all(m["min_ms"] <= m["median_ms"] for m in models.values())
    sizes = result["models"]
    assert sizes["tflite_int8"]["resnet18_32"]["bytes"] < (
        0.4 * sizes["tflite"]["resnet18_32"]["bytes"]
    )
    table = deployment.format_report(result)
    assert "(≥ 0 ✓)" in table and "✗" in table
    json.dumps(result)  # serialisable


def test_the_cli_runs_a_pair_and_writes_json(tmp_path, capsys):
    missed = deployment.main([
        "--pair", "eca_resnet18:resnet18", "--formats", "tflite",
        "--image-size", "32", "--calls", "2", "--warmup", "0",
        "--output", str(tmp_path / "d.json"),
    ])
    assert missed == 0
    written = json.loads((tmp_path / "d.json").read_text())
    assert written["rows"][0]["candidate"] == "eca_resnet18"
    assert "eca_resnet18 / resnet18 | tflite | 32 | 1 |" in capsys.readouterr().out
    args = cli.build_parser().parse_args(["benchmark", "--deployment"])
    assert args.deployment


def test_bad_rows_are_refused():
    with pytest.raises(ValueError, match="Received: format='onnx'"):
        deployment.Row("eca_resnet18", "resnet18", "onnx")
    with pytest.raises(ValueError, match="Received: calls=0"):
        deployment.run((), calls=0)
