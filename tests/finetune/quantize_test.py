"""`keras-eca quantize`: int8 TFLite of a fine-tuning run, measured on its
validation images."""

import json

import pytest

from keras_eca import cli
from keras_eca import finetune
from keras_eca.finetune import quantize
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only


def test_a_folder_run_quantizes_and_reports(tmp_path, capsys):
    root = helpers.write_folder(tmp_path / "digits", {str(k): 12 for k in range(4)})
    run_dir = tmp_path / "run"
    finetune.finetune(
        str(root), model="eca_mobilenet_v2", weights=None, image_size=32,
        epochs=2, batch_size=16, output=run_dir, stream=helpers.stream(),
    )
    cli.main(["quantize", str(run_dir), "--calibration-steps", "16",
              "--timing-calls", "3"])
    printed = capsys.readouterr().out
    assert "int8 TFLite" in printed and "Gates (17)" in printed
    result = json.loads((run_dir / quantize.REPORT_FILE).read_text())
    tflite = run_dir / quantize.TFLITE_FILE
    assert tflite.stat().st_size == result["bytes"]["int8"]
    assert result["bytes"]["int8"] < 0.4 * result["bytes"]["float32"]
    assert result["validation_images"] == json.loads(
        (run_dir / "report.json").read_text())["validation_images"]
    accuracy = result["accuracy"]
    # The float TFLite model (the inference form) predicts as Keras does.
    assert accuracy["float32"] == accuracy["keras"]
    assert result["max_probability_error"]["float32"] < 1e-5
    assert result["gates"]["count"] == 17
    assert 0 < result["gates"]["max_abs_error"] < 0.1
    assert set(result["latency_ms_batch1"]) == {"float32", "int8"}
    # No staging files left beside the outputs.
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


def test_bad_runs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Received: run_dir="):
        quantize.quantize_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a keras-eca finetune run"):
        cli._quantize(type("Args", (), {"run_dir": str(tmp_path / "missing")})())
