"""A keras_eca model as a `keras_cv.models.Backbone` (needs keras-cv).

KerasCV's detectors read `backbone.pyramid_level_inputs` (level -> layer
name) and call `backbone.get_layer(name).output`, so the backbone is the
functional graph of `build_model(include_top=False)` itself. A plain
functional model with that attribute trains, but its `.keras` file does not
reload (the attribute is not in its config); this class rebuilds the same
graph from its constructor arguments, as KerasCV's own backbones do.
"""

import keras
import keras_cv

from keras_eca.applications import build_model
from keras_eca.applications.feature_extraction import feature_layer_names


@keras.saving.register_keras_serializable(package="keras_eca")
class KerasCVBackbone(keras_cv.models.Backbone):
    """`build_model(model, include_top=False, ...)` with
    `pyramid_level_inputs` `{"P2": ..., "P5": ...}` (strides 4-32).

    Args:
        model: str. A registry key.
        weights: initial weights (see `build_model`); not part of the
            config: a saved detector holds its own weights.
        input_shape: `(height, width, channels)`.
        include_preprocessing: normalise RGB in [0, 255] inside.
    """

    def __init__(
        self,
        model,
        weights=None,
        input_shape=(None, None, 3),
        include_preprocessing=True,
        **kwargs,
    ):
        net = build_model(
            model,
            include_top=False,
            weights=weights,
            input_shape=tuple(input_shape),
            include_preprocessing=include_preprocessing,
        )
        kwargs.setdefault("name", f"{model}_backbone")
        super().__init__(inputs=net.inputs, outputs=net.outputs, **kwargs)
        self.pyramid_level_inputs = feature_layer_names(net)
        self.model_name = model
        self.image_shape = tuple(input_shape)
        self.include_preprocessing = include_preprocessing

    def get_config(self):
        config = super().get_config()
        config.update(
            model=self.model_name,
            input_shape=list(self.image_shape),
            include_preprocessing=self.include_preprocessing,
        )
        return config
