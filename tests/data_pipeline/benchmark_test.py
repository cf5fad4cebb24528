"""The input pipeline benchmark runs end to end on a tiny configuration (its
figures are measured by running it; see keras_eca/benchmark/input_pipeline.py)."""

import numpy as np
import pytest

from keras_eca.benchmark import input_pipeline

pytestmark = pytest.mark.tensorflow_only


def test_tiny_benchmark_reports_the_ratios(capsys):
    result = input_pipeline.run_input_pipeline_benchmark(
        num_images=8, min_side=40, max_side=60, image_size=16, batch_size=4,
        repeats=1, report=print,
    )
    assert set(result["ratios"]) == {
        "pipeline_vs_plain", "decode_and_crop_speedup", "decode_only_speedup",
    }
    assert set(result["cpu_ratios"]) == set(result["ratios"])
    pipeline = result["ratios"]["pipeline_vs_plain"]
    assert len(pipeline["values"]) == 1 and pipeline["target"] == 0.95
    assert pipeline["min"] <= pipeline["median"] <= pipeline["max"]
    assert isinstance(pipeline["met"], bool)
    assert set(result["median"]) == {
        "training_dataset", "plain_decode_and_crop", "plain_decode_then_crop",
        "decode_and_crop_only", "decode_then_crop_only",
    }
    assert all(v > 0 for v in result["median"].values())
    assert "round 1/1" in capsys.readouterr().out
    table = input_pipeline.format_report(result, None)
    assert "training_dataset / plain" in table and "speed-up" in table


def test_baseline_does_the_same_work(jpeg_folder):
    """The plain pipeline decodes the same crops and flips as
    training_dataset (so the ratio compares pipelines, not crop sizes)."""
    from keras_eca import data

    source = data.resolve_source(jpeg_folder)
    ours = data.training_dataset(
        source, image_size=12, global_batch_size=6, seed=0, epoch=3
    )
    paths, labels, key = input_pipeline.epoch_order(source, 0, 3)
    plain = input_pipeline.plain_pipeline(
        paths, labels, image_size=12, batch_size=6, augment_key=key
    )
    pairs = list(zip(ours.as_numpy_iterator(), plain.as_numpy_iterator()))
    assert len(pairs) == 4
    for (x, y), (px, py) in pairs:
        np.testing.assert_array_equal(x, px)
        np.testing.assert_array_equal(y, py)


def test_main_prints_the_table(capsys):
    argv = ["--skip-fidelity", "--num-images", "4", "--min-side", "30",
            "--max-side", "40", "--image-size", "8", "--batch-size", "2",
            "--repeats", "1"]
    assert input_pipeline.main(argv) == 0
    out = capsys.readouterr().out
    assert "training_dataset / plain" in out and "img/s (median)" in out


def test_benchmark_argument_errors():
    with pytest.raises(ValueError, match="repeats=0"):
        input_pipeline.run_input_pipeline_benchmark(repeats=0, report=None)
    with pytest.raises(ValueError, match="variants"):
        input_pipeline.pil_fidelity(variants=("exact",))
