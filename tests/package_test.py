"""`keras_eca/__init__.py`: cheap to import, every submodule reachable."""

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras
import keras_eca

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_python(code):
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_submodules_are_attributes():
    for name in ("applications", "checkpoints", "complexity", "conversion", "layers", "testing", "export"):
        assert getattr(keras_eca, name) is importlib.import_module(f"keras_eca.{name}")
        assert name in dir(keras_eca)
    assert callable(keras_eca.testing.run_layer_test)
    assert callable(keras_eca.export.export_saved_model)
    with pytest.raises(AttributeError, match="has no attribute 'tseting'"):
        keras_eca.tseting
    namespace = {}
    exec("from keras_eca import *", namespace)
    assert namespace["testing"] is keras_eca.testing and "export" not in namespace


def test_import_is_lazy_and_the_readme_modules_are_reachable():
    result = run_python(
        "import json, sys\n"
        "import keras_eca\n"
        "heavy = lambda: sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "before = heavy()\n"
        "harness = keras_eca.testing.run_layer_test.__name__\n"
        "export = keras_eca.export.to_tflite.__name__\n"
        "print(json.dumps([before, heavy(), harness, export, keras_eca.__version__]))\n"
    )
    assert result == [[], ["keras", "tensorflow"], "run_layer_test", "to_tflite", keras_eca.__version__]


def test_a_new_process_loads_a_keras_file_after_import_keras_eca(tmp_path):
    # Lazy submodules must not lose the layer registration that
    # `keras.saving.load_model` needs: keras first, then keras_eca.
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, keras_eca.layers.EfficientChannelAttention(3)(inputs))
    path = str(tmp_path / "eca.keras")
    model.save(path)
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    result = run_python(
        "import json, numpy as np\n"
        "import keras\n"
        "import keras_eca\n"
        f"model = keras.saving.load_model({path!r})\n"
        f"y = model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        "print(json.dumps(np.asarray(y).ravel().tolist()))\n"
    )
    np.testing.assert_allclose(result, np.asarray(model.predict(x, verbose=0)).ravel(), rtol=1e-6)
