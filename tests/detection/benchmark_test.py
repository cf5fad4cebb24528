"""The detection benchmarks run end to end (tiny settings; the measured
numbers come from the full runs, see the README)."""

import io
import json

import pytest

from keras_eca.benchmark import detection as bench

# Two detector trainings: outside the default run (`make test-all`).
pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]


def test_ap_vs_steps_evaluates_at_each_interval_and_writes_rows(tmp_path):
    output = tmp_path / "rows.json"
    assert bench.main([
        "ap-vs-steps", "--max-steps", "3", "--eval-every", "2",
        "--batch-size", "2", "--train-examples", "4", "--eval-examples", "2",
        "--output", str(output),
    ]) == 0
    rows = json.loads(output.read_text())
    # 4 images at batch 2: 2-step epochs; evaluations after steps 2 and 3.
    assert [row["steps"] for row in rows] == [2, 3]
    assert {"AP", "AP50", "AP75", "loss", "train_seconds"} <= set(rows[0])
    assert 0.0 <= rows[-1]["AP50"] <= 1.0


def test_step_ratio_reports_both_ratios():
    stream = io.StringIO()
    result = bench.step_ratio(
        backbones=("eca_resnet18", "resnet18"), image_size=128, batch_size=2,
        repeats=2, steps=1, stream=stream,
    )
    assert len(result["steps_per_second"]["resnet18"]) == 2
    assert result["eca_resnet18/resnet18 fastest"] > 0
    assert "eca_resnet18/resnet18 median" in stream.getvalue()
