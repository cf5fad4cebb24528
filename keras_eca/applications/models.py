"""The public builders: one thin wrapper around `build_model` per registry row.

Every function takes the `keras.applications` arguments, plus the
attention overrides of `keras_eca.applications.build_model`
(`attention`, `attention_kwargs`, `kernel_sizes`). As in
`keras.applications`, a function whose architecture has released weights
(an entry of `keras_eca.applications.weights.WEIGHTS`) defaults to
`weights="imagenet"`; the others default to `None` (random
initialization). `build_model` itself defaults to `None`.
"""

import inspect
import textwrap

from keras_eca.applications.factory import build_model
from keras_eca.applications.registry import MODELS
from keras_eca.applications.weights import WEIGHTS
from keras_eca.applications.weights import default_weights

_DOC = """Instantiates the {display_name} architecture (`"{architecture}"`).

Source: {source}.

Equivalent to `keras_eca.applications.build_model("{architecture}", ...)`
with `weights={default}` by default; see there for the details of every
argument. Images go through `keras_eca.applications.preprocess_input`
first, unless the model is built with `include_preprocessing=True`.

Args:
    include_top: bool. Whether to include the global average pooling and
        the classifier. Defaults to `True`.
    weights: `None` (random initialization), `"imagenet"`, a weights tag
        (`keras_eca.applications.weights.list_weights("{architecture}.*")`),
        or the path to a `.weights.h5`, `.keras`, PyTorch (`.pth`,
        `.pth.tar`, `.bin`) or `.safetensors` file.
{weights_default}
    input_tensor: optional Keras tensor to use as the image input.
    input_shape: optional shape tuple without the batch axis; height and
        width of at least 32 (or `None`), any number of channels.
    pooling: `None`, `"avg"` or `"max"`: pooling of the output when
        `include_top=False`. Defaults to `None`.
    classes: int. Number of classes of the classifier. Defaults to `1000`.
    classifier_activation: activation of the classifier, or `None` for
        logits. Defaults to `"softmax"`.
    name: str. Name of the model. Defaults to `"{architecture}"`.
    include_preprocessing: bool. Whether the model takes RGB images in
        [0, 255] and normalizes them inside, with the mean and std of its
        weights (`keras_eca.applications.weights.preprocessing_for`).
        Defaults to `False`: feed it `preprocess_input(images)`.
    **kwargs: `attention`, `attention_kwargs` and `kernel_sizes`, as in
        `keras_eca.applications.build_model`.

Returns:
    A `keras.Model`.

Raises:
    keras_eca.applications.WeightsDownloadError: (a `ValueError`) if
        pretrained weights are neither in the cache nor downloadable (no
        network; manual downloads); the message names the URL, and the
        local file or cache path to use instead.
    ValueError: for an invalid argument, or weights that fail
        verification or do not fit the model.

Reference:
- {reference}
"""


def _weights_default(architecture):
    """The docstring's sentence on the `weights` default, indented."""
    key = default_weights(architecture)
    if key is None:
        text = (
            "Defaults to `None`: no ImageNet weights of this architecture "
            "were released."
        )
    else:
        entry = WEIGHTS[key]
        size = entry["preprocessing"]["input_size"]
        text = (
            f'Defaults to `"imagenet"`: the weights `{key}` (ImageNet-1k '
            f"top-1 {entry['top1']:.2f}% at {size} pixels), downloaded once "
            "into the cache `$KERAS_HOME/keras_eca`."
        )
    return textwrap.fill(
        text, width=76, initial_indent=" " * 8, subsequent_indent=" " * 8
    )


def _documented(architecture):
    """Writes the builder's docstring; its `weights` default must be
    `"imagenet"` exactly when the architecture has released weights."""
    default = "imagenet" if default_weights(architecture) else None

    def decorator(builder):
        found = inspect.signature(builder).parameters["weights"].default
        if found != default:  # a new table entry, a forgotten default
            raise AssertionError(
                f"{builder.__name__} must default to weights={default!r}, "
                f"not {found!r}."
            )
        builder.__doc__ = _DOC.format(
            architecture=architecture,
            default='"imagenet"' if default else "None",
            weights_default=_weights_default(architecture),
            **MODELS[architecture],
        )
        return builder

    return decorator


@_documented("resnet18")
def ResNet18(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "resnet18",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("resnet34")
def ResNet34(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "resnet34",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("resnet50")
def ResNet50(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("resnet101")
def ResNet101(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "resnet101",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("resnet152")
def ResNet152(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "resnet152",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_resnet18")
def ECAResNet18(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_resnet18",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_resnet34")
def ECAResNet34(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_resnet34",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_resnet50")
def ECAResNet50(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_resnet101")
def ECAResNet101(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_resnet101",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_resnet152")
def ECAResNet152(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_resnet152",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_resnet18")
def SEResNet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_resnet18",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_resnet34")
def SEResNet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_resnet34",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_resnet50")
def SEResNet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_resnet101")
def SEResNet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_resnet101",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_resnet152")
def SEResNet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_resnet152",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("sa_resnet50")
def SAResNet50(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "sa_resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("sa_resnet101")
def SAResNet101(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "sa_resnet101",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("sa_resnet152")
def SAResNet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "sa_resnet152",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("mobilenet_v2")
def MobileNetV2(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "mobilenet_v2",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("eca_mobilenet_v2")
def ECAMobileNetV2(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "eca_mobilenet_v2",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("se_mobilenet_v2")
def SEMobileNetV2(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "se_mobilenet_v2",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet26t")
def ECAResNet26T(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet26t",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet50d")
def ECAResNet50D(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet50d",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet50t")
def ECAResNet50T(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet50t",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnetlight")
def ECAResNetLight(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnetlight",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet101d")
def ECAResNet101D(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet101d",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet200d")
def ECAResNet200D(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet200d",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("ecaresnet269d")
def ECAResNet269D(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "ecaresnet269d",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("seresnet50")
def TimmSEResNet50(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "seresnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )


@_documented("timm_resnet50")
def TimmResNet50(
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    include_preprocessing=False,
    **kwargs,
):
    return build_model(
        "timm_resnet50",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        include_preprocessing=include_preprocessing,
        **kwargs,
    )
