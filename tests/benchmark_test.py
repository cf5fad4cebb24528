"""The benchmark's machinery on tiny models: interleaving, ratios, verdicts,
memory probes, startup timing, JSON, chart and command line.

The speed targets themselves are checked by running the benchmark (see the
README), not here: timings in unit tests would only measure the CI machine.
"""

import json

import pytest

import keras

from keras_eca import benchmark
from keras_eca import layers
from keras_eca import cli
from keras_eca.benchmark import devices
from keras_eca.benchmark import report
from keras_eca.benchmark import runner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TINY = dict(
    image_size=32,
    inference_batch_sizes=(1, 2),
    training_batch_size=2,
    repeats=2,
    warmup=1,
    min_seconds=0.0,
    memory_steps=1,
    memory_repeats=1,
)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 16}, "image_size=16"),
        ({"repeats": 0}, "repeats=0"),
        ({"warmup": -1}, "warmup=-1"),
        ({"inference_batch_sizes": ()}, "inference_batch_sizes=()"),
        ({"inference_batch_sizes": (1, 0)}, "inference_batch_sizes=0"),
        ({"min_seconds": -1}, "min_seconds=-1"),
        ({"jit_compile": "yes"}, "jit_compile='yes'"),
        ({"dtype_policy": "float16"}, "dtype_policy='float16'"),
    ],
)
def test_settings_name_the_bad_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        benchmark.Settings(**kwargs)


def test_auto_settings_follow_the_device():
    settings = benchmark.Settings()
    assert settings.resolved(has_accelerator=False) == (False, "float32")
    assert settings.resolved(has_accelerator=True) == (True, "mixed_float16")
    # JAX always compiles with XLA; Keras leaves torch uncompiled.
    assert settings.resolved(has_accelerator=False, backend="jax") == (True, "float32")
    assert settings.resolved(has_accelerator=True, backend="torch") == (False, "mixed_float16")
    forced = benchmark.Settings(jit_compile="on", dtype_policy="mixed_bfloat16")
    assert forced.resolved(has_accelerator=False) == (True, "mixed_bfloat16")


def test_comparison_rejects_unknown_metric_kinds():
    with pytest.raises(ValueError, match="latency"):
        benchmark.Comparison("eca_resnet50", "resnet50", {"latency": 1.0})


def test_unknown_models_are_named():
    with pytest.raises(ValueError, match=r"\['eca_resnet5'\]"):
        benchmark.run_benchmark(
            [benchmark.Comparison("eca_resnet5", "resnet50", {"inference": 1.0})],
            benchmark.Settings(**TINY),
            report=None,
        )


def test_ratios_pair_repeats_and_judge_by_direction():
    faster = benchmark.Comparison("a", "b", {"inference": 0.99})
    row = report.ratio_row(faster, "inference_b1", "inference", [90, 100, 121], [100, 100, 110])
    assert row["ratios"] == pytest.approx([0.9, 1.0, 1.1])
    assert (row["median"], row["min"], row["max"]) == pytest.approx((1.0, 0.9, 1.1))
    assert row["met"] is True
    lean = benchmark.Comparison("a", "b", {"memory": 1.02})
    row = report.ratio_row(lean, "memory_b16", "memory", [103.0], [100.0])
    assert row["better"] == "lower" and row["met"] is False
    untargeted = benchmark.Comparison("a", "b", {"training": None})
    assert "met" not in report.ratio_row(untargeted, "training_b2", "training", [1.0], [2.0])
    with pytest.raises(ValueError, match="same number of repeats"):
        report.ratio_row(faster, "inference_b1", "inference", [1.0], [1.0, 2.0])


def test_peak_rss_covers_current_rss():
    assert devices.peak_rss_bytes() >= devices.current_rss_bytes() > 0


