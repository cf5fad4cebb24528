"""`.keras` round trip: every family reloads with identical outputs."""

import numpy as np
import pytest

import keras
from keras_eca import layers
from tests.export import models

pytestmark = pytest.mark.tensorflow_only


@pytest.mark.parametrize("name", models.FAMILIES)
def test_keras_file_round_trip_is_exact(name, tmp_path):
    model = models.model(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = models.images()
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert loaded.name == model.name
    assert [type(l).__name__ for l in loaded.layers] == [
        type(l).__name__ for l in model.layers
    ]
    # The attention layers come back as themselves, with their config.
    attention = [
        l for l in model.layers if isinstance(l, layers.AttentionLayer)
    ]
    assert attention
    for layer in attention:
        reloaded = loaded.get_layer(layer.name)
        assert type(reloaded) is type(layer)
        assert reloaded.get_config() == layer.get_config()
