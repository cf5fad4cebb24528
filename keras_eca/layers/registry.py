"""The one registry of attention layers: names -> (class, default kwargs)."""

import inspect

import keras

from keras_eca.layers.base import AttentionLayer

# name -> (layer class, default constructor kwargs for that name)
_ATTENTION = {}


def register_attention(name, **defaults):
    """Class decorator: registers `cls` under `name` and for `.keras` files.

    The same class may be registered under several names with different
    defaults (e.g. `"ceca"` is ECA with `padding="circular"`). Registering
    a name again replaces its entry when the class is the same one or has
    the same module and qualified name: a notebook cell that defines and
    registers a layer can be run again.

    Raises:
        ValueError: if `name` is registered to a different class.
    """

    def decorator(cls):
        if name in _ATTENTION and not _same_class(_ATTENTION[name][0], cls):
            taken = _ATTENTION[name][0]
            raise ValueError(
                f"Attention name {name!r} is already registered to "
                f"{taken.__module__}.{taken.__qualname__}; pick another name "
                f"for {cls.__module__}.{cls.__qualname__}."
            )
        _ATTENTION[name] = (cls, dict(defaults))
        keras.saving.register_keras_serializable(package="keras_eca")(cls)
        return cls

    return decorator


def _same_class(registered, cls):
    # A re-run cell makes a new class object with the same names.
    return registered is cls or (
        registered.__module__ == cls.__module__
        and registered.__qualname__ == cls.__qualname__
    )


def _is_attention_class(cls):
    """An `AttentionLayer` subclass or a class of the registry."""
    return issubclass(cls, AttentionLayer) or any(
        cls is registered for registered, _ in _ATTENTION.values()
    )


def _not_attention(cls, identifier):
    return ValueError(
        f"`identifier` must describe an attention layer; {cls.__name__} is "
        "not one. Use a subclass of keras_eca.layers.AttentionLayer or a "
        "class registered with @keras_eca.layers.register_attention(name). "
        f"Received: identifier={identifier!r}"
    )


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
        identifier: a registered name (see `list_attention()`), an
            attention layer class (a `keras_eca.layers.AttentionLayer`
            subclass or a class registered with `register_attention`), a
            config dict of one as returned by
            `keras.saving.serialize_keras_object(layer)`, or `None` (no
            attention; returns `None`).
        **kwargs: constructor arguments; they override the registered
            defaults or the values in a config dict.

    Returns:
        A new, unbuilt layer instance, or `None`.

    Raises:
        ValueError: for an unknown name, a class or config of a layer that
            is not an attention layer (e.g. `keras.layers.Dense`), a layer
            instance, or any other value; and for invalid constructor
            arguments.

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
    if inspect.isclass(identifier):
        # Checked before the call: e.g. Dense would fail with a TypeError
        # (no `units`) that says nothing about attention.
        if not _is_attention_class(identifier):
            raise _not_attention(identifier, identifier)
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
        layer = keras.saving.deserialize_keras_object(config)
        if not _is_attention_class(type(layer)):
            raise _not_attention(type(layer), identifier)
        return layer
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