def test_tiny_benchmark_end_to_end(tmp_path):
    lines = []
    comparison = benchmark.Comparison(
        "eca_resnet18",
        "resnet18",
        {"inference": 0.01, "training": 0.01, "memory": 100.0},
    )
    result = benchmark.run_benchmark(
        [comparison],
        benchmark.Settings(**TINY),
        build_pair=("eca_resnet18", "resnet18"),
        report=lines.append,
    )
    assert result["device"]["backend"] == "tensorflow"
    assert result["settings"]["jit_compile_resolved"] in (True, False)
    metrics = [
        "inference_b1", "inference_b2", "training_b2", "memory_b2", "rss_b2",
        "activations_b2",
    ]
    for name in ("resnet18", "eca_resnet18"):
        assert list(result["measurements"][name]) == metrics
        for metric in metrics[:3]:
            values = result["measurements"][name][metric]
            assert len(values) == 2 and all(v > 0 for v in values)
        # A fresh process holding a model, its gradients and SGD momentum:
        # tensors counted by TF's CPU allocator, and the process around them.
        params_bytes = 11_689_512 * 4
        peak = result["measurements"][name]["memory_b2"][0]
        assert peak > 2 * params_bytes
        assert result["measurements"][name]["rss_b2"][0] > peak
        stored = result["measurements"][name]["activations_b2"]
        assert len(stored) == 1 and 0 < stored[0] < peak
    assert any("TF CPU allocator peak" in line for line in lines)
    rows = result["comparisons"]
    assert [row["metric"] for row in rows] == metrics
    for row in rows:
        measured = result["measurements"]
        expected = [
            c / b
            for c, b in zip(measured["eca_resnet18"][row["metric"]], measured["resnet18"][row["metric"]])
        ]
        assert row["ratios"] == pytest.approx(expected)
        assert row.get("met") is (None if row["kind"] in ("rss", "activations") else True)
    startup = result["startup"]
    assert 0 < startup["import"]["median"] < startup["import"]["keras_median"]
    assert len(startup["build"]["ratios"]) == 2
    assert any(line.startswith("  repeat 2/2") for line in lines)
    json_path, png_path = benchmark.save_results(result, str(tmp_path / "out"))
    with open(json_path) as f:
        assert json.load(f)["comparisons"][0]["ratios"] == rows[0]["ratios"]
    with open(png_path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["benchmark.json", "benchmark.png"]
    text = benchmark.format_report(result)
    assert "eca_resnet18 / resnet18" in text and ">= 0.01 met" in text


def test_memory_probe_failure_is_reported():
    with pytest.raises(RuntimeError, match="memory probe for 'no_such_model' failed"):
        runner.run_memory_probe(
            {"model": "no_such_model", "image_size": 32, "batch_size": 1,
             "steps": 1, "jit_compile": False, "dtype_policy": "float32"}
        )


def test_cli_benchmark_writes_results(tmp_path, capsys):
    out = tmp_path / "bench"
    cli.main([
        "benchmark", "--pair", "eca_resnet18:resnet18", "--image-size", "32",
        "--inference-batch-sizes", "1", "--training-batch-size", "1",
        "--repeats", "1", "--warmup", "0", "--min-seconds", "0",
        "--no-memory", "--no-startup", "--output-dir", str(out),
    ])
    text = capsys.readouterr().out
    assert "eca_resnet18 / resnet18" in text and "training_b1" in text
    assert (out / "benchmark.json").exists() and (out / "benchmark.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pair", "eca_resnet18"], "expected CANDIDATE:BASELINE"),
        (["--inference-batch-sizes", "1,x"], "comma-separated integers"),
    ],
)
def test_cli_benchmark_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(["benchmark", *argv])
    assert message in capsys.readouterr().err


