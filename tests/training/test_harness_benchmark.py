"""The harness benchmark runs and reports its ratios (the figures come
from `python -m keras_eca.benchmark.training_harness`, not from here)."""

import pytest

# Slow: it trains twice; the figures come from running the benchmark.
pytestmark = [pytest.mark.tensorflow_only, pytest.mark.slow]


def test_the_harness_benchmark_reports_both_ratios():
    from keras_eca.benchmark import training_harness

    lines = []
    result = training_harness.measure(
        "resnet18", image_size=32, batch_size=4, epochs=2, steps_per_epoch=3,
        backup_every=2, repeats=1, report=lines.append,
    )
    for key in ("bare_steps_per_s", "harness_steps_per_s", "ratio",
                "ratio_with_epoch_ends"):
        assert result[key] > 0, key
    assert result["target"] == 0.97 and len(result["ratios"]) == 1
    assert lines and "ratio" in lines[0]
