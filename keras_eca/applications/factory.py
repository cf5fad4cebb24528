"""`build_model`: validates the `keras.applications` arguments, resolves the
attention of a registry row and calls the family builder."""

import os

import keras

from keras_eca._checks import is_integer
from keras_eca.applications import registry
from keras_eca.applications import weights_loading as weights_lib
from keras_eca.applications.mobilenet_v2 import mobilenet_v2_features
from keras_eca.applications.resnet import resnet_features
from keras_eca.applications.weights import preprocessing_for
from keras_eca.layers import EfficientChannelAttention
from keras_eca.layers import attention_defaults
from keras_eca.layers import get_attention

FAMILIES = {
    "resnet": resnet_features,
    "mobilenet_v2": mobilenet_v2_features,
}

# The input size `include_top=True` models get without an `input_shape`.
DEFAULT_SIZE = 224
# Five stride-2 steps: smaller inputs collapse before the last stage.
MIN_SIZE = 32
POOLINGS = (None, "avg", "max")
DEFAULT_ATTENTION = "default"


def build_model(
    architecture,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    attention=DEFAULT_ATTENTION,
    attention_kwargs=None,
    kernel_sizes=None,
    include_preprocessing=False,
):
    """Builds a registered architecture as a functional Keras model.

    The arguments up to `name` follow `keras.applications` (e.g.
    `keras.applications.ResNet50`). The model is channels-last or
    channels-first as `keras.config.image_data_format()` says, and it runs
    under any dtype policy: `"mixed_float16"` and `"mixed_bfloat16"` (the
    classifier computes in float32, the attention's pooling and gates too),
    `"float16"` / `"bfloat16"` (the same, with half weights), and
    `"float64"`, where every layer, weight and output is float64 (for
    numerical checks). Feed it images processed by
    `keras_eca.applications.preprocess_input`, or build it with
    `include_preprocessing=True` and feed it RGB images in [0, 255].

    Args:
        architecture: str. A registry key, see
            `keras_eca.applications.list_models()`.
        include_top: bool. Whether to include the global average pooling and
            the classifier (`"predictions"`). Defaults to `True`.
        weights: `None` (random initialization), `"imagenet"` (the
            architecture's default ImageNet-1k weights), a weights tag of
            the architecture (`"miil_in1k"`) or a full key
            (`"ecaresnet50d.miil_in1k"`, see
            `keras_eca.applications.weights.list_weights()`), or the path
            to a weights file: Keras `.weights.h5` / `.keras` (a file saved
            with the classifier also loads into `include_top=False`; layers
            are matched by name), PyTorch `.pth` / `.pth.tar` / `.bin` or
            `.safetensors` (official ECA-Net / SA-Net / torchvision or timm
            key layout, detected from the keys; a training checkpoint
            `{"state_dict": ...}` with `module.` prefixes is unwrapped).
            Loading is strict: every weight of the model is set and every
            tensor of the file used, except the classifier with
            `include_top=False`. Weights of the table are downloaded once
            into `$KERAS_HOME/keras_eca`, verified and converted. Defaults to
            `None`.
        input_tensor: optional Keras tensor (the output of `keras.Input()` or
            of a Keras layer) to use as the image input of the model.
        input_shape: optional shape tuple without the batch axis, e.g.
            `(224, 224, 3)` (channels-last). Any number of channels works;
            height and width must be at least 32 or `None`. Defaults to
            `(224, 224, 3)` with `include_top=True` and `(None, None, 3)`
            without.
        pooling: pooling of the output when `include_top=False`: `None`
            (the 4D feature map of the last stage), `"avg"` or `"max"`
            (global pooling to a 2D tensor). Defaults to `None`.
        classes: int. Number of classes of the classifier, used with
            `include_top=True`. Defaults to `1000`.
        classifier_activation: activation of the classifier: a name, a
            callable, or `None` for logits. Defaults to `"softmax"`.
        name: str. Name of the model. Defaults to `architecture`.
        attention: the attention of every block instead of the
            architecture's own: any name of
            `keras_eca.layers.list_attention()`, an attention layer class
            (see `keras_eca.layers.get_attention`), a serialized layer
            config, or `None` for no attention. Defaults to
            `"default"`, the architecture's own attention.
        attention_kwargs: dict. Constructor arguments for every attention
            layer. They override the architecture's defaults, including its
            per-stage ECA kernel sizes. Defaults to `None`.
        kernel_sizes: ECA kernel size per stage (4 for a ResNet, one per
            row of the 7-row table of MobileNetV2), or `"adaptive"` for the
            paper's rule `k = psi(C)` on the channels of each block. Only
            for ECA attention. Defaults to `None`, the architecture's sizes.
        include_preprocessing: bool. Whether the model takes RGB images
            with values in [0, 255] (as `keras.applications`' ConvNeXt and
            EfficientNetV2 can) and normalizes them inside, as
            `preprocess_input` does: `(x / 255 - mean) / std` per channel,
            with the `mean` and `std` of the weights' table entry
            (`keras_eca.applications.weights.preprocessing_for`; the
            ImageNet ones for `weights=None` or a file). The first layer,
            `"preprocessing"`, is then a `keras.layers.Normalization` with
            these constants (no weights), computed in float32 (float64
            under the `"float64"` policy); it saves and reloads with the
            model (`.keras`, SavedModel). Needs 3 input channels. Defaults
            to `False`.

    Returns:
        A `keras.Model` named `name`.

    Raises:
        keras_eca.applications.WeightsDownloadError: (a `ValueError`) for
            table weights that are neither in the cache nor downloadable
            (no network; SA-Net's manual downloads). The message names the
            URL and both ways out: pass a local file as `weights=`, or
            place the downloaded file at the cache path it names, where
            the next load verifies and uses it.
        ValueError: for an invalid argument; for weights that do not exist
            for the architecture, fail verification, or do not fit the
            model (every missing, unexpected and mis-shaped tensor is
            named).
        keras_eca.checkpoints.UnsafeCheckpointError: for a PyTorch file
            whose pickle asks for anything but tensors and containers
            (nothing from it runs).

    Example:

    >>> model = keras_eca.applications.build_model(
    ...     "eca_resnet18", input_shape=(32, 32, 3), classes=10
    ... )
    >>> model.name, model.output_shape
    ('eca_resnet18', (None, 10))
    >>> tuple(model.get_layer("conv5_block2_attn").kernel.shape)
    (7,)
    >>> model = keras_eca.applications.build_model(
    ...     "resnet18", attention="se_var3", include_top=False,
    ...     input_shape=(32, 32, 3), pooling="avg",
    ... )
    >>> type(model.get_layer("conv2_block1_attn")).__name__
    'SqueezeExcitationVar3'
    >>> model.output_shape
    (None, 512)
    >>> model = keras_eca.applications.build_model(
    ...     "resnet18", input_shape=(32, 32, 3), include_preprocessing=True
    ... )
    >>> model.layers[1].name, type(model.layers[1]).__name__
    ('preprocessing', 'Normalization')
    """
    registry.check_model_name(architecture)
    config = registry.MODELS[architecture]
    data_format = keras.config.image_data_format()
    _check_arguments(
        include_top, weights, pooling, classes, classifier_activation, name
    )
    if not isinstance(include_preprocessing, bool):
        raise ValueError(
            "`include_preprocessing` must be a bool. "
            f"Received: include_preprocessing={include_preprocessing!r}"
        )
    classes = int(classes)  # e.g. np.int64: a plain int for the config
    make_attention = _attention_factory(
        config, attention, attention_kwargs, kernel_sizes
    )
    img_input = _image_input(
        input_tensor, input_shape, include_top, weights, data_format
    )
    weights_request = weights_lib.resolve_weights(
        architecture, weights, include_top
    )

    x = img_input
    if include_preprocessing:
        x = _preprocessing_layer(
            architecture, weights_request, img_input, data_format
        )(x)
    x = FAMILIES[config["family"]](x, config, make_attention, data_format)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(
            data_format=data_format, name="avg_pool"
        )(x)
        if config["dropout_rate"]:
            x = keras.layers.Dropout(config["dropout_rate"], name="dropout")(x)
        # float32 classifier: logits and softmax stay accurate under mixed
        # precision, as keras.applications does for its last activation; a
        # float64 model keeps float64.
        float64 = keras.config.dtype_policy().compute_dtype == "float64"
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            dtype="float64" if float64 else "float32",
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(
            data_format=data_format, name="avg_pool"
        )(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(
            data_format=data_format, name="max_pool"
        )(x)

    inputs = img_input
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
        # A single input stays a tensor, so calling the model on one array
        # matches its input structure.
        if len(inputs) == 1:
            inputs = inputs[0]
    model = keras.Model(inputs, x, name=name or architecture)
    if weights_request is not None:

        def make_model(include_top, classes, canonical):
            # The same architecture with its classifier, to convert into or
            # copy from; input size and names do not change the weights.
            channels_last = data_format == "channels_last"
            channels = model.input_shape[-1 if channels_last else 1]
            shape = (None, None, channels) if channels_last else (
                channels,
                None,
                None,
            )
            overrides = {} if canonical else {
                "attention": attention,
                "attention_kwargs": attention_kwargs,
                "kernel_sizes": kernel_sizes,
            }
            return build_model(
                architecture,
                include_top=include_top,
                input_shape=shape,
                classes=classes,
                classifier_activation=None,
                **overrides,
            )

        canonical = (
            isinstance(attention, str)
            and attention == DEFAULT_ATTENTION
            and not attention_kwargs
            and kernel_sizes is None
        )
        weights_lib.load_weights(
            model, weights_request, make_model, canonical
        )
    return model


def _preprocessing_layer(
    architecture, weights_request, img_input, data_format
):
    """`(x / 255 - mean) / std` per channel, with the weights' statistics,
    as a built-in layer that saves and reloads: `Normalization` with the
    mean and variance of `x` itself, `255 * mean` and `(255 * std) ** 2`."""
    axis = -1 if data_format == "channels_last" else 1
    channels = img_input.shape[axis]
    if channels != 3:
        raise ValueError(
            "`include_preprocessing=True` needs RGB images with 3 channels "
            f"(data_format={data_format!r}). Received: "
            f"input_shape={tuple(img_input.shape[1:])}"
        )
    key = None
    if weights_request is not None and weights_request.kind == "table":
        key = weights_request.key
    statistics = preprocessing_for(architecture, key)
    mean = [255.0 * float(m) for m in statistics["mean"]]
    variance = [(255.0 * float(s)) ** 2 for s in statistics["std"]]
    float64 = keras.config.dtype_policy().compute_dtype == "float64"
    return keras.layers.Normalization(
        axis=axis,
        mean=mean,
        variance=variance,
        dtype="float64" if float64 else "float32",
        name="preprocessing",
    )


def _check_arguments(
    include_top, weights, pooling, classes, classifier_activation, name
):
    if not isinstance(include_top, bool):
        raise ValueError(
            "`include_top` must be a bool. "
            f"Received: include_top={include_top!r}"
        )
    # The types keras.applications accepts; `resolve_weights` checks the
    # tag or the file once the other arguments are known to be valid.
    if not (weights is None or isinstance(weights, (str, os.PathLike))):
        raise ValueError(
            "The `weights` argument should be either `None` (random "
            "initialization), 'imagenet' (pre-training on ImageNet), a "
            "weights tag (see keras_eca.applications.weights.list_weights()), "
            "or the path to the weights file to be loaded. "
            f"Received: weights={weights!r}"
        )
    if not is_integer(classes) or classes < 1:
        raise ValueError(
            "`classes` must be a positive integer. "
            f"Received: classes={classes!r}"
        )
    if (
        weights_lib.is_weights_name(weights)
        and include_top
        and classes != 1000
    ):
        raise ValueError(
            f"`classes` must be 1000 when using `weights={weights!r}` "
            "(ImageNet-1k) with `include_top=True`. "
            f"Received: classes={classes}"
        )
    if (
        weights is not None
        and include_top
        and classifier_activation not in (None, "softmax")
    ):
        raise ValueError(
            "`classifier_activation` must be None or 'softmax' when using "
            "pretrained weights with `include_top=True`. "
            f"Received: classifier_activation={classifier_activation!r}"
        )
    if include_top:
        try:
            keras.activations.get(classifier_activation)
        except ValueError:
            raise ValueError(
                "`classifier_activation` must be None, a callable or the name "
                "of a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}"
            ) from None
    if pooling not in POOLINGS:
        raise ValueError(
            f"`pooling` must be one of {POOLINGS}. "
            f"Received: pooling={pooling!r}"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(
            "`name` must be a non-empty string or None. "
            f"Received: name={name!r}"
        )


def _image_input(input_tensor, input_shape, include_top, weights, data_format):
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                "`input_tensor` must be a Keras tensor (the output of "
                "`keras.Input()` or of a Keras layer). "
                f"Received: input_tensor={input_tensor!r}"
            )
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is None:
            input_shape = tensor_shape
        elif _as_shape(input_shape) != tensor_shape:
            raise ValueError(
                "`input_shape` must match the shape of `input_tensor` "
                f"{tensor_shape}. Received: input_shape={input_shape!r}"
            )
    input_shape = _check_input_shape(
        input_shape, include_top, weights, data_format
    )
    if input_tensor is not None:
        return input_tensor
    return keras.Input(shape=input_shape)


def _as_shape(input_shape):
    if isinstance(input_shape, (tuple, list)):
        return tuple(input_shape)
    return input_shape


def _check_input_shape(input_shape, include_top, weights, data_format):
    channels_last = data_format == "channels_last"
    if input_shape is None:
        size = DEFAULT_SIZE if include_top else None
        return (size, size, 3) if channels_last else (3, size, size)
    shape = _as_shape(input_shape)
    valid = (
        isinstance(shape, tuple)
        and len(shape) == 3
        and all(d is None or (is_integer(d) and d > 0) for d in shape)
    )
    if not valid:
        raise ValueError(
            "`input_shape` must be a tuple of three positive integers or "
            "None, e.g. (224, 224, 3). Received: "
            f"input_shape={input_shape!r}"
        )
    shape = tuple(None if d is None else int(d) for d in shape)
    channels = shape[-1] if channels_last else shape[0]
    spatial = shape[:2] if channels_last else shape[1:]
    if channels is None:
        raise ValueError(
            "`input_shape` must have a known number of channels "
            f"(data_format={data_format!r}). Received: "
            f"input_shape={input_shape!r}"
        )
    if weights_lib.is_weights_name(weights) and channels != 3:
        raise ValueError(
            f"`input_shape` must have 3 channels with `weights={weights!r}`. "
            f"Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d < MIN_SIZE for d in spatial):
        raise ValueError(
            f"`input_shape` must have a height and width of at least "
            f"{MIN_SIZE}. Received: input_shape={input_shape!r}"
        )
    return shape


def _attention_class(identifier):
    """The layer class `identifier` stands for (`None` for a config dict)."""
    if isinstance(identifier, str):
        return attention_defaults(identifier)[0]
    if isinstance(identifier, type):
        return identifier
    return None


def _attention_factory(config, attention, attention_kwargs, kernel_sizes):
    """Returns `make_attention(stage_index, name)` for a registry row."""
    own = config["attention"]
    if isinstance(attention, str) and attention == DEFAULT_ATTENTION:
        attention = own
    # The row's kwargs and kernel sizes belong to the row's own attention.
    same = isinstance(attention, str) and attention == own
    base_kwargs = dict(config["attention_kwargs"]) if same else {}
    stage_sizes = config["kernel_sizes"] if same else None
    if attention_kwargs is not None and not isinstance(attention_kwargs, dict):
        raise ValueError(
            "`attention_kwargs` must be a dict or None. "
            f"Received: attention_kwargs={attention_kwargs!r}"
        )
    user_kwargs = dict(attention_kwargs or {})
    num_stages = len(
        config["depths"] if config["family"] == "resnet" else config["stages"]
    )
    if kernel_sizes is not None:
        stage_sizes = _check_kernel_sizes(kernel_sizes, num_stages)
        if "kernel_size" in user_kwargs:
            raise ValueError(
                "Pass the ECA kernel size either in `kernel_sizes` or in "
                "`attention_kwargs`, not both. Received: "
                f"kernel_sizes={kernel_sizes!r}, "
                f"attention_kwargs={attention_kwargs!r}"
            )
    if attention is None:
        if kernel_sizes is not None or user_kwargs:
            raise ValueError(
                "`kernel_sizes` and `attention_kwargs` need an attention; "
                "the model has none (`attention=None`). Received: "
                f"kernel_sizes={kernel_sizes!r}, "
                f"attention_kwargs={attention_kwargs!r}"
            )
        return lambda stage_index, name: None
    cls = _attention_class(attention)
    if kernel_sizes is not None and not (
        cls is not None and issubclass(cls, EfficientChannelAttention)
    ):
        raise ValueError(
            "`kernel_sizes` only applies to ECA attention ('eca', 'ceca', "
            f"'eca_ns'); this model uses attention={attention!r}. "
            f"Received: kernel_sizes={kernel_sizes!r}"
        )

    def make_attention(stage_index, name):
        kwargs = dict(base_kwargs)
        if stage_sizes == "adaptive":
            kwargs["kernel_size"] = None
        elif stage_sizes is not None:
            kwargs["kernel_size"] = stage_sizes[stage_index]
        kwargs.update(user_kwargs)
        return get_attention(attention, name=name, **kwargs)

    # Fail on a bad name or argument now, not deep inside the build.
    make_attention(0, "attention_check")
    return make_attention


def _check_kernel_sizes(kernel_sizes, num_stages):
    if isinstance(kernel_sizes, str) and kernel_sizes == "adaptive":
        return kernel_sizes
    valid = (
        isinstance(kernel_sizes, (list, tuple))
        and len(kernel_sizes) == num_stages
        and all(is_integer(k) and k > 0 and k % 2 for k in kernel_sizes)
    )
    if not valid:
        raise ValueError(
            f"`kernel_sizes` must be 'adaptive' or a list of {num_stages} "
            "positive odd integers, one per stage. "
            f"Received: kernel_sizes={kernel_sizes!r}"
        )
    return tuple(int(k) for k in kernel_sizes)