def test_cli_check_fails_on_a_missed_target(tmp_path, monkeypatch, capsys):
    missed = {
        "device": {"device": "CPU", "cpu_count": 2, "cpu": "x", "backend": "tensorflow", "keras": "3"},
        "settings": {"image_size": 32, "jit_compile_resolved": False,
                     "dtype_policy_resolved": "float32", "repeats": 1, "memory_repeats": 1},
        "measurements": {},
        "comparisons": [
            report.ratio_row(
                benchmark.Comparison("a", "b", {"inference": 0.99}),
                "inference_b1", "inference", [0.5], [1.0],
            )
        ],
        "startup": {},
    }
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *a, **k: missed)
    with pytest.raises(SystemExit, match="1 target"):
        cli.main(["benchmark", "--check", "--output-dir", str(tmp_path)])
    assert ">= 0.99 MISSED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "model, baseline, part, folded",
    [
        ("eca_resnet18", "resnet18", "rescale", True),
        ("eca_resnet50", "resnet50", "pool", True),
        ("sa_resnet50", "resnet50", "relu", False),
    ],
)
def test_layer_profile_covers_every_attention_site(model, baseline, part, folded):
    from keras_eca.benchmark import layer_profile

    profile = layer_profile.profile_attention(
        model, baseline=baseline, batch_size=2, image_size=32,
        repeats=1, min_seconds=0.0, report=lambda line: None,
    )
    built = runner.build(model, 32)
    attention = [layer for layer in built.layers if layer.name.endswith("_attn")]
    assert sum(row["count"] for row in profile["sites"]) == len(attention)
    assert len({row["shape"] for row in profile["sites"]}) == len(profile["sites"])
    for row in profile["sites"]:
        assert row["shape"][0] == 2
        assert all(ms > 0 for ms in row["ms"].values())
        assert part in row["ms"] and "batchnorm" in row["ms"]
        assert row["folded"] is folded
        # The builders fold SA's shuffle into the conv: nothing to time.
        assert "shuffle" not in row["ms"]
        # Bottleneck gates pool their 1x1 conv's input, a quarter as wide.
        if model == "eca_resnet50":
            assert row["pooled_input"][-1] * 4 == row["shape"][-1]
        else:
            assert row["pooled_input"] is None
    expected = sum(row["ms"]["layer"] * row["count"] for row in profile["sites"])
    assert profile["totals"]["layer"] == pytest.approx(expected)
    assert f"(baseline: {baseline}, forward" in layer_profile.format_profile(profile)


def test_layer_profile_defaults_to_the_model_without_attention():
    from keras_eca.benchmark import layer_profile

    profile = layer_profile.profile_attention(
        "eca_mobilenet_v2", batch_size=1, image_size=32,
        repeats=1, min_seconds=0.0, report=lambda line: None,
    )
    assert profile["baseline"] == "eca_mobilenet_v2 with attention=None"
    assert sum(row["count"] for row in profile["sites"]) == 17
    assert "(baseline: eca_mobilenet_v2 with attention=None" in layer_profile.format_profile(profile)


def _conv_bn_gate(folded, batch_norm=True):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    if folded:
        x = layers.EfficientChannelAttention(kernel_size=3)(layers.FoldedBatchNormalization()(x))
    else:
        x = keras.layers.BatchNormalization()(x) if batch_norm else x
        x = layers.EfficientChannelAttention(kernel_size=3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_stored_activations_count_the_tensors_backward_reads():
    from keras_eca.benchmark.activations import stored_activation_bytes

    model = _conv_bn_gate(folded=False)
    sizes = [stored_activation_bytes(model, b) for b in (2, 4, 6)]
    # A fixed part (per-channel vectors) plus the same bytes per sample.
    assert sizes[2] - sizes[1] == sizes[1] - sizes[0] > 0
    per_sample_map = 16 * 16 * 32 * 4
    # The plain BN + gate keeps the conv output and the normalised map;
    # folded, the gate rescales the conv output itself: one map fewer per
    # sample (batch 2), give or take a few per-channel vectors.
    folded = stored_activation_bytes(_conv_bn_gate(folded=True), 2)
    assert abs(sizes[0] - folded - 2 * per_sample_map) < 1024
    no_bn = stored_activation_bytes(_conv_bn_gate(folded=False, batch_norm=False), 2)
    assert abs(folded - no_bn) < per_sample_map
    with pytest.raises(ValueError, match="batch_size=0"):
        stored_activation_bytes(model, 0)


def test_eca_resnet50_stores_what_resnet50_stores():
    """The issue's memory target, in its deterministic part: ECA adds only
    (batch, channels) vectors to what a ResNet-50 step keeps (224 px, batch
    16; graphs are traced, not run). SA keeps several maps per block."""
    from keras_eca.benchmark.activations import stored_activation_bytes

    stored = {
        name: stored_activation_bytes(runner.build(name, 224), 16)
        for name in ("resnet50", "eca_resnet50", "sa_resnet50")
    }
    assert 1.0 < stored["eca_resnet50"] / stored["resnet50"] < 1.01
    assert stored["sa_resnet50"] / stored["resnet50"] > 1.3
