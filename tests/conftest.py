import keras
import pytest


def pytest_collection_modifyitems(config, items):
    """Deselects TensorFlow-only tests (SavedModel, tf.data) elsewhere."""
    if keras.backend.backend() == "tensorflow":
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("tensorflow_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _reset_keras_config():
    """Every test starts and ends in float32 and channels-last, whatever a
    test sets."""
    keras.config.set_dtype_policy("float32")
    keras.config.set_image_data_format("channels_last")
    yield
    keras.config.set_dtype_policy("float32")
    keras.config.set_image_data_format("channels_last")
