"""One entry point for detector backbones: `backbone(name, api=...)`."""

from keras_eca.applications import registry
from keras_eca.detection.keras_cv_backbone import KerasCVBackbone

API_NAMES = ("keras_cv", "keras_hub")


def backbone(
    name,
    weights=None,
    input_shape=(None, None, 3),
    *,
    include_preprocessing=True,
    api="keras_cv",
):
    """A registry model as the backbone of a Keras detector.

    Args:
        name: str. A registry key (`keras-eca list-models`: the ResNet
            and MobileNetV2 models), e.g. `"eca_resnet50"`.
        weights: initial weights, anything `build_model(weights=...)`
            takes (`None`, `"imagenet"`, a table key, a file). Only the
            convolutional part is loaded.
        input_shape: `(height, width, channels)`; sides may be `None`.
        include_preprocessing: the backbone takes RGB in [0, 255] and
            normalises it with the weights' own mean and std (KerasCV's
            detectors feed unscaled images).
        api: `"keras_cv"`: a registered `keras_cv.models.Backbone` with
            `pyramid_level_inputs` (`"P2"`..`"P5"` -> layer names, strides
            4-32), for `keras_cv.models.RetinaNet` and `YOLOV8Detector`.
            `"keras_hub"` (needs the `keras_hub` extra): a registered
            `keras_hub.models.FeaturePyramidBackbone` whose
            `pyramid_outputs` maps `"P2"`..`"P5"` to the feature tensors,
            the image encoder of `keras_hub.models.RetinaNetBackbone`.

    Returns:
        The backbone model.

    Example:

    >>> import keras_eca.detection
    >>> net = keras_eca.detection.backbone(
    ...     "eca_resnet18", input_shape=(128, 128, 3))
    >>> net.pyramid_level_inputs["P5"]
    'conv5_block2_out'
    """
    registry.check_model_name(name)  # every registry model has P2-P5
    if api not in API_NAMES:
        raise ValueError(
            f"`api` must be one of {list(API_NAMES)}. Received: api={api!r}"
        )
    if api == "keras_hub":
        return _keras_hub_backbone_class()(
            model=name,
            weights=weights,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
        )
    return KerasCVBackbone(
        model=name,
        weights=weights,
        input_shape=input_shape,
        include_preprocessing=include_preprocessing,
    )


def _keras_hub_backbone_class():
    try:
        from keras_eca.detection.keras_hub_backbone import KerasHubBackbone
    except ImportError as error:
        raise ImportError(
            "api='keras_hub' needs keras-hub: pip install 'keras_eca[keras_hub]' "
            f"(the import failed: {error})"
        ) from error
    return KerasHubBackbone
