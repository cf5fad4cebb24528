"""Every attention layer survives a TensorFlow SavedModel export."""

import numpy as np
import pytest

import keras
from keras_eca import layers
from keras_eca import testing

pytestmark = pytest.mark.tensorflow_only


@pytest.mark.parametrize("name", layers.list_attention())
def test_saved_model_export_serves_identical_outputs(name, tmp_path):
    import tensorflow as tf

    inputs = keras.Input(shape=(None, None, 128))
    model = keras.Model(inputs, layers.get_attention(name)(inputs))
    model.export(str(tmp_path / name), verbose=False)
    served = tf.saved_model.load(str(tmp_path / name))
    for shape in [(2, 4, 4, 128), (1, 7, 3, 128)]:  # any batch and size
        x = testing.random_input(shape)
        # The graph-compiled model, as served: eager matmuls may round
        # differently in the last bit.
        expected = model.predict(x, verbose=0)
        np.testing.assert_array_equal(served.serve(x).numpy(), expected)
