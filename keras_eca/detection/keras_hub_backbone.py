"""A keras_eca model as a `keras_hub.models.FeaturePyramidBackbone`
(needs keras-hub: `pip install 'keras_eca[keras_hub]'`).

keras-hub's detectors take an image encoder whose `pyramid_outputs` maps
`"P2"`..`"P5"` to the feature *tensors* (KerasCV's contract names layers).
As for KerasCV, the graph is rebuilt from constructor arguments, so that a
detector's `.keras` file reloads without presets or the network.
"""

import keras
import keras_hub

from keras_eca.applications import build_model
from keras_eca.applications.feature_extraction import feature_layer_names


@keras.saving.register_keras_serializable(package="keras_eca")
class KerasHubBackbone(keras_hub.models.FeaturePyramidBackbone):
    """`build_model(model, include_top=False, ...)` with `pyramid_outputs`
    `{"P2": tensor, ..., "P5": tensor}` (strides 4-32).

    Args:
        model: str. A registry key.
        weights: initial weights (see `build_model`); not part of the
            config: a saved detector holds its own weights.
        image_shape: `(height, width, channels)` (keras-hub's name).
        include_preprocessing: normalise RGB in [0, 255] inside.
        dtype: keras-hub's dtype policy argument.
    """

    def __init__(
        self,
        model,
        weights=None,
        image_shape=(None, None, 3),
        include_preprocessing=True,
        dtype=None,
        **kwargs,
    ):
        net = build_model(
            model,
            include_top=False,
            weights=weights,
            input_shape=tuple(image_shape),
            include_preprocessing=include_preprocessing,
        )
        kwargs.setdefault("name", f"{model}_backbone")
        super().__init__(inputs=net.inputs, outputs=net.outputs, dtype=dtype, **kwargs)
        self.pyramid_outputs = {
            level: self.get_layer(name).output
            for level, name in feature_layer_names(net).items()
        }
        self.model_name = model
        self.image_shape = tuple(image_shape)
        self.include_preprocessing = include_preprocessing

    def get_config(self):
        config = super().get_config()
        config.update(
            model=self.model_name,
            image_shape=list(self.image_shape),
            include_preprocessing=self.include_preprocessing,
        )
        return config
