"""`keras-eca detect-train` under tf.distribute's MirroredStrategy with
mixed precision, in a fresh process (logical devices are configured
before TensorFlow runs an op)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_eca import detection

pytestmark = pytest.mark.tensorflow_only

_MIRRORED_RUN = """
import sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from keras_eca import cli

sys.exit(cli.main(["detect-train", "--backbone", "eca_resnet18", "--dataset",
    "synthetic", "--output", sys.argv[1], "--strategy", "mirrored",
    "--mixed-precision", "mixed_bfloat16", "--epochs", "1",
    "--eval-examples", "4", "--recipe", "smoke", "--train-examples", "8"]))
"""


def test_detect_train_under_mirrored_with_mixed_precision(tmp_path):
    """Two replicas (2 logical CPUs) and bfloat16 compute: the run trains,
    evaluates (NMS in float32) and exports."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED_RUN, str(tmp_path / "run")],
        cwd=repo, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "mirrored: 2 replicas" in done.stdout and "mixed_bfloat16" in done.stdout
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    assert settings["finished"] and settings["strategy"] == "mirrored"
    assert np.isfinite(settings["final"]["loss"])
    assert set(settings["metrics"]) == set(detection.METRIC_NAMES)
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").is_file()
