"""The one registry of attention layers: names -> (class, default kwargs)."""

import inspect

import keras

# name -> (layer class, default constructor kwargs for that name)
_ATTENTION = {}


def register_attention(name, **defaults):
    """Class decorator: registers `cls` under `name` and for `.keras` files.

    The same class may be registered under several names with different
    defaults (e.g. `"ceca"` is ECA with `padding="circular"`).
    """

    def decorator(cls):
        if name in _ATTENTION and _ATTENTION[name][0] is not cls:
            raise ValueError(
                f"Attention name {name!r} is already registered to "
                f"{_ATTENTION[name][0].__name__}."
            )
        _ATTENTION[name] = (cls, dict(defaults))
        keras.saving.register_keras_serializable(package="keras_eca")(cls)
        return cls

    return decorator


def list_attention():
    """Returns the sorted names accepted by `get_attention`."""
    return sorted(_ATTENTION)


def attention_defaults(name):
    """Returns `(class, default kwargs)` registered under `name`."""
    _check_name(name)
    cls, defaults = _ATTENTION[name]
    return cls, dict(defaults)


def _check_name(name):
    if name not in _ATTENTION:
        raise ValueError(
            f"Unknown attention {name!r}. Available: {list_attention()}. "
            f"Received: identifier={name!r}"
        )


def get_attention(identifier, **kwargs):
    """Creates a new attention layer from a name, a class or a config.

    Args:
        identifier: a registered name (see `list_attention()`), a
            `keras.layers.Layer` subclass, a config dict as returned by
            `keras.saving.serialize_keras_object(layer)`, or `None` (no
            attention; returns `None`).
        **kwargs: constructor arguments; they override the registered
            defaults or the values in a config dict.

    Returns:
        A new, unbuilt layer instance, or `None`.

    Example:

    >>> layer = keras_eca.layers.get_attention("eca", kernel_size=5)
    >>> type(layer).__name__, layer.kernel_size
    ('EfficientChannelAttention', 5)
    >>> keras_eca.layers.get_attention("ceca").padding
    'circular'
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        _check_name(identifier)
        cls, defaults = _ATTENTION[identifier]
        return cls(**{**defaults, **kwargs})
    if inspect.isclass(identifier) and issubclass(
        identifier, keras.layers.Layer
    ):
        return identifier(**kwargs)
    if isinstance(identifier, dict):
        if "class_name" not in identifier or "config" not in identifier:
            raise ValueError(
                "A config dict for `identifier` must come from "
                "`keras.saving.serialize_keras_object(layer)` and have "
                f"'class_name' and 'config' keys. Received: {identifier!r}"
            )
        config = dict(identifier)
        config["config"] = {**identifier["config"], **kwargs}
        return keras.saving.deserialize_keras_object(config)
    if isinstance(identifier, keras.layers.Layer):
        raise ValueError(
            "`identifier` must describe a new layer (a name, a class or a "
            "config), not a layer instance: reusing one instance in several "
            "places would share its weights. Pass "
            "`keras.saving.serialize_keras_object(layer)` instead. "
            f"Received: identifier={identifier!r}"
        )
    raise ValueError(
        "`identifier` must be None, a registered name, a Layer class or a "
        f"config dict. Received: identifier={identifier!r}"
    )
